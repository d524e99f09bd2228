"""Probing and decoding real generated files, and every bad input's domain error."""

import cv2
import numpy as np
import pytest

from inference import errors
from inference.video import VideoLimits
from tests.support import videos
from tests.support.reading import probe, read_frames

LIMITS = VideoLimits(max_seconds=600, max_pixels=3840 * 2160, min_frames=16)


def _all_frames(path):
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames


@pytest.mark.parametrize("codec", videos.CODECS)
def test_probe_reads_count_rate_and_size(tmp_path, codec):
    path = videos.make_video(tmp_path / "v.mp4", seconds=2.0, fps=25, size=(160, 120), codec=codec)
    info = probe(path, LIMITS)
    assert (info.frames, info.fps, info.width, info.height) == (50, 25.0, 160, 120)
    assert info.duration_seconds == pytest.approx(2.0)


@pytest.mark.parametrize("codec", ["mp4v", "h264"])
def test_read_frames_returns_exactly_the_wanted_frames(tmp_path, codec):
    path = videos.make_video(tmp_path / "v.mp4", seconds=2.0, size=(160, 120), codec=codec)
    everything = _all_frames(path)
    wanted = [0, 1, 7, 8, 30, 49]
    got = list(read_frames(path, [49, 7, 0, 8, 1, 30, 7], expected_frames=50))
    assert [index for index, _ in got] == wanted  # sorted, each once
    for index, frame in got:
        assert frame.shape == (120, 160, 3)
        assert np.array_equal(frame, everything[index])


def test_a_stream_a_little_shorter_than_announced_repeats_its_last_frame(tmp_path):
    # Containers that estimate their frame count can be off by a few frames.
    path = videos.make_video(tmp_path / "v.mp4", seconds=2.0, size=(160, 120))
    got = dict(read_frames(path, [10, 49, 50, 51], expected_frames=52))
    assert sorted(got) == [10, 49, 50, 51]
    assert np.array_equal(got[51], got[49]) and np.array_equal(got[50], got[49])


def test_a_stream_much_shorter_than_announced_is_truncated(tmp_path):
    path = videos.make_video(tmp_path / "v.mp4", seconds=2.0, size=(160, 120))
    with pytest.raises(errors.VideoTruncated, match="stops after 50 of the 80"):
        list(read_frames(path, [10, 79], expected_frames=80))


BAD = {
    "random_bytes": errors.NotAVideo,
    "empty": errors.NotAVideo,
    "png": errors.NotAVideo,
    "pdf": errors.NotAVideo,
    "moov_cut": errors.NotAVideo,
    "audio_only": errors.NotAVideo,
    "one_frame": errors.VideoTooShort,
    "short_0.2s": errors.VideoTooShort,
    "tiny_1x1": errors.ResolutionTooSmall,
    "8k": errors.ResolutionTooLarge,
}
DURING_DECODING = {"truncated": errors.VideoTruncated, "header_only": errors.NoFrames}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_inputs_are_turned_away_by_the_probe(tmp_path, name):
    path = videos.BAD_INPUTS[name](tmp_path / "upload")
    with pytest.raises(BAD[name]) as caught:
        probe(path, LIMITS)
    assert caught.value.code == BAD[name].code and caught.value.message.endswith(".")


@pytest.mark.parametrize("name", sorted(DURING_DECODING))
def test_broken_streams_are_found_while_decoding(tmp_path, name):
    path = videos.BAD_INPUTS[name](tmp_path / "upload")
    info = probe(path, LIMITS)  # the index looks fine...
    with pytest.raises(DURING_DECODING[name]):
        list(read_frames(path, range(info.frames), info.frames))  # ...the data is not there


def test_too_long_and_too_large_follow_the_limits(tmp_path):
    path = videos.make_video(tmp_path / "v.mp4", seconds=2.0, size=(160, 120))
    with pytest.raises(errors.VideoTooLong, match=r"2\.0 s"):
        probe(path, VideoLimits(max_seconds=1, max_pixels=LIMITS.max_pixels, min_frames=16))
    with pytest.raises(errors.ResolutionTooLarge, match="160x120"):
        probe(path, VideoLimits(max_seconds=600, max_pixels=100 * 100, min_frames=16))
    with pytest.raises(errors.VideoTooShort):
        probe(path, VideoLimits(max_seconds=600, max_pixels=LIMITS.max_pixels, min_frames=51))
    assert probe(path, VideoLimits(max_seconds=2, max_pixels=160 * 120, min_frames=50)).frames == 50

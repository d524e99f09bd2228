"""The seeking decoder gives exactly the frames a sequential decode gives, in every format
uploads come in, while decoding only a part of the file; rotation, counts and timestamps
stay right."""

import dataclasses
import subprocess

import av
import cv2
import numpy as np
import pytest
import torch

from inference import preprocess
from inference.video import ReadStats, RunReader, VideoLimits, runs_of
from tests.support import videos
from tests.support.reading import probe, read

LIMITS = VideoLimits(max_seconds=600, max_pixels=3840 * 2160, min_frames=16)
SECONDS, FPS, GOP = 12.0, 25, 25  # 300 frames, a keyframe a second: six clips, each one GOP or two
FRAMES = round(SECONDS * FPS)
SEEKABLE = [kind for kind in videos.FORMATS if kind != "webm_recorder"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("formats")
    return {kind: videos.make_encoded(folder / f"{kind}.{videos.FORMATS[kind][1]}", kind, seconds=SECONDS,
                                      fps=FPS, gop=GOP)
            for kind in videos.FORMATS}


def clip_tensors(frames, plan):
    """The tensors the model is given for ``plan``'s clips, from ``frames`` by index."""
    crops = {f.index: preprocess.center_crop(preprocess.resize_frame(f.image)) for f in frames}
    return [preprocess.clip_tensor([crops[i] for i in clip]) for clip in plan]


def read_both_ways(path, plan):
    info = probe(path, LIMITS)
    runs = runs_of(i for clip in plan for i in clip)
    seeking, sequential = ReadStats(), ReadStats()
    sought = read(path, runs, info, stats=seeking)
    reference = read(path, runs, info, seek=False, stats=sequential)
    return info, sought, reference, seeking, sequential


@pytest.mark.parametrize("kind", list(videos.FORMATS))
def test_seeking_gives_the_clip_tensors_of_a_sequential_decode(files, kind):
    plan = preprocess.plan_clips(FRAMES)
    info, sought, reference, _, sequential = read_both_ways(files[kind], plan)

    assert info.frames == FRAMES
    wanted = sorted({i for clip in plan for i in clip})
    assert [f.index for f in sought] == [f.index for f in reference] == wanted
    assert [f.seconds for f in sought] == [f.seconds for f in reference]
    for ours, theirs in zip(clip_tensors(sought, plan), clip_tensors(reference, plan), strict=True):
        assert torch.equal(ours, theirs)
    assert sequential.sequential and sequential.decoded == wanted[-1] + 1


def count_openings(monkeypatch) -> list:
    """The sources of the containers opened from here on (each opening is one ``av.open``)."""
    opened, real_open = [], av.open
    monkeypatch.setattr(av, "open", lambda source, *args, **kwargs: opened.append(source) or real_open(
        source, *args, **kwargs))
    return opened


def keyframe_indices(path):
    """Which frames of a sequential decode are keyframes, by PyAV's own flags."""
    with av.open(str(path)) as container:
        return [i for i, frame in enumerate(container.decode(video=0)) if frame.key_frame]


@pytest.mark.parametrize("kind", SEEKABLE)
def test_seeking_decodes_from_the_keyframe_before_each_clip_and_no_frame_twice(files, kind):
    plan = preprocess.plan_clips(FRAMES)
    _, _, _, seeking, _ = read_both_ways(files[kind], plan)

    # What must be decoded: from the last keyframe at or before each clip's first frame to
    # its last frame, each frame once where those stretches overlap.
    keyframes = keyframe_indices(files[kind])
    needed = set()
    for clip in plan:
        start = max(k for k in keyframes if k <= clip[0])
        needed |= set(range(start, clip[-1] + 1))
    assert not seeking.sequential
    assert seeking.decoded == len(needed) < FRAMES
    assert 1 <= seeking.seeks <= len(plan) - 1  # the first clip starts at frame 0: no seek


@pytest.mark.parametrize("kind", list(videos.FORMATS))
def test_one_reader_asked_for_runs_in_any_order_gives_a_sequential_decodes_frames(files, kind, monkeypatch):
    # GIVEN the runs the entry search asks for, strongest candidate first: later, earlier,
    # overlapping, from the first frame, up to the last
    info = probe(files[kind], LIMITS)
    runs = [range(200, 216), range(40, 56), range(210, 230), range(0, 8), range(280, FRAMES)]
    opened = count_openings(monkeypatch)
    stats = ReadStats()
    with RunReader(files[kind], info, stats=stats) as reader:
        got = [list(reader.read([run])) for run in runs]
    # THEN each request gives its frames as a sequential decode does; a seekable file is opened
    # once and read without a sequential pass (a recorder's WebM, without an index, is read
    # sequentially for each request, after one opening that finds it cannot seek)
    monkeypatch.undo()
    reference = {f.index: f for f in read(files[kind], [range(FRAMES)], info, seek=False)}
    for run, frames in zip(runs, got, strict=True):
        assert [f.index for f in frames] == list(run)
        for frame in frames:
            assert frame.seconds == reference[frame.index].seconds
            assert np.array_equal(frame.image, reference[frame.index].image)
    if kind in SEEKABLE:
        assert len(opened) == 1 and not stats.sequential
    else:
        assert len(opened) == len(runs) + 1 and stats.sequential


@pytest.mark.parametrize("kind", list(videos.FORMATS))
def test_frames_kept_by_the_search_are_what_decoding_them_again_gives(files, kind, monkeypatch):
    # GIVEN one reader for the whole job: the probe, a grayscale run that keeps its frames
    # (the entry search), then the window's BGR frames, partly inside that run
    opened = count_openings(monkeypatch)
    with RunReader.probed(files[kind], LIMITS) as reader:
        info = reader.info
        searched = list(reader.read([range(150, 260)], gray_size=(64, 36), keep_bytes=1 << 30))
        before = dataclasses.replace(reader.stats)
        window = list(reader.read([range(100, 200)]))
        window_stats = reader.stats.since(before)
        again = list(reader.read([range(180, 190)]))  # the window's read let go of what it did not take
    monkeypatch.undo()
    assert info == probe(files[kind], LIMITS)
    reference = {f.index: f for f in read(files[kind], [range(FRAMES)], info, seek=False)}
    # THEN the window's frames are a sequential decode's, the 50 inside the run are not decoded
    # again, and a seekable file is opened once for all of it
    assert [f.index for f in searched] == list(range(150, 260))
    assert [f.index for f in window] == list(range(100, 200))
    for frame in window + again:
        assert frame.seconds == reference[frame.index].seconds
        assert np.array_equal(frame.image, reference[frame.index].image)
    assert window_stats.reused == 50
    assert reader.stats.reused == 50  # nothing was kept past the window's read
    if kind in SEEKABLE:
        assert window_stats.decoded <= 50 + 2 * GOP and len(opened) == 1


def test_the_search_keeps_frames_up_to_its_byte_budget(files):
    with RunReader.probed(files["h264_bframes"], LIMITS) as reader:
        first = next(iter(reader.read([range(0, 1)])))
        one_frame = reader.info.width * reader.info.height * 3 // 2  # yuv420p, before the decoder's padding
        list(reader.read([range(10, 40)], gray_size=(64, 36), keep_bytes=round(5.5 * one_frame)))
        assert 1 <= len(reader.kept) <= 5 and sorted(reader.kept)[0] == 10
        assert reader.kept_bytes <= round(5.5 * one_frame)
    assert first.index == 0


def test_a_recorder_webm_is_read_sequentially_and_its_timestamps_kept(files):
    plan = preprocess.plan_clips(FRAMES)
    _, sought, _, seeking, _ = read_both_ways(files["webm_recorder"], plan)

    assert seeking.sequential and seeking.seeks == 0
    by_index = {f.index: f.seconds for f in sought}
    # videos.make_encoded stamps frame n at (n + 0.3 * (7n mod 3)) / 25 s, in whole milliseconds
    assert by_index[1] == pytest.approx(0.052) and by_index[2] == pytest.approx(0.104)


@pytest.mark.parametrize("kind", ["h264_bframes", "h264_index_at_end"])
def test_a_video_trimmed_without_re_encoding_shows_the_frames_from_its_cut(files, kind, tmp_path):
    # ffmpeg -ss ... -c copy keeps the frames from the keyframe before the cut, which decoding
    # needs, behind an edit list that hides them (as the footage set's Tokyo 2020 clips are cut)
    cut_s = 1.6  # the keyframes are a second apart: the 15 frames from 1.0 s are kept, hidden
    trimmed = tmp_path / "trimmed.mp4"
    subprocess.run([videos.FFMPEG, "-hide_banner", "-loglevel", "error", "-ss", str(cut_s), "-i", str(files[kind]),
                    "-c", "copy", str(trimmed)], check=True)
    shown = FRAMES - round(cut_s * FPS)
    with av.open(str(trimmed)) as container:
        assert container.streams.video[0].frames > shown  # the hidden frames are in the container's count

    info = probe(trimmed, LIMITS)
    runs = [range(0, 20), range(150, 170), range(shown - 20, shown)]
    stats = ReadStats()
    sought = read(trimmed, runs, info, stats=stats)
    reference = read(trimmed, runs, info, seek=False)
    untrimmed = {f.index: f for f in read(files[kind], [range(r.start + 40, r.stop + 40) for r in runs],
                                          probe(files[kind], LIMITS))}

    assert info.frames == shown
    assert not stats.sequential and stats.seeks >= 1
    assert [f.index for f in sought] == [f.index for f in reference] == [i for run in runs for i in run]
    for ours, theirs in zip(sought, reference, strict=True):
        assert ours.seconds == pytest.approx(ours.index / FPS) and np.array_equal(ours.image, theirs.image)
        assert np.array_equal(ours.image, untrimmed[ours.index + round(cut_s * FPS)].image)


@pytest.mark.parametrize("kind", ["h264_bframes", "mjpeg_avi"])
def test_the_frames_are_those_opencv_decodes(files, kind):
    capture = cv2.VideoCapture(str(files[kind]))
    decoded = []
    while (frame := capture.read())[0]:
        decoded.append(frame[1])
    capture.release()
    info = probe(files[kind], LIMITS)
    for frame in read(files[kind], [range(40, 56), range(250, 266)], info):
        assert np.array_equal(frame.image, decoded[frame.index])


@pytest.mark.parametrize("degrees", [90, 270, 180])
def test_a_rotated_phone_video_is_read_upright(tmp_path, degrees):
    path = videos.make_rotated(tmp_path / "portrait.mp4", degrees=degrees, size=(160, 96))
    info = probe(path, LIMITS)
    expected_size = (96, 160) if degrees in (90, 270) else (160, 96)
    assert (info.width, info.height, info.rotation) == (*expected_size, degrees)

    # ffmpeg's own tool turns frames upright by the display matrix: the reference
    width, height = expected_size
    raw = subprocess.run([videos.FFMPEG, "-hide_banner", "-loglevel", "error", "-i", str(path), "-f", "rawvideo",
                          "-pix_fmt", "bgr24", "pipe:1"], check=True, capture_output=True).stdout
    upright = np.frombuffer(raw, np.uint8).reshape(-1, height, width, 3)
    frames = read(path, [range(0, 16), range(30, 46)], info)
    assert len(frames) == 32
    for frame in frames:
        assert frame.image.shape == (height, width, 3)
        assert np.array_equal(frame.image, upright[frame.index])


@pytest.mark.parametrize("degrees", [90, 270])
def test_the_searchs_small_gray_and_colour_frames_are_upright_too(tmp_path, degrees):
    path = videos.make_rotated(tmp_path / "portrait.mp4", degrees=degrees, size=(160, 96))
    info = probe(path, LIMITS)
    with RunReader(path, info) as reader:
        full = [f.image for f in reader.read([range(0, 8)])]
        small = list(reader.read([range(0, 8)], gray_size=(24, 40), colour_size=(12, 20)))
    for frame in small:
        assert frame.image.shape == (40, 24) and frame.colour.shape == (20, 12, 3)
        # the same picture, the same way up, as the full-size upright frame scaled down
        reference = cv2.resize(full[frame.index], (12, 20), interpolation=cv2.INTER_AREA).astype(int)
        assert np.abs(frame.colour.astype(int) - reference).mean() < 12, frame.index

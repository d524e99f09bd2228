"""A camera that follows the diver down slows as the diver enters: the camera's speed between
frames, and the arrival at the water it moves to where the camera slows, on frames cut from a
still textured world as a camera tilting over it would film them, and on such a video through
the whole search. Real footage is measured by ``python -m bench.footage``."""

import math

import cv2
import numpy as np
import pytest

from bench.footage import encode
from inference import detect, entry, follow
from inference.video import RunReader, VideoLimits

LIMITS = VideoLimits(max_seconds=600, max_pixels=3840 * 2160, min_frames=16)
FPS = 30.0


def world(width: int, height: int, seed: int = 1) -> np.ndarray:
    """A still scene to film: blotches of light and shade, (height, width) in [-40, 40]."""
    rng = np.random.default_rng(seed)
    blocks = rng.uniform(-40, 40, (height // 8 + 1, width // 8 + 1)).astype(np.float32)
    image = cv2.resize(blocks, (blocks.shape[1] * 8, blocks.shape[0] * 8), interpolation=cv2.INTER_NEAREST)
    return cv2.GaussianBlur(image, (0, 0), 1.5)[:height, :width]


def tops(still_s: float, move_s: float, hold_s: float, px_per_frame: float) -> list[int]:
    """A camera's top row frame by frame: still, then moving down at one speed, then still."""
    moving = [round(px_per_frame * k) for k in range(1, round(move_s * FPS) + 1)]
    return [0] * round(still_s * FPS) + moving + [moving[-1]] * round(hold_s * FPS)


def filmed(rows: list[int], height: int = 90, width: int = 160) -> list[np.ndarray]:
    """Grayscale frames of :func:`world` whose top rows are ``rows``."""
    scene = np.clip(world(width, max(rows) + height) + 128, 0, 255).astype(np.uint8)
    return [scene[top: top + height] for top in rows]


def times(n: int) -> list[float]:
    return [k / FPS for k in range(n)]


def test_the_speed_is_how_far_the_picture_moves_in_frame_heights_a_second():
    first, second = filmed([0, 9])  # 9 rows of 90 in 1/30 s: 3 frame heights a second
    assert follow.speed(first, second, 1 / FPS) == pytest.approx(3.0, rel=0.05)
    assert follow.speed(first, first, 1 / FPS) == pytest.approx(0.0, abs=0.05)


def test_a_picture_without_corners_has_no_speed():
    flat = np.full((90, 160), 128, np.uint8)
    assert math.isnan(follow.speed(flat, flat, 1 / FPS))


def test_an_arrival_while_the_camera_still_follows_the_diver_moves_to_where_it_slows():
    rows = tops(1.0, 2.0, 1.0, 2.0)  # stops at 3.0 s
    arrival = detect.Entry(2.5, 0.6, {"water_after": 0.98}, cue="water")  # half a second before it
    settled = follow.settle(arrival, times(len(rows)), filmed(rows))
    assert settled is not None and abs(settled.time_s - 3.0) <= 0.15, settled
    assert (settled.confidence, settled.cue, settled.features["water_after"]) == (0.6, "water", 0.98)
    assert settled.features["followed_s"] == pytest.approx(settled.time_s - 2.5, abs=1e-6)


def test_an_arrival_where_the_camera_slows_stays_where_it_is():
    rows = tops(1.0, 2.0, 1.0, 2.0)
    for arrived_s in (3.0, 2.9):  # as it stops, or a tenth of a second before
        arrival = detect.Entry(arrived_s, 0.6, cue="water")
        assert follow.settle(arrival, times(len(rows)), filmed(rows)) == arrival


def test_speeds_measured_for_one_run_are_not_measured_again_for_the_next(monkeypatch):
    rows = tops(1.0, 2.0, 1.0, 2.0)
    frames, shown = filmed(rows), times(len(rows))
    arrival = detect.Entry(2.5, 0.6, cue="water")
    calls = []
    measure = follow.speed
    monkeypatch.setattr(follow, "speed", lambda *args: calls.append(args) or measure(*args))
    speeds: dict = {}
    first = follow.settle(arrival, shown, frames, speeds)
    measured = len(calls)
    # the same frames again, as a later run that overlaps this one gives them, from frame 30 on
    assert follow.settle(arrival, shown[30:], frames[30:], speeds) == first
    assert measured > 0 and len(calls) == measured


def test_a_camera_still_following_at_the_last_frame_cannot_tell_where_the_diver_went_in():
    rows = tops(1.0, 3.0, 0.0, 2.0)  # still moving as the frames end
    assert follow.settle(detect.Entry(2.5, 0.6, cue="water"), times(len(rows)), filmed(rows)) is None


def test_an_arrival_in_a_picture_without_corners_stays_where_it_is():
    flat = [np.full((90, 160), 128, np.uint8)] * 90
    arrival = detect.Entry(2.0, 0.6, cue="water")
    assert follow.settle(arrival, times(90), flat) == arrival


def tilt_to_water(path, follow_after_s: float, seconds: float = 6.0):
    """A camera tilting from the stands down to a pool at a frame height a second: the frame is
    nine tenths water 2.9 s in, the camera follows on for ``follow_after_s`` and then holds
    still (where the diver went in) until ``seconds``. Returns the video and the time it stops."""
    width, height = 320, 180
    rows = tops(1.0, 1.9 + follow_after_s, seconds, height / FPS)[: round(seconds * FPS)]
    texture = world(width, max(rows) + height, seed=2)
    water_from = 2 * height  # the world's rows from here on are water
    scene = np.empty((len(texture), width, 3), np.float32)
    scene[:water_from] = np.stack([120 + texture, 110 + texture, 100 + texture], axis=-1)[:water_from]  # grey stands
    pool = texture[water_from:]
    scene[water_from:] = np.stack([40 + 0.3 * pool, 120 + 0.8 * pool, 170 + pool], axis=-1)  # RGB: a pool's blue
    frames = (np.clip(scene[top: top + height], 0, 255).astype(np.uint8) for top in rows)
    return encode(frames, (width, height), FPS, path), 2.9 + follow_after_s


@pytest.mark.parametrize("follow_after_s", [0.0, 0.5])
def test_the_search_puts_the_entry_where_the_camera_stops_following_not_where_water_fills_the_frame(
        tmp_path, follow_after_s):
    path, stops_s = tilt_to_water(tmp_path / "tilt.mp4", follow_after_s)
    with RunReader.probed(path, LIMITS) as reader:
        found = entry.search(reader)
    assert [e.cue for e in found] == ["water"], found
    assert abs(found[0].time_s - stops_s) <= 0.15, (found, stops_s)
    assert found[0].confidence >= detect.CONFIDENT, found


def test_a_run_that_ends_while_the_camera_still_follows_is_read_on(tmp_path, monkeypatch):
    path, stops_s = tilt_to_water(tmp_path / "tilt.mp4", 0.7, seconds=8.0)  # too long to be read whole
    # the only run ends 0.55 s after the frame has filled with water, while the camera follows on
    monkeypatch.setattr(entry, "_runs", lambda *_: [range(30, round(3.45 * FPS))])
    with RunReader.probed(path, LIMITS) as reader:
        found = entry.search(reader)
    assert len(found) == 1 and abs(found[0].time_s - stops_s) <= 0.15, (found, stops_s)
    assert found[0].confidence >= detect.CONFIDENT, found

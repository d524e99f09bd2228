"""Every entry the search finds, listed once each: overlapping runs that see one splash give
one entry, those below the listing confidence are left out, and the job picks the most
confident."""

import numpy as np
import pytest

from bench import footage, synthetic_dive
from inference import detect
from inference.scorer import choose_window
from inference.video import RunReader, VideoLimits

LIMITS = VideoLimits(max_seconds=600, max_pixels=3840 * 2160, min_frames=16)


def test_one_splash_seen_by_two_runs_is_one_entry_the_more_confident():
    found = [detect.Entry(20.9, 0.6), None, detect.Entry(5.0, 0.9), detect.Entry(19.5, 0.8)]
    assert detect.distinct(found) == [detect.Entry(5.0, 0.9), detect.Entry(19.5, 0.8)]


def test_entries_below_the_listing_confidence_are_not_listed_and_the_rest_come_in_time_order():
    found = [detect.Entry(30.0, 0.5), detect.Entry(3.0, detect.CONFIDENT), detect.Entry(9.0, detect.CONFIDENT - 0.01)]
    assert detect.listed(found) == [detect.Entry(3.0, detect.CONFIDENT), detect.Entry(30.0, 0.5)]


def test_an_entry_in_the_record_is_seconds_and_confidence_to_three_decimals():
    assert detect.Entry(13.04049, 0.81951, {"share": 1.0}).as_dict() == {"entry_s": 13.04, "confidence": 0.82}


@pytest.fixture(scope="module")
def three_dives(tmp_path_factory):
    scene = synthetic_dive.three_dives()
    return scene, synthetic_dive.write(scene, tmp_path_factory.mktemp("three") / "three.mp4")


def test_a_video_of_three_dives_lists_each_and_scores_the_most_confident(three_dives):
    scene, path = three_dives
    with RunReader.probed(path, LIMITS) as reader:
        window, entries = choose_window(reader, None)
    assert [round(e.time_s) for e in entries] == [round(t) for t in scene.entries_s], entries
    for found, true in zip(entries, scene.entries_s, strict=True):
        assert abs(found.time_s - true) <= 5 / scene.fps
    best = max(entries, key=lambda e: e.confidence)
    assert (window.how, window.entry_s, window.confidence) == ("detected", best.time_s, best.confidence)


def test_an_entry_given_or_a_video_as_short_as_the_window_lists_none(three_dives, tmp_path):
    _, path = three_dives
    with RunReader.probed(path, LIMITS) as reader:
        window, entries = choose_window(reader, 19.0)
    assert (window.how, window.entry_s, entries) == ("given", 19.0, [])
    short = synthetic_dive.write(synthetic_dive.Scene(4.08, 25, 3.0, seed=2), tmp_path / "short.mp4")
    with RunReader.probed(short, LIMITS) as reader:
        window, entries = choose_window(reader, None)
    assert (window.how, window.reason, entries) == ("whole", "too_short", [])


def _encoded(path, frames):
    return footage.encode(frames, (320, 180), 25.0, path)


def _still(seed: int):
    rng = np.random.default_rng(seed)
    scene = rng.integers(40, 200, (180, 320, 3)).astype(np.int16)
    return (np.clip(scene + rng.integers(-3, 4, scene.shape), 0, 255) for _ in range(500))


def _noise(seed: int):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (180, 320, 3)) for _ in range(500))


NO_DIVE = {
    "testsrc": lambda path: footage.testsrc(path, 20.0, 25.0, (320, 240)),
    "still": lambda path: _encoded(path, _still(0)),
    "noise": lambda path: _encoded(path, _noise(0)),
    "empty_pool": lambda path: synthetic_dive.write(synthetic_dive.Scene(20.0, 25, None, seed=3), path),
}


@pytest.mark.parametrize("kind", NO_DIVE)
def test_a_video_without_a_dive_is_scored_whole_because_no_dive_was_found(kind, tmp_path):
    path = NO_DIVE[kind](tmp_path / f"{kind}.mp4")
    with RunReader.probed(path, LIMITS) as reader:
        window, entries = choose_window(reader, None)
    assert (window.how, window.reason, entries) == ("whole", "no_dive_found", [])


def test_the_window_is_built_on_the_most_confident_entry_not_the_first(three_dives, monkeypatch):
    from inference import entry

    found = [detect.Entry(8.3, 0.5), detect.Entry(19.7, 0.9), detect.Entry(31.2, 0.6)]
    monkeypatch.setattr(entry, "search", lambda reader, on_frame=None: found)
    with RunReader.probed(three_dives[1], LIMITS) as reader:
        window, entries = choose_window(reader, None)
    assert (window.entry_s, window.confidence, entries) == (19.7, 0.9, found)

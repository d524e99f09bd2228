"""Every entry the search finds, listed once each: overlapping runs that see one splash give
one entry, those below the listing confidence are left out, and the job picks the most
confident."""

import pytest

from bench import synthetic_dive
from inference import detect
from inference.scorer import choose_window
from inference.video import RunReader, VideoLimits

LIMITS = VideoLimits(max_seconds=600, max_pixels=3840 * 2160, min_frames=16)


def test_one_splash_seen_by_two_runs_is_one_entry_the_more_confident():
    found = [detect.Entry(20.04, 0.6), None, detect.Entry(5.0, 0.9), detect.Entry(19.5, 0.8)]
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

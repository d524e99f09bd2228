"""The broadcast cue: a camera that follows the diver down arrives at the water with them.
The share of water in a frame, where it counts as arrived, what does not (a cut, a tilt that
stops short, an arrival cut away, water in view all along), and the search that ends there on
a generated broadcast-style video. Real footage is measured by ``python -m bench.footage``."""

import numpy as np
import pytest

from bench import synthetic_dive
from inference import detect, entry, water
from inference.scorer import choose_window
from inference.video import RunReader, VideoLimits

LIMITS = VideoLimits(max_seconds=600, max_pixels=3840 * 2160, min_frames=16)
POOL = (200, 140, 40)  # BGR: a pool's blue
DECK = (150, 150, 155)
SPRAY = (245, 245, 240)
SKIN = (120, 160, 215)


def frame(*bands, height: int = 27, width: int = 48) -> np.ndarray:
    """A small BGR frame of horizontal bands, each (colour, share of the rows)."""
    image = np.zeros((height, width, 3), np.uint8)
    top = 0
    for colour, part in bands:
        rows = round(part * height)
        image[top: top + rows] = colour
        top += rows
    return image


def test_water_is_a_pools_blue_and_not_spray_skin_or_deck():
    assert water.shares(frame((POOL, 1.0)))[0] == 1.0
    for other in (SPRAY, SKIN, DECK):
        assert water.shares(frame((other, 1.0)))[0] == 0.0, other
    assert water.shares(frame((DECK, 1 / 3), (POOL, 2 / 3)))[0] == pytest.approx(2 / 3, abs=0.05)


def test_spray_is_white_and_not_water_skin_or_deck():
    assert water.shares(frame((SPRAY, 1.0)))[1] == 1.0
    for other in (POOL, SKIN, DECK):
        assert water.shares(frame((other, 1.0)))[1] == 0.0, other
    assert water.shares(frame((POOL, 3 / 4), (SPRAY, 1 / 4)))[1] == pytest.approx(1 / 4, abs=0.05)
    assert np.isnan(water.shares(frame(((0, 0, 0), 1.0)))[1])


def test_dimmer_light_leaves_the_water_share_as_it_was():
    image = frame((DECK, 0.5), (POOL, 0.5))
    dim = (image * 0.45).astype(np.uint8)
    assert water.shares(dim)[0] == pytest.approx(water.shares(image)[0], abs=0.02)


def test_letterbox_bars_are_not_counted():
    assert water.shares(frame(((0, 0, 0), 0.25), (POOL, 0.5), ((0, 0, 0), 0.25)))[0] == pytest.approx(1.0)


def test_a_black_frame_shows_no_water_and_nothing_else():
    assert np.isnan(water.shares(frame(((0, 0, 0), 1.0)))[0])
    assert np.isnan(water.shares(frame(((10, 10, 10), 0.95), (POOL, 0.05)))[0])


def test_a_video_that_opens_from_black_onto_the_pool_is_no_arrival():
    # a clip cut from a longer video (a title card, a fade) opening on a pool the camera drifts over
    black = [frame(((0, 0, 0), 1.0))] * 2
    drifting = [frame((DECK, 0.3 - 0.03 * k), (POOL, 0.7 + 0.03 * k)) for k in range(10)]
    shares = [water.shares(image)[0] for image in black + drifting + [frame((POOL, 1.0))] * 20]
    assert water.arrival(times(len(shares)), shares) is None
    # the same drift after frames that show the deck is the camera arriving at the water
    shares = [water.shares(image)[0] for image in [frame((DECK, 1.0))] * 2 + drifting + [frame((POOL, 1.0))] * 20]
    assert water.arrival(times(len(shares)), shares) is not None


def times(n: int, fps: float = 25.0) -> list[float]:
    return [i / fps for i in range(n)]


def test_the_entry_is_where_a_tilt_down_has_filled_the_frame_with_water():
    shares = [0.1] * 20 + list(np.linspace(0.1, 0.95, 10)) + [0.95] * 20
    found = water.arrival(times(len(shares)), shares)
    assert found is not None and found.cue == "water"
    assert found.time_s == pytest.approx(28 / 25)  # the first frame at 0.9 of the water that follows
    assert found.confidence == pytest.approx((0.95 - 0.1) / 0.95, abs=0.01)


@pytest.mark.parametrize("whitened_by, arrives", [(SPRAY, True), (DECK, False)], ids=["spray", "deck"])
def test_water_the_splash_turns_white_is_still_water_the_camera_arrived_at(whitened_by, arrives):
    # a belly flop: the camera reaches the water, then the splash whitens a third of the frame
    tilt = [frame((DECK, 1 - part), (POOL, part)) for part in np.linspace(0.1, 0.95, 10)]
    splash = [frame((whitened_by, 0.3), (POOL, 0.7))] * 8
    images = [frame((DECK, 1.0))] * 20 + tilt + [frame((POOL, 1.0))] * 3 + splash + [frame((POOL, 1.0))] * 10
    water_shares, sprays = zip(*(water.shares(i) for i in images), strict=True)
    found = water.arrival(times(len(images)), water_shares, sprays)
    if arrives:
        assert found is not None and found.time_s == pytest.approx(29 / 25), found
    else:  # the camera moving on to the deck: it has not stayed at the water
        assert found is None or found.time_s > 35 / 25, found


def test_a_slow_motion_tilt_arrives_where_the_water_nears_the_level_it_reaches():
    # a replay slowed down is still creeping in half a second after most of the frame is water;
    # the diver enters as the last of it comes in
    creeping = list(np.linspace(0.77, 0.88, 12))
    shares = [0.3] * 20 + list(np.linspace(0.3, 0.76, 6)) + creeping + [0.98] * 20
    found = water.arrival(times(len(shares)), shares)
    assert found is not None
    assert found.time_s == pytest.approx((20 + 6 + 12) / 25)  # the first frame at 0.98


@pytest.mark.parametrize("shares", [
    [0.1] * 20 + [0.95] * 20,  # a cut to the water: in one step
    [0.1] * 20 + list(np.linspace(0.1, 0.6, 10)) + [0.6] * 20,  # a tilt that stops short of the water
    [0.1] * 20 + list(np.linspace(0.1, 0.95, 10)) + [0.95] * 4 + [0.1] * 16,  # cut away at the water
    [0.92] * 50,  # water in view all along: an underwater camera, a swimming race seen from above
], ids=["cut", "short", "cut-away", "water-all-along"])
def test_no_arrival_without_a_sweep_to_water_that_stays(shares):
    assert water.arrival(times(len(shares)), shares) is None


def test_a_run_that_ends_while_the_water_comes_in_is_still_coming():
    rising = [0.1] * 20 + list(np.linspace(0.1, 0.7, 8))
    assert water.still_coming(times(len(rising)), rising)
    arrived = [0.1] * 20 + list(np.linspace(0.1, 0.95, 10)) + [0.95] * 20
    assert not water.still_coming(times(len(arrived)), arrived)
    assert not water.still_coming(times(30), [0.1] * 30)


def test_a_splash_found_on_the_way_down_to_an_arrival_or_just_after_it_is_that_same_dive():
    flight = detect.Entry(11.0, 0.9)
    splash = detect.Entry(13.4, 1.0)  # the same entry, placed later by the splash search
    other_dives = [detect.Entry(2.0, 0.8), detect.Entry(20.0, 0.5)]
    arrival = detect.Entry(12.5, 0.7, cue="water")
    assert water.without_flights([other_dives[0], flight, arrival, splash, other_dives[1]]) == [
        other_dives[0], arrival, other_dives[1]]


@pytest.fixture(scope="module")
def followed(tmp_path_factory):
    scene = synthetic_dive.Scene(12.0, 30, 8.0, follow=True, seed=3)
    return scene, synthetic_dive.write(scene, tmp_path_factory.mktemp("follow") / "follow.mp4")


def test_a_camera_that_follows_the_diver_gives_a_detected_window_ending_at_the_entry(followed):
    scene, path = followed
    with RunReader.probed(path, LIMITS) as reader:
        window, entries = choose_window(reader, None)
    assert window.how == "detected", (window, entries)
    assert [e.cue for e in entries] == ["water"]
    assert abs(window.entry_s - scene.entry_s) <= 2 / scene.fps, window


def test_a_run_that_ends_before_the_camera_arrives_is_read_on(followed, monkeypatch):
    scene, path = followed
    # the only run ends a quarter second before the entry, half way down to the water
    monkeypatch.setattr(entry, "_runs", lambda *_: [range(150, round((scene.entry_s - 0.25) * scene.fps))])
    with RunReader.probed(path, LIMITS) as reader:
        found = entry.search(reader)
    arrivals = [e for e in found if e.cue == "water"]
    assert len(arrivals) == 1 and abs(arrivals[0].time_s - scene.entry_s) <= 2 / scene.fps, found


def test_a_followed_dive_cut_off_before_the_water_lists_no_entry(tmp_path):
    scene = synthetic_dive.Scene(7.9, 30, 8.3, follow=True, seed=3)  # the video ends 0.4 s before the water
    with RunReader.probed(synthetic_dive.write(scene, tmp_path / "cut.mp4"), LIMITS) as reader:
        window, entries = choose_window(reader, None)
    assert (window.how, entries) == ("whole", []), (window, entries)

"""Which frames the model scores: the training window (103 frames at 25 fps ending at the
entry, clips 6 x 16 from its start) and the whole-video fallback."""

import pytest

from inference import preprocess
from inference.errors import EntryAfterEnd
from inference.window import NO_DIVE_FOUND, SAMPLE_FRAMES, TOO_SHORT, TRAINING_FPS, ending_at, is_too_short, whole


def test_at_the_training_rate_the_window_is_mtl_aqas_sample():
    # GIVEN a 25 fps video whose diver enters the water at frame 500 (20 s)
    window = ending_at(20.0, 25.0, 1500, "given")
    # THEN the window is frames 398..500, and the clips are its first 96 frames, 16 at a time
    assert window.frames == tuple(range(398, 501))
    assert window.clips() == [list(range(398 + 16 * i, 398 + 16 * (i + 1))) for i in range(6)]
    assert window.as_dict() == {"how": "given", "start_frame": 398, "end_frame": 500, "start_s": 15.92,
                                "end_s": 20.0, "fps": 25.0, "video_s": 60.0, "entry_s": 20.0}


@pytest.mark.parametrize("fps", [50.0, 100.0, 60.0, 30.0])
def test_faster_videos_are_sampled_at_the_training_rate(fps):
    window = ending_at(20.0, fps, int(40 * fps), "detected", confidence=0.9)
    assert (window.start_s, window.end_s, window.fps) == (15.92, 20.0, TRAINING_FPS)
    assert len(window.frames) == SAMPLE_FRAMES
    # each instant k/25 s gets the frame shown then: dropped frames, never blended ones
    assert window.frames == tuple(int((15.92 + k / 25) * fps + 1e-6) for k in range(SAMPLE_FRAMES))
    assert window.end_frame == round(20.0 * fps)
    assert window.as_dict()["confidence"] == 0.9


def test_a_slower_video_repeats_frames():
    window = ending_at(10.0, 12.5, 300, "given")
    assert window.frames[:4] == (74, 74, 75, 75)


def test_an_entry_early_in_the_video_shifts_the_window_to_its_start_and_says_so():
    window = ending_at(1.0, 25.0, 500, "given")
    assert (window.start_s, window.end_s) == (0.0, 4.08)
    assert window.frames == tuple(range(103))
    assert window.as_dict()["shifted"] == ("the entry at 1.00 s is earlier than the window's length (4.08 s): "
                                           "the window starts at the video's start, not 4.08 s before the entry")


def test_a_window_that_ends_at_the_entry_says_nothing_of_a_shift():
    assert "shifted" not in ending_at(4.08, 25.0, 500, "given").as_dict()
    assert "shifted" not in ending_at(20.0, 25.0, 1500, "detected", confidence=0.9).as_dict()


def test_an_entry_past_the_end_is_refused_with_the_videos_length():
    # GIVEN a 3.4 s video (85 frames at 25 fps) and an entry at 9 s
    with pytest.raises(EntryAfterEnd) as refused:
        ending_at(9.0, 25.0, 85, "given")
    # THEN it is refused with a code, and the message names the video's length
    assert refused.value.code == "entry_after_end"
    assert "3.40 s" in refused.value.message and "9 s" in refused.value.message
    # ... while the entry at the very end is scored
    assert ending_at(3.4, 25.0, 85, "given").end_frame == 84


def test_the_window_never_ends_after_the_video_and_a_short_one_repeats_its_last_frame():
    # GIVEN a 2 s video (shorter than the window) and an entry at its end
    short = ending_at(2.0, 25.0, 50, "given")
    # THEN the window ends with the video, its last frame repeated to fill the 103 instants
    assert (short.start_s, short.end_s, short.video_s) == (0.0, 2.0, 2.0)
    assert short.frames[-1] == 49 and len(short.frames) == SAMPLE_FRAMES
    assert "shifted" in short.as_dict()


def test_without_an_entry_the_clips_spread_over_the_whole_video_and_the_record_says_why():
    window = whole(1000, 30.0, NO_DIVE_FOUND)
    assert window.clips() == preprocess.plan_clips(1000)
    assert window.as_dict() == {"how": "whole", "start_frame": 0, "end_frame": 999, "start_s": 0.0,
                                "end_s": 33.333, "fps": 30.0, "video_s": 33.333, "reason": "no_dive_found"}
    assert whole(90, 30.0, TOO_SHORT).as_dict()["reason"] == "too_short"


def test_a_window_built_on_an_entry_names_it_even_when_shifted_and_gives_no_reason():
    detected = ending_at(13.0404, 25.0, 500, "detected", confidence=0.82).as_dict()
    assert (detected["entry_s"], detected["confidence"]) == (13.04, 0.82) and "reason" not in detected
    shifted = ending_at(1.5, 25.0, 500, "given").as_dict()
    assert (shifted["entry_s"], shifted["end_s"]) == (1.5, 4.08) and "shifted" in shifted
    assert "reason" not in shifted


def test_a_video_no_longer_than_the_window_is_too_short_to_search():
    assert is_too_short(102, 25.0)  # 4.08 s: the window's own length
    assert not is_too_short(103, 25.0)
    assert is_too_short(122, 30.0) and not is_too_short(123, 30.0)

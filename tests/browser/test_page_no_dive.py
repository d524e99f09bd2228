"""A video in which the search found no dive says so plainly beside its number; a video shorter
than the window is scored whole, as the one dive it usually is. The jobs are the API's answers
as the page reads them (served by the test)."""

from __future__ import annotations

import time

import pytest

from tests.browser.page_support import open_served_job

pytestmark = [pytest.mark.browser, pytest.mark.stack]

JOB_ID = "d0d1e" + "0" * 27


def whole(reason: str, video_s: float) -> dict:
    return {"job_id": JOB_ID, "status": "succeeded", "filename": "pool.mp4", "size": 1000, "score": 31.5,
            "expires_at": int(time.time()) + 86400, "clip_scores": [31.5] * 6, "entries": [],
            "window": {"how": "whole", "start_frame": 0, "end_frame": round(video_s * 25) - 1, "start_s": 0.0,
                       "end_s": video_s, "fps": 25.0, "video_s": video_s, "reason": reason},
            "model": {"name": "C3D-AVG", "weights": "epoch-94", "calibrated": True}}


def test_no_dive_found_is_said_beside_the_number_which_is_marked_as_not_a_dives(open_page, stack, screenshot):
    page = open_served_job(open_page, stack, JOB_ID, whole("no_dive_found", 16.0))

    assert page.inner_text("#score") == "31.50"
    assert page.is_visible("#no-dive") and page.inner_text("#no-dive") == "No dive found in this video"
    assert page.get_attribute("#score", "data-not-a-dive") is not None
    assert "not a dive's score" in page.inner_text("#no-dive-note")
    assert page.inner_text("#window-text").startswith("No dive found in this video")
    assert page.is_hidden("#entry-marks")
    screenshot(page)

    page.click("#again")
    assert "score 31.50 · no dive found in this video" in page.inner_text(f"#recent-list li[data-job-id='{JOB_ID}']")


def test_a_video_shorter_than_the_window_is_scored_whole_and_is_not_called_no_dive(open_page, stack):
    page = open_served_job(open_page, stack, JOB_ID, whole("too_short", 3.2))

    assert page.is_hidden("#no-dive") and page.is_hidden("#no-dive-note")
    assert page.get_attribute("#score", "data-not-a-dive") is None
    assert page.inner_text("#window-text").replace("\u00a0", " ") == (
        "The video (3.20 s) is no longer than the model's 4.08 s window: the whole video was scored, as one dive.")
    page.click("#again")
    assert "whole video scored (shorter than the window)" in page.inner_text(
        f"#recent-list li[data-job-id='{JOB_ID}']")

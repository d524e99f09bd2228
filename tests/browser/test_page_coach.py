"""What a coach meets on the result: the window said truthfully (never past the video's end, the
entry they gave kept), a timeline with a time axis, the score's scale, and which entry each recent
job used. The job is the API's answer as the page reads it (served by the test), so each case is
exact and nothing is scored."""

from __future__ import annotations

import json
import time

import pytest

from tests.browser.page_support import open_served_job

pytestmark = [pytest.mark.browser, pytest.mark.stack]

JOB_ID = "c0ac4" + "0" * 27


def job(**changes) -> dict:
    """A scored job whose entry (2.98 s) is earlier than the window's 4.08 s, in a 3.90 s video."""
    record = {
        "job_id": JOB_ID, "status": "succeeded", "filename": "short.mp4", "size": 1000, "score": 12.3,
        "expires_at": int(time.time()) + 86400, "entry_s": 2.98, "clip_scores": [11.0, 12.0, 13.0, 12.5, 12.1, 13.2],
        "window": {"how": "given", "start_frame": 0, "end_frame": 116, "start_s": 0.0, "end_s": 4.08, "fps": 25.0,
                   "video_s": 3.9},
        "model": {"name": "C3D-AVG", "weights": "epoch-94", "calibrated": True},
    }
    for key, value in changes.items():
        record[key] = {**record[key], **value} if isinstance(value, dict) and key in record else value
    return record


def open_job(open_page, stack, answer: dict):
    return open_served_job(open_page, stack, JOB_ID, answer)


def inside(inner: dict, outer: dict, slack: float = 0.5) -> bool:
    return (inner["x"] >= outer["x"] - slack and inner["y"] >= outer["y"] - slack
            and inner["x"] + inner["width"] <= outer["x"] + outer["width"] + slack
            and inner["y"] + inner["height"] <= outer["y"] + outer["height"] + slack)


@pytest.mark.parametrize("shifted", [None, True], ids=["inferred", "from-the-api"])
def test_an_entry_earlier_than_the_window_is_kept_and_the_window_ends_at_the_videos_end(
        open_page, stack, screenshot, shifted):
    answer = job(window={"shifted": True}) if shifted else job()
    page = open_job(open_page, stack, answer)

    text = page.inner_text("#window-text").replace("\u00a0", " ")
    assert "The video starts 1.1 s before the window would" in text
    assert "0.00–3.90 s" in text and "your entry at 2.98 s" in text
    assert "4.08 s," not in text and "0.00–4.08" not in text and "ending at the entry you gave" not in text
    assert page.input_value("#entry-input") == "2.98"  # the person's entry, not the window's end
    assert page.is_hidden("#video")  # this browser does not have the file
    # the scored stretch fills the bar, and nothing leaves the card
    card = page.locator("#result").bounding_box()
    timeline = page.locator("#timeline").bounding_box()
    stretch = page.locator("#timeline-window").bounding_box()
    assert inside(stretch, timeline) and inside(timeline, card)
    assert stretch["width"] == pytest.approx(timeline["width"], abs=1)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    # the entry is marked where it is in the video
    entry = page.locator("#timeline-entry").bounding_box()
    assert entry["x"] - timeline["x"] == pytest.approx(timeline["width"] * 2.98 / 3.9, abs=2)
    screenshot(page)


def test_a_window_inside_the_video_says_where_it_ends(open_page, stack):
    page = open_job(open_page, stack, job(entry_s=9.5, window={"start_s": 5.42, "end_s": 9.5, "video_s": 16.0}))
    assert page.inner_text("#window-text").replace("\u00a0", " ") == (
        "The model scored 5.42–9.50 s, ending at the entry you gave (9.50 s).")
    assert page.input_value("#entry-input") == "9.50"


def test_the_timeline_has_a_time_axis_shows_the_time_under_the_pointer_and_a_click_chooses_it(
        open_page, stack, screenshot):
    page = open_job(open_page, stack, job(entry_s=9.5, window={"start_s": 5.42, "end_s": 9.5, "video_s": 16.0}))
    labels = page.locator("#timeline-axis .timeline__tick").all_inner_texts()
    assert labels[0] == "0 s" and labels[-1] == "16 s" and len(labels) >= 4
    assert page.inner_text("#rescore") == "Score the dive entering here"

    page.locator("#timeline").scroll_into_view_if_needed()
    box = page.locator("#timeline").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 12 / 16, box["y"] + box["height"] / 2)
    assert page.is_visible("#timeline-hover-label")
    assert float(page.inner_text("#timeline-hover-label").removesuffix(" s")) == pytest.approx(12, abs=0.2)
    screenshot(page, "hover")
    page.mouse.click(box["x"] + box["width"] * 12 / 16, box["y"] + box["height"] / 2)
    assert float(page.input_value("#entry-input")) == pytest.approx(12, abs=0.2)
    assert f"end at {page.input_value('#entry-input')} s" in page.inner_text("#rescore-hint")
    assert page.is_visible("#timeline-pick")


def test_calibrated_weights_show_the_scale_and_untrained_ones_say_there_is_none(open_page, stack, screenshot):
    page = open_job(open_page, stack, job())
    assert page.is_visible("#scale-note")
    assert "from 0 to about 104.5" in page.inner_text("#scale-note")
    assert page.is_hidden("#untrained-note")

    page = open_job(open_page, stack, job(model={"calibrated": False}))
    assert page.is_hidden("#scale-note")
    assert page.is_visible("#untrained-note")
    assert "no scale at all" in page.inner_text("#untrained-note")
    screenshot(page, "untrained")


@pytest.mark.parametrize(("changes", "said"), [
    ({}, "entry 2.98 s"),
    ({"entry_s": None, "window": {"how": "detected", "start_s": 5.0, "end_s": 9.08, "video_s": 16.0,
                                   "confidence": 0.9}}, "entry found"),
    ({"entry_s": None, "window": {"how": "whole", "start_s": 0.0, "end_s": 16.0, "video_s": 16.0}}, "whole video"),
])
def test_the_recent_list_says_which_entry_each_job_used(open_page, stack, changes, said):
    page = open_job(open_page, stack, job(**changes))
    page.click("#again")
    assert said in page.inner_text(f"#recent-list li[data-job-id='{JOB_ID}']")


# -- the video beside the result, and a rescore keeping the score it replaces -------------------

SECOND_ID = "5ec0d" + "0" * 27


@pytest.fixture(scope="module")
def dive(tmp_path_factory):
    from bench import synthetic_dive

    return synthetic_dive.write(synthetic_dive.Scene(8.0, 30, 6.0, seed=3),
                                tmp_path_factory.mktemp("page-coach") / "dive.mp4")


def test_the_video_scrubs_with_the_timeline_and_a_rescore_keeps_the_score_it_replaces(
        open_page, stack, dive, screenshot):
    from tests.browser.page_support import drop

    reads = {}

    def storage(route):  # the upload "arrives"; what is scored is the test's answer below
        route.fulfill(status=204, headers={"Access-Control-Allow-Origin": "*"})

    def score(route):
        job_id = route.request.url.split("/v1/jobs/")[1].split("?")[0]
        reads[job_id] = reads.get(job_id, 0) + 1
        if job_id == SECOND_ID:
            answer = job(job_id=SECOND_ID, filename="dive.mp4", score=20.5, entry_s=7.0,
                         window={"start_s": 2.92, "end_s": 7.0, "video_s": 8.0})
            if reads[job_id] < 4:
                answer = {**answer, "status": "processing", "stage": "scoring", "progress": 0.5, "score": None}
        else:
            answer = job(job_id=job_id, filename="dive.mp4", score=12.3, entry_s=None,
                         window={"how": "detected", "start_s": 1.92, "end_s": 6.0, "video_s": 8.0, "confidence": 0.9})
        route.fulfill(status=200, body=json.dumps(answer), headers={
            "Content-Type": "application/json", "Access-Control-Allow-Origin": "*"})

    def rescore(route):
        route.fulfill(status=201, body=json.dumps({"job_id": SECOND_ID, "status": "queued"}), headers={
            "Content-Type": "application/json", "Access-Control-Allow-Origin": "*"})

    def before(page):
        page.route("**/divescore-uploads**", storage)
        page.route(f"{stack.score_url}/v1/jobs/*", score)
        page.route(f"{stack.presign_url}/v1/jobs/*/rescore", rescore)

    page = open_page(stack.web_url, before=before)
    drop(page, dive, "video/mp4")
    page.wait_for_selector("#result:not([hidden])", timeout=60_000)

    # the file this page has is there to scrub, at the entry found
    page.wait_for_function("() => document.getElementById('video').readyState >= 1")
    assert page.evaluate("document.getElementById('video').src").startswith("blob:")
    assert page.evaluate("document.getElementById('video').muted")
    assert page.evaluate("document.getElementById('video').currentTime") == pytest.approx(6.0, abs=0.05)
    # seeking the video moves the chosen time ...
    page.evaluate("document.getElementById('video').currentTime = 3")
    page.wait_for_function("() => document.getElementById('entry-input').value === '3.00'")
    assert page.evaluate("parseFloat(document.getElementById('timeline-pick').style.left)") == pytest.approx(
        100 * 3 / 8, abs=0.01)
    # ... and choosing on the timeline moves the video
    page.locator("#timeline").scroll_into_view_if_needed()
    box = page.locator("#timeline").bounding_box()
    page.mouse.click(box["x"] + box["width"] * 7 / 8, box["y"] + box["height"] / 2)
    picked = float(page.input_value("#entry-input"))
    assert picked == pytest.approx(7, abs=0.1)
    page.wait_for_function(f"() => Math.abs(document.getElementById('video').currentTime - {picked}) < 0.05")
    screenshot(page, "first")

    page.click("#rescore")
    page.wait_for_selector("#scoring:not([hidden])")
    assert page.inner_text("#scoring-before").replace("\u00a0", " ") == "Before: 12.30 · entry found at 6.00 s"
    screenshot(page, "while")
    page.wait_for_function("() => document.getElementById('score').textContent === '20.50'", timeout=60_000)
    assert page.is_visible("#result")
    assert page.inner_text("#before") == "Before: 12.30 · entry found at 6.00 s"
    assert page.is_visible("#video")  # the same video, never sent again
    screenshot(page, "after")

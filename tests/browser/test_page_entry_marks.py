"""Every entry the search found is a mark over the timeline, and one click (or Enter) on a mark
scores the video again at that entry, the score it replaces kept beside the new one. The jobs
are the API's answers as the page reads them (served by the test), so each case is exact."""

from __future__ import annotations

import time

import pytest

from tests.browser.page_support import open_served_job, serve_json

pytestmark = [pytest.mark.browser, pytest.mark.stack]

FIRST_ID = "e1e1e" + "0" * 27
SECOND_ID = "e2e2e" + "0" * 27
ENTRIES = [{"entry_s": 6.04, "confidence": 0.71}, {"entry_s": 13.0, "confidence": 0.92},
           {"entry_s": 20.04, "confidence": 0.55}]


def scored(job_id: str, score: float, window: dict, **fields) -> dict:
    return {"job_id": job_id, "status": "succeeded", "filename": "three.mp4", "size": 1000, "score": score,
            "expires_at": int(time.time()) + 86400, "clip_scores": [score] * 6,
            "window": {"start_frame": 0, "end_frame": 101, "fps": 25.0, "video_s": 24.0, **window},
            "model": {"name": "C3D-AVG", "weights": "epoch-94", "calibrated": True}, **fields}


FIRST = scored(FIRST_ID, 40.5, {"how": "detected", "start_s": 8.92, "end_s": 13.0, "entry_s": 13.0,
                                "confidence": 0.92}, entries=ENTRIES)
SECOND = scored(SECOND_ID, 22.25, {"how": "given", "start_s": 1.96, "end_s": 6.04, "entry_s": 6.04},
                entries=[], entry_s=6.04, rescore_of=FIRST_ID)


def marks(page, where: str) -> list[dict]:
    return page.eval_on_selector_all(f"#{where} .entry-mark", """marks => marks.map(m => ({
        label: m.getAttribute('aria-label'), current: m.getAttribute('aria-current') === 'true',
        left: parseFloat(m.style.left), disabled: m.getAttribute('aria-disabled') === 'true'}))""")


def test_each_entry_found_is_a_labelled_mark_and_enter_on_one_scores_it_keeping_the_marks(
        open_page, stack, screenshot):
    released, asked = [], []

    def score(route):  # the second job runs until the test has seen it running
        serve_json(route, SECOND if released else {**SECOND, "status": "processing", "stage": "scoring",
                                                   "progress": 0.5, "score": None, "window": None})

    def rescore(route):
        asked.append(route.request.post_data_json)
        serve_json(route, {"job_id": SECOND_ID, "status": "queued", "entry_s": 6.04, "rescore_of": FIRST_ID}, 201)

    def before(page):
        page.route(f"{stack.score_url}/v1/jobs/{SECOND_ID}*", score)
        page.route(f"{stack.presign_url}/v1/jobs/{FIRST_ID}/rescore", rescore)

    page = open_served_job(open_page, stack, FIRST_ID, FIRST, before=before)

    # THEN three marks, each where its entry is, labelled with its time and confidence; the
    # one the window is built on says it is the one scored
    shown = marks(page, "entry-marks")
    assert [m["left"] for m in shown] == pytest.approx([100 * e["entry_s"] / 24 for e in ENTRIES], abs=0.01)
    assert [m["label"].replace("\u00a0", " ") for m in shown] == [
        "Entry at 6.04 s, confidence 71%: score the dive entering here",
        "Entry at 13.00 s, confidence 92% (the one scored)",
        "Entry at 20.04 s, confidence 55%: score the dive entering here"]
    assert [m["current"] for m in shown] == [False, True, False]
    assert page.is_visible("#found-key")
    assert page.is_hidden("#no-dive")  # a dive was found
    screenshot(page, "marks")

    # WHEN the person tabs to the first mark and presses Enter
    page.focus("#entry-marks .entry-mark >> nth=0")
    page.keyboard.press("Enter")

    # THEN that entry is scored again, and the marks stay in sight while it runs ...
    page.wait_for_selector("#scoring:not([hidden])")
    assert asked == [{"entry_s": 6.04}]
    running = marks(page, "scoring-entry-marks")
    assert [m["current"] for m in running] == [True, False, False] and all(m["disabled"] for m in running)
    assert page.inner_text("#scoring-before").replace("\u00a0", " ") == "Before: 40.50 · entry found at 13.00 s"
    screenshot(page, "while")
    released.append(True)

    # ... and after, on the new job's timeline (its own search found nothing: its entry was given)
    page.wait_for_function("() => document.getElementById('score').textContent === '22.25'")
    assert page.inner_text("#before").replace("\u00a0", " ") == "Before: 40.50 · entry found at 13.00 s"
    assert [m["current"] for m in marks(page, "entry-marks")] == [True, False, False]
    screenshot(page, "after")

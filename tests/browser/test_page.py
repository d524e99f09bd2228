"""The web page in real headless Chromium against the native stack: a video dropped on the
page ends showing its score; a large file goes up in parts with the progress bar moving;
files the page must refuse are refused with their messages; a job that fails shows its error."""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.browser.page_support import (
    SCORE_TIMEOUT_MS,
    api_requests,
    drop,
    is_job_creation,
    score_dropped,
    throttle_uploads,
)
from tests.support.chromium import PHONE
from tests.support.helpers import wait_until
from tests.support.videos import files_to_submit, make_sparse

pytestmark = [pytest.mark.browser, pytest.mark.stack]


@pytest.fixture(scope="module")
def videos(tmp_path_factory, stack):
    folder = tmp_path_factory.mktemp("page-videos")
    return {
        **files_to_submit(folder, stack.settings.multipart_threshold_bytes),
        "huge": make_sparse(folder / "huge.mp4", stack.settings.max_upload_bytes + 40_000_000),
    }


def test_a_small_video_dropped_on_the_page_ends_showing_its_score(page, stack, videos, screenshot):
    job_id = score_dropped(page, videos["small"])

    job = stack.store.get(job_id)
    assert job["status"] == "succeeded"
    assert page.inner_text("#score") == f"{job['score']:.2f}"
    assert job["model"]["name"] in page.inner_text("#model-line")
    assert page.is_visible("#untrained-note") == (job["model"]["calibrated"] is False)
    assert page.locator("#chart rect.chart__bar").count() == len(job["clip_scores"])
    assert job.get("filmstrip_key"), "a succeeded job has a filmstrip"
    page.wait_for_function("() => document.getElementById('filmstrip').naturalWidth > 0")
    assert page.evaluate("document.getElementById('filmstrip').naturalWidth") == 8 * 171  # the 8 sampled frames
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], "wider than a phone"
    screenshot(page)


def test_a_file_over_the_multipart_threshold_uploads_in_parts_with_the_progress_bar_moving(
        page, stack, videos, screenshot):
    size = videos["large"].stat().st_size
    throttle_uploads(page, 3_000_000)
    parts_sent = []
    page.on("requestfinished", lambda r: parts_sent.append(r) if r.method == "PUT" else None)

    with page.expect_response(is_job_creation) as created:
        page.set_input_files("#file-input", str(videos["large"]))
    job = created.value.json()
    assert job["upload"]["method"] == "MULTIPART"

    # WHILE it uploads, the bar and its text move forward
    seen, shot = [], False
    with page.expect_response(lambda r: r.url == job["upload"]["complete_url"]) as completed:
        while page.evaluate("document.body.dataset.state") == "uploading":
            value = page.evaluate("document.getElementById('upload-bar').value")
            seen.append((value, page.inner_text("#upload-text")))
            if 0.3 < value < 0.8 and not shot:
                screenshot(page, "uploading")
                shot = True
            time.sleep(0.05)
    assert completed.value.status == 200

    values = [v for v, _ in seen]
    assert values == sorted(values), "the bar never goes back"
    assert len({v for v in values if 0 < v < 1}) >= 3, f"the bar jumped: {values}"
    assert any(" of " in text and "%" in text and "/s" in text for _, text in seen), seen
    assert sorted(int(r.url.split("partNumber=")[1].split("&")[0]) for r in parts_sent) == [
        p["part_number"] for p in job["upload"]["parts"]
    ]
    assert len(job["upload"]["parts"]) > 1
    stored = stack.client("s3").head_object(Bucket=stack.settings.bucket,
                                           Key=stack.settings.upload_key(job["job_id"]))
    assert stored["ContentLength"] == size

    page.wait_for_selector("#result:not([hidden]), #failure:not([hidden])", timeout=SCORE_TIMEOUT_MS)
    screenshot(page)
    assert page.is_visible("#result"), page.inner_text("#failure-message")


def test_an_oversized_file_is_refused_before_anything_is_sent(page, stack, videos, screenshot):
    sent = api_requests(page, stack)
    size, limit = videos["huge"].stat().st_size, stack.settings.max_upload_bytes

    page.set_input_files("#file-input", str(videos["huge"]))

    error = page.wait_for_selector("#pick-error:not([hidden])")
    assert error.inner_text() == f"This file is {size / 1e6:.0f} MB; the limit is {limit / 1e6:.0f} MB."
    assert page.inner_text("#status") == error.inner_text()  # announced
    assert sent == []
    screenshot(page)


def test_a_file_that_is_not_a_video_is_refused_by_its_type(page, stack, videos, screenshot):
    sent = api_requests(page, stack)

    drop(page, videos["text"], "text/plain")

    error = page.wait_for_selector("#pick-error:not([hidden])")
    assert error.inner_text().startswith("“\u2068notes.txt\u2069” is not a video. Choose an MP4, MOV, WebM")
    assert sent == []
    screenshot(page)


def test_a_job_that_fails_in_the_function_shows_its_error(page, stack, videos, screenshot):
    with page.expect_response(is_job_creation) as created:
        drop(page, videos["broken"], "video/mp4")
    job_id = created.value.json()["job_id"]

    page.wait_for_selector("#failure:not([hidden])", timeout=SCORE_TIMEOUT_MS)

    job = stack.store.get(job_id)
    assert job["status"] == "failed"
    assert page.inner_text("#failure-message") == job["error"]["message"]
    screenshot(page)
    page.click("#retry")
    assert page.is_visible("#pick")


def test_cancel_stops_the_upload(page, stack, videos, screenshot):
    throttle_uploads(page, 1_000_000)
    sent = api_requests(page, stack)
    with page.expect_response(is_job_creation) as created:
        page.set_input_files("#file-input", str(videos["large"]))
    job_id = created.value.json()["job_id"]
    page.wait_for_function("() => document.getElementById('upload-bar').value > 0.05")

    page.click("#cancel")

    page.wait_for_selector("#pick:not([hidden])")
    assert page.inner_text("#pick-note") == "The upload was cancelled."
    assert page.inner_text("#status") == "Upload cancelled. Choose a video."
    assert not any("/upload/complete" in r.url for r in sent)
    # The job goes too: canceled, its multipart upload aborted.
    wait_until(lambda: stack.store.get(job_id)["status"] == "canceled", 30, what="the job to be canceled")
    uploads = stack.client("s3").list_multipart_uploads(Bucket=stack.settings.bucket,
                                                        Prefix=stack.settings.upload_key(job_id))
    assert uploads.get("Uploads", []) == []
    screenshot(page)


def test_cancel_while_scoring_cancels_the_job(page, stack, videos, screenshot):
    os.kill(stack.pids["dispatcher"], signal.SIGSTOP)  # the runtimes are busy: the job waits
    try:
        with page.expect_response(is_job_creation) as created:
            drop(page, videos["small"], "video/mp4")
        job_id = created.value.json()["job_id"]
        page.wait_for_selector("#scoring:not([hidden])")
        screenshot(page, "waiting")

        page.click("#job-cancel")

        page.wait_for_selector("#pick:not([hidden])")
        assert page.inner_text("#pick-note") == "The job was canceled."
        assert page.inner_text("#status") == "Job canceled. Choose a video."
        assert stack.store.get(job_id)["status"] == "canceled"
    finally:
        os.kill(stack.pids["dispatcher"], signal.SIGCONT)


def test_the_file_picker_is_reached_with_the_keyboard_and_shows_focus(page):
    page.keyboard.press("Tab")

    assert page.evaluate("document.activeElement.id") == "file-input"
    assert page.evaluate("document.activeElement.labels[0].id") == "drop-zone"
    outline = page.evaluate("getComputedStyle(document.getElementById('drop-zone')).outlineStyle")
    assert outline not in ("", "none")

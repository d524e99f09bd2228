"""The page a coach comes back to, in real headless Chromium: the job in the address survives
a reload (scoring and uploads alike, sending only the parts storage lacks), a connection cut
mid-part costs only that part, five videos at once end in a ranked table and a CSV, types are
taken from the extension when the browser names one the API does not list, and a file name
can never rewrite what the page shows."""

from __future__ import annotations

import csv
import hashlib
import io
import re
import shutil
import threading
import time

import pytest
import requests

from devstack.holds import NEXT_JOB
from divescore.jobs import Stage
from tests.browser.page_support import (
    SCORE_TIMEOUT_MS,
    drop,
    drop_many,
    is_job_creation,
    part_number,
    throttle_uploads,
    wait_while_page_runs,
)
from tests.support.helpers import free_port, running_stack
from tests.support.stack_support import TcpGate, new_job, padded, post_upload, small_clip
from tests.support.videos import make_large_video, make_video

pytestmark = [pytest.mark.browser, pytest.mark.stack]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("resume-videos")


def md5_of(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def stored_object(stack, job_id: str) -> bytes:
    body = stack.client("s3").get_object(Bucket=stack.settings.bucket, Key=stack.settings.upload_key(job_id))["Body"]
    return body.read()


def leaving_is_warned(page) -> bool:
    """Whether the page asks to stay if one leaves it now (its beforeunload handler)."""
    return page.evaluate("""() => {
        const event = new Event("beforeunload", { cancelable: true });
        window.dispatchEvent(event);
        return event.defaultPrevented;
    }""")


# -- reload ----------------------------------------------------------------------------------

def test_a_reload_while_scoring_resumes_from_the_address_and_shows_the_score(page, stack, folder, screenshot):
    video = make_video(folder / "long-dive.mp4", seconds=8, size=(176, 144), codec="h264")
    with stack.holds.arm(NEXT_JOB, "start") as hold:  # the page creates the job: hold the next one
        with page.expect_response(is_job_creation) as created:
            drop(page, video, "video/mp4")
        job_id = created.value.json()["job_id"]
        assert hold.reached(SCORE_TIMEOUT_MS / 1000)["job_id"] == job_id
        page.wait_for_selector("#scoring:not([hidden])")
        assert page.url.endswith(f"?job={job_id}")
        assert page.inner_text("#job-id") == job_id  # the id is shown, with its link
        assert page.get_attribute("#job-link", "href") == f"?job={job_id}"
        screenshot(page, "scoring")

        # WHEN the page is reloaded while the job is being scored
        assert stack.store.get(job_id)["status"] == "processing"
        page.reload()
        page.wait_for_selector("body[data-ready=true]")

    # THEN it follows the same job to its score
    assert page.url.endswith(f"?job={job_id}")
    page.wait_for_selector("#result:not([hidden])", timeout=SCORE_TIMEOUT_MS)
    job = stack.store.get(job_id)
    assert page.inner_text("#score") == f"{job['score']:.2f}"
    screenshot(page, "resumed")

    # AND this browser lists it among its recent jobs, with its score, as a link
    page.click("#again")
    assert page.url.endswith("/")
    recent = page.locator(f"#recent-list li[data-job-id='{job_id}']")
    assert recent.locator("a").get_attribute("href") == f"?job={job_id}"
    assert f"succeeded · score {job['score']:.2f}" in recent.inner_text()
    screenshot(page, "recent")


def test_a_reload_mid_multipart_upload_sends_only_the_missing_parts(page, stack, folder, screenshot):
    part = stack.settings.part_size_bytes
    video = make_large_video(folder / "five-parts.mp4", 4 * part + 1000)  # 5 parts
    data = video.read_bytes()
    throttle_uploads(page, 2_000_000)
    page.on("dialog", lambda dialog: dialog.accept())  # "leave the page?" once it asks
    phase = ["before"]
    sent: dict[str, list[int]] = {"before": [], "after": []}
    acked: dict[str, list[int]] = {"before": [], "after": []}

    def on_request(request):
        if request.method == "PUT" and part_number(request.url):
            sent[phase[0]].append(part_number(request.url))

    def on_response(response):
        if response.request.method == "PUT" and part_number(response.url) and response.status == 200:
            acked[phase[0]].append(part_number(response.url))

    page.on("request", on_request)
    page.on("response", on_response)
    assert not leaving_is_warned(page)
    with page.expect_response(is_job_creation) as created:
        page.set_input_files("#file-input", str(video))
    job = created.value.json()
    numbers = [p["part_number"] for p in job["upload"]["parts"]]
    assert numbers == [1, 2, 3, 4, 5]

    # WHILE some parts are acknowledged and others on their way, the page is reloaded
    wait_while_page_runs(page, lambda: len(acked["before"]) >= 2, 120, what="two parts acknowledged")
    assert leaving_is_warned(page), "leaving mid-upload must ask first"
    screenshot(page, "uploading")
    phase[0] = "after"
    with page.expect_response(lambda r: r.url == job["upload"]["complete_url"], timeout=120_000) as completed:
        page.reload()
        page.wait_for_selector("body[data-ready=true]")
        assert page.url.endswith(f"?job={job['job_id']}")
        page.wait_for_selector("#uploading:not([hidden])")
        screenshot(page, "resumed")
    assert completed.value.status == 200

    # THEN only the parts storage did not hold were sent again, each once, and the video is whole
    held_before = set(numbers) - set(sent["after"])
    assert set(acked["before"]) <= held_before, "an acknowledged part was sent again"
    assert sorted(sent["after"]) == sorted(set(sent["after"])), f"a part sent twice: {sent['after']}"
    assert set(sent["after"]) | set(acked["before"]) == set(numbers)
    assert 0 < len(sent["after"]) < len(numbers), sent
    assert md5_of(stored_object(stack, job["job_id"])) == md5_of(data)
    page.wait_for_selector("#scoring:not([hidden]), #result:not([hidden])")
    assert not leaving_is_warned(page)


def test_a_reload_without_the_kept_file_asks_for_it_and_sends_only_the_missing_parts(page, stack, folder,
                                                                                     screenshot):
    video = make_large_video(folder / "asked-again.mp4", 2 * stack.settings.part_size_bytes + 1000)  # 3 parts
    other = padded(small_clip(folder / "another.mp4", offset=70), 1_000_000)
    throttle_uploads(page, 2_000_000)
    page.on("dialog", lambda dialog: dialog.accept())
    phase = ["before"]
    sent: dict[str, list[int]] = {"before": [], "after": []}
    acked: list[int] = []
    page.on("request", lambda r: sent[phase[0]].append(part_number(r.url))
            if r.method == "PUT" and part_number(r.url) else None)
    page.on("response", lambda r: acked.append(part_number(r.url))
            if r.request.method == "PUT" and part_number(r.url) and r.status == 200 and phase[0] == "before" else None)
    with page.expect_response(is_job_creation) as created:
        page.set_input_files("#file-input", str(video))
    job = created.value.json()
    wait_while_page_runs(page, lambda: len(acked) >= 1, 120, what="a part acknowledged")

    # WHEN the browser no longer has the file (storage cleared, as a private window does) and reloads
    page.evaluate("""() => new Promise((resolve) => {
        const open = indexedDB.open("divescore");
        open.onsuccess = () => {
            const tx = open.result.transaction("files", "readwrite");
            tx.objectStore("files").clear();
            tx.oncomplete = () => { open.result.close(); resolve(); };
        };
    })""")
    phase[0] = "after"
    page.reload()
    page.wait_for_selector("#needs-file:not([hidden])")
    assert page.inner_text("#needs-file-name") == "asked-again.mp4"
    screenshot(page, "asked")

    # THEN another file is refused, and the same one finishes the upload with the parts storage lacks
    page.set_input_files("#needs-file-input", str(other))
    assert "This is not the same file" in page.wait_for_selector("#needs-file-error:not([hidden])").inner_text()
    with page.expect_response(lambda r: r.url == job["upload"]["complete_url"], timeout=120_000) as completed:
        page.set_input_files("#needs-file-input", str(video))
    assert completed.value.status == 200
    assert set(sent["after"]).isdisjoint(acked), (sent, acked)
    assert set(sent["after"]) | set(acked) == {1, 2, 3}
    assert md5_of(stored_object(stack, job["job_id"])) == md5_of(video.read_bytes())
    page.wait_for_selector("#scoring:not([hidden]), #result:not([hidden])")


# -- a connection cut mid-part ---------------------------------------------------------------

class CuttingProxy(TcpGate):
    """A TcpGate that resets, once (again after ``rearm()``), the first connection that has
    carried ``after`` bytes from the browser: a connection dropped in the middle of an upload's
    body. ``cut_request`` is the request line (method and target) that connection was carrying."""

    REQUEST = re.compile(rb"(PUT|POST) (\S+) HTTP/1\.1\r\n")

    def __init__(self, target_port: int, after: int):
        super().__init__(target_port)
        self.after, self.cut_request, self.done = after, None, threading.Event()

    def rearm(self) -> None:
        self.cut_request = None
        self.done.clear()

    def _passes(self, connection: dict, data: bytes) -> bool:
        found = self.REQUEST.findall(data[:4096])
        if found:
            connection["request"] = (found[-1][0].decode(), found[-1][1].decode())
        connection["carried"] = connection.get("carried", 0) + len(data)
        if connection["carried"] > self.after and "request" in connection and not self.done.is_set():
            self.cut_request = connection["request"]
            self.done.set()
            return False
        return True


@pytest.fixture(scope="module")
def proxied_stack(tmp_path_factory):
    """A stack whose browser-facing S3 address goes through a CuttingProxy, with no function
    and no dispatcher: uploaded jobs stay queued, and the test plays the worker."""
    emulator_port = free_port()
    proxy = CuttingProxy(emulator_port, after=1_500_000)
    with running_stack({"DIVESCORE_EMULATOR_PORT": str(emulator_port), "DIVESCORE_PUBLIC_S3_URL": proxy.url},
                       without=("dispatcher", "function-0")) as stack:
        stack.proxy = proxy
        yield stack
    proxy.close()


def test_a_connection_cut_mid_part_retries_that_part(open_page, proxied_stack, folder, screenshot):
    stack = proxied_stack
    stack.proxy.rearm()
    page = open_page(stack.web_url)
    video = make_large_video(folder / "three-parts.mp4", 2 * stack.settings.part_size_bytes + 1000)
    data = video.read_bytes()
    throttle_uploads(page, 4_000_000)
    puts, failed = [], []
    page.on("requestfinished", lambda r: puts.append((part_number(r.url), r.response().status))
            if r.method == "PUT" else None)
    page.on("requestfailed", lambda r: failed.append(part_number(r.url)) if r.method == "PUT" else None)

    with page.expect_response(is_job_creation) as created:
        page.set_input_files("#file-input", str(video))
    job = created.value.json()
    assert job["upload"]["parts"][0]["url"].startswith(stack.proxy.url)
    with page.expect_response(lambda r: r.url == job["upload"]["complete_url"], timeout=120_000) as completed:
        wait_while_page_runs(page, stack.proxy.done.is_set, 60, what="the proxy cutting a connection")
        screenshot(page, "retrying")
    assert completed.value.status == 200

    # THEN the part whose connection was cut failed once and went again; every other part went once
    method, target = stack.proxy.cut_request
    assert method == "PUT"
    assert failed == [part_number(target)]
    assert sorted(n for n, status in puts if status == 200) == [1, 2, 3]
    assert md5_of(stored_object(stack, job["job_id"])) == md5_of(data)
    page.wait_for_selector("#scoring:not([hidden])")
    screenshot(page, "queued")


def test_a_presigned_post_cut_mid_way_starts_again_by_itself(open_page, proxied_stack, folder, screenshot):
    stack = proxied_stack
    stack.proxy.rearm()
    page = open_page(stack.web_url)
    video = padded(small_clip(folder / "one-post.mp4", offset=60), 3_000_000)
    assert video.stat().st_size <= stack.settings.multipart_threshold_bytes
    throttle_uploads(page, 2_000_000)
    posts = []
    page.on("requestfinished", lambda r: posts.append(r.response().status) if r.method == "POST"
            and r.url.startswith(stack.proxy.url) else None)
    page.on("requestfailed", lambda r: posts.append("failed") if r.method == "POST" else None)

    with page.expect_response(is_job_creation) as created:
        page.set_input_files("#file-input", str(video))
    job = created.value.json()
    assert job["upload"]["method"] == "POST"
    wait_while_page_runs(page, stack.proxy.done.is_set, 60, what="the proxy cutting the POST")
    wait_while_page_runs(page, lambda: 204 in posts, 60, what="the POST sent again")

    assert stack.proxy.cut_request[0] == "POST"
    assert posts == ["failed", 204]
    assert md5_of(stored_object(stack, job["job_id"])) == md5_of(video.read_bytes())
    page.wait_for_selector("#scoring:not([hidden])")
    screenshot(page)


def test_while_scoring_the_page_estimates_the_time_left(open_page, proxied_stack, screenshot):
    stack = proxied_stack
    job = new_job(stack).json()
    assert post_upload(job, b"\x00" * 1000).status_code == 204
    page = open_page(f"{stack.web_url}/?job={job['job_id']}")
    page.wait_for_selector("#scoring:not([hidden])")

    # GIVEN a worker that reports its progress as the function does
    claimed = stack.store.claim(job["job_id"], lease_seconds=120)
    for progress in (0.2, 0.3, 0.4, 0.5):
        stack.store.progress(job["job_id"], claimed["claim"], stage=Stage.SCORING, progress=progress)
        time.sleep(0.6)

    # THEN the page says how long is left, from the rate it saw (0.1 per 0.6 s: about 3 s for 0.5)
    text = page.wait_for_function(
        "() => /left/.test(document.getElementById('stage-text').textContent) && "
        "document.getElementById('stage-text').textContent").json_value()
    assert text.startswith("Running the model · 50%"), text
    seconds = int(re.search(r"about (\d+) s left", text).group(1))
    assert 1 <= seconds <= 10, text
    screenshot(page)


@pytest.mark.parametrize(("status", "after", "says"), [
    ("queued", "03:00", "Still waiting in the queue after 3 min"),
    ("processing", "10:00", "Scoring has taken longer than the scoring function may run"),
])
def test_a_job_much_later_than_expected_says_so_and_what_to_do(open_page, proxied_stack, screenshot, status, after,
                                                              says):
    stack = proxied_stack
    job = new_job(stack).json()
    assert post_upload(job, b"\x00" * 1000).status_code == 204
    stack.store.mark_queued(job["job_id"])  # as the upload's event does; no function takes it here
    if status == "processing":
        stack.store.claim(job["job_id"], lease_seconds=900)
    page = open_page(f"{stack.web_url}/?job={job['job_id']}", before=lambda p: p.clock.install())
    page.wait_for_selector("#scoring:not([hidden])")
    # The name comes with the job's first answer: from then on the page counts how long it waits.
    page.wait_for_function("() => document.getElementById('scoring-name').textContent === 'dive.mp4'")
    assert page.is_hidden("#scoring-note")

    page.clock.fast_forward(after)

    note = page.wait_for_selector("#scoring-note:not([hidden])")
    assert says in note.inner_text()
    assert "come back with its link" in note.inner_text()
    screenshot(page)


# -- several videos at once ------------------------------------------------------------------

def test_five_videos_dropped_at_once_end_in_a_ranked_table_and_a_csv(page, stack, folder, screenshot):
    clips = [small_clip(folder / f"dive-{n}.mp4", offset=5 * n) for n in range(5)]
    created = []
    page.on("response", lambda r: created.append(r.json()["job_id"]) if is_job_creation(r) and r.ok else None)

    drop_many(page, [(clip, "video/mp4") for clip in clips])

    page.wait_for_selector("#batch:not([hidden])")
    assert page.locator("#batch-list li").count() == 5
    screenshot(page, "progress")
    page.wait_for_selector("#ranking:not([hidden])", timeout=SCORE_TIMEOUT_MS)
    screenshot(page, "ranked")
    assert len(created) == 5
    assert page.url.endswith("?jobs=" + ",".join(created)) or set(page.url.split("?jobs=")[1].split(",")) == set(
        created)

    # THEN the table and the CSV rank the five by the scores the API gives
    api = {job_id: requests.get(f"{stack.score_url}/v1/jobs/{job_id}", timeout=30).json() for job_id in created}
    expected = sorted(api.values(), key=lambda j: -j["score"])
    shown = [row.split("\t") for row in page.locator("#ranking-rows tr").all_inner_texts()]
    # (a score cell also says when the whole video was scored: these clips are shorter than the window)
    assert [(r[1], r[2].splitlines()[0]) for r in shown] == [(j["filename"], f"{j['score']:.2f}") for j in expected]
    assert all(r[2].splitlines()[1:] == ["whole video scored (shorter than the window)"] for r in shown)
    with page.expect_download() as download:
        page.click("#csv")
    rows = list(csv.DictReader(io.StringIO(open(download.value.path(), encoding="utf-8").read())))
    assert [r["job_id"] for r in rows] == [j["job_id"] for j in expected]
    assert [float(r["score"]) for r in rows] == [j["score"] for j in expected]  # exactly the API's numbers
    assert [r["file"] for r in rows] == [j["filename"] for j in expected]
    assert [r["rank"] for r in rows] == ["1", "2", "3", "4", "5"]
    assert {r["status"] for r in rows} == {"succeeded"}

    # AND each video's chart and frames are a click away
    page.click("#ranking-rows tr:first-child a")
    page.wait_for_selector("#result:not([hidden])")
    assert page.inner_text("#score") == f"{expected[0]['score']:.2f}"
    assert page.locator("#chart rect.chart__bar").count() == len(expected[0]["clip_scores"])
    screenshot(page, "details")
    page.go_back()
    page.wait_for_selector("#ranking:not([hidden])")


# -- small things ----------------------------------------------------------------------------

def test_a_type_the_api_does_not_list_is_taken_from_the_extension(page, stack, folder, screenshot):
    clip = small_clip(folder / "clip.mp4", offset=40)
    m4v, avi = folder / "safari.m4v", folder / "windows.avi"
    shutil.copy(clip, m4v)
    shutil.copy(clip, avi)
    bodies = []
    page.on("request", lambda r: bodies.append(r.post_data_json)
            if r.method == "POST" and r.url.endswith("/v1/jobs") else None)

    drop_many(page, [(m4v, "video/x-m4v"), (avi, "video/avi")])

    page.wait_for_function("() => document.querySelectorAll('#batch-list .item__link:not([hidden])').length == 2")
    assert sorted((b["filename"], b["content_type"]) for b in bodies) == [
        ("safari.m4v", "video/mp4"), ("windows.avi", "video/x-msvideo"),
    ]
    screenshot(page)


def test_a_file_name_with_a_bidi_override_is_refused_and_shown_as_it_is(page, stack, folder, screenshot):
    clip = small_clip(folder / "evil.mp4", offset=50)
    answers = []
    page.on("response", lambda r: answers.append((r.status, r.json()["error"]["code"])) if is_job_creation(r) else None)

    # "evil\u202egnp.mp4" would display as "evilmp4.png"; U+200B is invisible
    drop_many(page, [(clip, "video/mp4"), (clip, "video/mp4")], names=["evil\u202egnp.mp4", "ok\u200b.mp4"])

    page.wait_for_selector("#ranking:not([hidden])")
    # Playwright hands each response to Python apart from the page's own work: the page can have
    # shown both refusals before the second response event has run here (a fresh-clone run saw one)
    for _ in range(100):
        if len(answers) >= 2:
            break
        page.wait_for_timeout(50)
    assert answers == [(400, "invalid_filename")] * 2  # refused by the API itself
    lines = page.locator("#batch-list li").all_inner_texts()
    assert any(line.startswith("evil⟨U+202E⟩gnp.mp4") and "character U+202E" in line for line in lines), lines
    assert any(line.startswith("ok⟨U+200B⟩.mp4") and "character U+200B" in line for line in lines), lines
    assert "\u202e" not in page.inner_text("body") and "\u200b" not in page.inner_text("body")
    screenshot(page)

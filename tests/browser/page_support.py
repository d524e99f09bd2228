"""What the browser tests do to the page: drop files on it, slow its uploads, watch its requests."""

from __future__ import annotations

import base64
import json
from pathlib import Path

SCORE_TIMEOUT_MS = 300_000  # a cold function runtime loads the model first


def drop(page, path, content_type: str) -> None:
    """Drop ``path`` on the drop zone, as a person dragging it from their files would."""
    drop_many(page, [(path, content_type)])


def drop_many(page, files: list[tuple[Path, str]], names: list[str] | None = None) -> None:
    """Drop several files at once (``(path, content_type)``), optionally under other ``names``."""
    payload = [[base64.b64encode(Path(p).read_bytes()).decode(), (names[i] if names else Path(p).name), t]
               for i, (p, t) in enumerate(files)]
    transfer = page.evaluate_handle(
        """(files) => {
            const transfer = new DataTransfer();
            for (const [data, name, type] of files) {
                const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
                transfer.items.add(new File([bytes], name, { type }));
            }
            return transfer;
        }""",
        payload,
    )
    page.dispatch_event("#drop-zone", "dragenter", {"dataTransfer": transfer})
    page.dispatch_event("#drop-zone", "drop", {"dataTransfer": transfer})


def score_dropped(page, path) -> str:
    """Drop the video at ``path`` on the page and wait for its score; the job's id."""
    with page.expect_response(is_job_creation) as created:
        drop(page, path, "video/mp4")
    page.wait_for_selector("#result:not([hidden])", timeout=SCORE_TIMEOUT_MS)
    return created.value.json()["job_id"]


def rescore_by(page, job_id: str, act) -> tuple[str, list]:
    """Score the shown job's video again by ``act()`` (a click) and wait for the new score, over
    the entry given: the new job's id, and the uploads the page sent meanwhile (none expected)."""
    uploads = []
    page.on("request", lambda r: uploads.append(r) if r.method == "POST" and "/v1/jobs" not in r.url else None)
    with page.expect_response(lambda r: r.url.endswith(f"/v1/jobs/{job_id}/rescore")) as rescored:
        act()
    page.wait_for_function("() => !document.getElementById('result').hidden && "
                           "document.getElementById('window-text').textContent.includes('you gave')",
                           timeout=SCORE_TIMEOUT_MS)
    return rescored.value.json()["job_id"], uploads


def throttle_uploads(page, bytes_per_second: int) -> None:
    """Slow the browser's uploads down, as a real connection would be."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", {
        "offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": bytes_per_second,
    })


def api_requests(page, stack) -> list:
    sent = []
    page.on("request", lambda r: sent.append(r) if r.url.startswith((stack.presign_url, stack.score_url)) else None)
    return sent


def is_job_creation(response) -> bool:
    return response.request.method == "POST" and response.url.endswith("/v1/jobs")


def wait_while_page_runs(page, predicate, timeout_s: float, what: str) -> None:
    """Wait for ``predicate()`` in steps of the page's own clock: Playwright's sync API delivers
    the page's events (requests, responses) only while it is called, never during time.sleep."""
    for _ in range(int(timeout_s * 10)):
        if predicate():
            return
        page.wait_for_timeout(100)
    raise TimeoutError(f"timed out after {timeout_s} s waiting for {what}")


def part_number(url: str) -> int | None:
    """The part number of a multipart part's pre-signed URL, None for any other URL."""
    if "partNumber=" not in url:
        return None
    return int(url.split("partNumber=")[1].split("&")[0])


def serve_json(route, answer: dict, status: int = 200) -> None:
    """Answer a request to the APIs with ``answer``, as the APIs answer the page's origin."""
    route.fulfill(status=status, body=json.dumps(answer), headers={
        "Content-Type": "application/json", "Access-Control-Allow-Origin": "*"})


def open_served_job(open_page, stack, job_id: str, answer: dict, before=None):
    """The page at ?job=``job_id``, the score API answering ``answer`` for it: the page's view of
    an exact job, nothing scored. ``before(page)`` routes more, if needed."""
    def routes(page):
        page.route(f"{stack.score_url}/v1/jobs/{job_id}*", lambda r: serve_json(r, answer))
        if before:
            before(page)

    page = open_page(f"{stack.web_url}/?job={job_id}", before=routes)
    page.wait_for_selector("#result:not([hidden])")
    return page

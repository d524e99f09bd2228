"""Job control through the running native stack: cancel in each state (an upload that lands
after the cancel, a queued job, a job in the middle of inference), a failed attempt retried
within seconds and shown to the person waiting, reads that never write, and webhooks:
delivered signed, retried after a 500, refused for private addresses."""

from __future__ import annotations

import http.server
import json
import os
import signal
import threading
from datetime import datetime

import pytest
import requests
from standardwebhooks.webhooks import Webhook

from inference.preprocess import CLIPS
from inference.scorer import CLIP_BATCH
from inference.worker import OPEN_SHARE
from tests.support.api_support import serve_with_gunicorn
from tests.support.helpers import STACK_SETTINGS, Stack, WebhookReceiver, free_port, wait_until
from tests.support.stack_support import (
    OwnDispatcher,
    OwnRuntime,
    TcpGate,
    create_job,
    function_records,
    padded,
    post_upload,
    queue_counts,
    read_job,
    small_clip,
    submit,
    wait_final,
)

pytestmark = pytest.mark.stack

# The job's progress once the first of its two batches of clips is written (inference.worker's
# bar: opening the upload, then the clips).
FIRST_BATCH_DONE = OPEN_SHARE + (1 - OPEN_SHARE) * CLIP_BATCH / CLIPS


def cancel(stack, job_id: str) -> requests.Response:
    return requests.post(f"{stack.presign_url}/v1/jobs/{job_id}/cancel", timeout=30)


def records_of(stack, job_id: str) -> list[dict]:
    return [r for r in function_records(stack) if r.get("job_id") == job_id]


def upload_keys(stack, job_id: str) -> list[str]:
    listing = stack.client("s3").list_objects_v2(Bucket=stack.settings.bucket, Prefix=f"uploads/{job_id}/")
    return [item["Key"] for item in listing.get("Contents", [])]


def drained(stack) -> bool:
    return queue_counts(stack) == (0, 0)


# == cancel =================================================================================

def test_an_upload_landing_after_its_job_was_canceled_is_ignored_and_deleted(stack, tmp_path):
    path = small_clip(tmp_path / "late.mp4")
    job = create_job(stack, path)

    canceled = cancel(stack, job["job_id"])
    assert canceled.status_code == 200, canceled.text
    assert canceled.json()["status"] == "canceled"
    post_upload(job, path)  # the pre-signed POST is still valid: the upload lands after the cancel

    wait_until(lambda: any(r["message"].startswith("job was canceled") for r in records_of(stack, job["job_id"])),
               60, what="the function to see the late upload")
    assert upload_keys(stack, job["job_id"]) == []  # deleted
    record = stack.store.get(job["job_id"])
    assert record["status"] == "canceled" and record["attempts"] == 0  # never claimed
    assert read_job(stack, job["job_id"]).json()["status"] == "canceled"
    wait_until(lambda: drained(stack), 60, what="the queue to drain")


def test_a_queued_job_canceled_is_acknowledged_when_its_message_arrives(stack, tmp_path):
    path = padded(small_clip(tmp_path / "queued.mp4", offset=5), 7 * 1024 * 1024)  # multipart: completed → queued
    os.kill(stack.pids["dispatcher"], signal.SIGSTOP)  # the runtimes are busy elsewhere
    try:
        job = create_job(stack, path)
        upload = job["upload"]
        data, parts = path.read_bytes(), []
        for part in upload["parts"]:
            start = (part["part_number"] - 1) * upload["part_size"]
            put = requests.put(part["url"], data=data[start:start + upload["part_size"]], timeout=60)
            parts.append({"part_number": part["part_number"], "etag": put.headers["ETag"]})
        completed = requests.post(upload["complete_url"], json={"parts": parts}, timeout=60)
        assert completed.json()["status"] == "queued", completed.text

        assert cancel(stack, job["job_id"]).json()["status"] == "canceled"
        assert upload_keys(stack, job["job_id"]) == []
    finally:
        os.kill(stack.pids["dispatcher"], signal.SIGCONT)

    wait_until(lambda: any(r["message"].startswith("job was canceled") for r in records_of(stack, job["job_id"])),
               120, what="the function to acknowledge the canceled job's message")
    wait_until(lambda: drained(stack), 60, what="the queue to drain")
    record = stack.store.get(job["job_id"])
    assert record["status"] == "canceled" and record["attempts"] == 0


def cancel_while_scoring(stack, path) -> tuple[dict, dict, datetime]:
    """Submit ``path``, cancel it once the worker reports being part way, check that nothing
    was written; the job's record, the worker's "canceled at" record and the cancel's time."""
    job = submit(stack, path)
    wait_until(lambda: ((j := stack.store.get(job["job_id"]))["status"] == "processing"
                        and 0 < j["progress"] < FIRST_BATCH_DONE) or None,
               120, interval=0.02, what="the job to be part way through its first batch")

    canceled = cancel(stack, job["job_id"])
    canceled_at = datetime.now().astimezone()

    assert canceled.status_code == 200 and canceled.json()["status"] == "canceled", canceled.text
    final = wait_final(stack, job["job_id"])
    assert final["status"] == "canceled" and "score" not in final
    stopped = wait_until(
        lambda: [r for r in records_of(stack, job["job_id"]) if r["message"].startswith("canceled at")],
        60, what="the worker to stop",
    )
    assert not [r for r in records_of(stack, job["job_id"]) if r["message"].startswith("succeeded")]
    filmstrips = stack.client("s3").list_objects_v2(Bucket=stack.settings.bucket, Prefix=f"results/{job['job_id']}/")
    assert filmstrips.get("KeyCount") == 0
    record = stack.store.get(job["job_id"])
    assert record["status"] == "canceled" and "score" not in record
    wait_until(lambda: drained(stack), 60, what="the message to be acknowledged")
    return record, stopped[0], canceled_at


def test_a_job_canceled_mid_inference_stops_before_it_finishes_and_writes_no_score(stack, tmp_path):
    # 120 frames at 171x128: six distinct clips in two batches, several seconds of network time.
    # The worker notices a cancel at its next progress check, at the latest after a batch, so a
    # cancel that lands during the last batch is noticed when the work is done. The record keeps
    # the progress written last before the cancel, which tells when it landed: one that landed
    # after the first batch tests nothing here, and the test tries again with a new job.
    for attempt in range(3):
        path = small_clip(tmp_path / f"long{attempt}.mp4", frames=120, size=(171, 128), offset=9)
        record, stopped, canceled_at = cancel_while_scoring(stack, path)
        if record["progress"] < FIRST_BATCH_DONE:
            break
    else:
        pytest.fail("three cancels in a row landed after the first batch: none tested a stop mid-inference")
    assert stopped["canceled_at_progress"] < 1  # it stopped before finishing
    stop_s = (datetime.fromisoformat(stopped["timestamp"].replace(",", ".")) - canceled_at).total_seconds()
    print(f"worker stopped {stop_s:.2f} s after the cancel, at progress {stopped['canceled_at_progress']:.2f}")


def test_a_finished_job_cannot_be_canceled(stack, tmp_path):
    job = submit(stack, small_clip(tmp_path / "done.mp4", offset=11))
    assert wait_final(stack, job["job_id"])["status"] == "succeeded"

    refused = cancel(stack, job["job_id"])

    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "job_already_final"
    assert read_job(stack, job["job_id"]).json()["status"] == "succeeded"


# == reads never write ======================================================================

class RecordingProxy:
    """An HTTP proxy to the emulator that records every AWS call passing through it (the
    DynamoDB operation from X-Amz-Target; for S3, the method and path)."""

    def __init__(self, target: str):
        self.calls: list[str] = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _forward(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                target = self.headers.get("X-Amz-Target")
                proxy.calls.append(target.split(".")[-1] if target else f"{self.command} {self.path.split('?')[0]}")
                # Every header goes through as sent, Host too: it is signed, and the emulator
                # checks the signature against the host the client signed for.
                answer = requests.request(self.command, target_url + self.path, data=body,
                                          headers=dict(self.headers.items()), timeout=30)
                self.send_response(answer.status_code)
                for key, value in answer.headers.items():
                    if key.lower() not in ("content-length", "transfer-encoding", "connection", "content-encoding"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _forward

            def log_message(self, *args):
                pass

        target_url = target
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_reading_a_job_makes_no_write(stack, tmp_path):
    # GIVEN a job waiting for its upload and a finished one, and the score service as the stack
    # runs it (gunicorn), reaching AWS only through a proxy that records each call
    waiting = create_job(stack, small_clip(tmp_path / "w.mp4"))["job_id"]
    done = submit(stack, small_clip(tmp_path / "d.mp4", offset=17))["job_id"]
    assert wait_final(stack, done)["status"] == "succeeded"
    before = {job_id: stack.store.get(job_id) for job_id in (waiting, done)}
    proxy = RecordingProxy(stack.emulator_url)
    try:
        env = {**stack.env_as("score"), "AWS_ENDPOINT_URL": proxy.url}  # the score role's key
        with serve_with_gunicorn("status_api", stack.settings, env, tmp_path) as score:
            # WHEN each is read, plainly and with a long poll
            for job_id in (waiting, done):
                assert requests.get(f"{score.url}/v1/jobs/{job_id}", timeout=30).status_code == 200
                assert requests.get(f"{score.url}/v1/jobs/{job_id}?wait=1", timeout=30).status_code == 200
    finally:
        proxy.close()

    # THEN the service only read the table (the filmstrip link is signed without a call)
    assert proxy.calls and set(proxy.calls) == {"GetItem"}, proxy.calls
    assert {job_id: stack.store.get(job_id) for job_id in (waiting, done)} == before


# == a failed attempt comes back in seconds ==================================================

# The visibility timeout is far longer than any wait below: a retry seen within the test came
# back after the function's retry delay, not after the visibility timeout.
RETRY_SETTINGS = {**STACK_SETTINGS, "DIVESCORE_FUNCTION_TIMEOUT_SECONDS": "60",
                  "DIVESCORE_VISIBILITY_TIMEOUT_SECONDS": "900", "DIVESCORE_MAX_RECEIVE_COUNT": "4"}


@pytest.fixture(scope="module")
def s3_behind_a_gate():
    """A stack whose function runtime reaches S3 through a TCP gate the test can cut."""
    runtime_port = free_port()
    stack = Stack({**RETRY_SETTINGS, "DIVESCORE_INVOKE_URL":
                   f"http://127.0.0.1:{runtime_port}/2015-03-31/functions/function/invocations"},
                  without=("dispatcher", "function-0"))
    gate = TcpGate(stack.settings.emulator_port)
    runtime = OwnRuntime(stack, runtime_port, {"AWS_ENDPOINT_URL_S3": gate.url})
    dispatcher = OwnDispatcher(stack)
    yield stack, gate, runtime
    dispatcher.kill()
    runtime.stop()
    gate.close()
    stack.stop()


def test_a_transient_failure_is_retried_within_seconds_and_shown_while_it_waits(s3_behind_a_gate, tmp_path):
    stack, gate, runtime = s3_behind_a_gate
    gate.cut()  # storage unreachable for the function: the first attempt fails
    job = submit(stack, small_clip(tmp_path / "retry.mp4", offset=23))

    waiting = wait_until(lambda: (body := read_job(stack, job["job_id"]).json())["status"] == "queued"
                         and body.get("retry") and body, 120, interval=0.05, what="the retry to be announced")
    gate.restore()

    # The person waiting sees what happens: attempt 2 of 4, and when.
    assert waiting["retry"]["attempt"] == 2 and waiting["retry"]["of"] == 4
    assert "Attempt 1 of 4 failed" in waiting["retry"]["error"]["message"]
    assert datetime.fromisoformat(waiting["retry"]["at"].replace("Z", "+00:00"))
    final = wait_final(stack, job["job_id"], timeout=120)  # far below the 900 s visibility timeout
    assert final["status"] == "succeeded", final
    assert final["attempt"]["number"] >= 2 and "retry" not in final
    assert any("comes back in 2 s" in r.get("message", "") for r in runtime.records())


# == webhooks ===============================================================================

def new_job_with_callback(stack, path, callback_url: str) -> requests.Response:
    return requests.post(f"{stack.presign_url}/v1/jobs", json={
        "filename": path.name, "content_type": "video/mp4", "size": path.stat().st_size,
        "callback_url": callback_url,
    }, timeout=30)


def test_a_webhook_is_delivered_signed_and_retried_after_a_500(stack, tmp_path):
    receiver = WebhookReceiver(fail_first=1)
    try:
        path = small_clip(tmp_path / "hooked.mp4", offset=29)
        created = new_job_with_callback(stack, path, receiver.url)
        assert created.status_code == 201, created.text
        job = created.json()
        post_upload(job, path)

        assert wait_final(stack, job["job_id"])["status"] == "succeeded"
        delivered = wait_until(
            lambda: (body := read_job(stack, job["job_id"]).json())["callback"]["state"] == "delivered" and body,
            60, interval=0.2, what="the webhook to be delivered")
    finally:
        receiver.close()

    # Two requests: the 500, then the retry, each signed and verified with the deployment's key.
    assert len(receiver.requests) == 2
    secret = stack.client("secretsmanager").get_secret_value(SecretId=stack.settings.webhook_secret)["SecretString"]
    verified = [Webhook(secret).verify(body, headers) for _, headers, body in receiver.requests]
    assert [v["type"] for v in verified] == ["job.succeeded", "job.succeeded"]
    assert verified[1]["data"]["job_id"] == job["job_id"] and verified[1]["data"]["status"] == "succeeded"
    assert isinstance(verified[1]["data"]["score"], float)
    assert receiver.requests[0][1]["webhook-id"] == receiver.requests[1][1]["webhook-id"]  # one event
    attempts = delivered["callback"]["attempts"]
    assert [(a["ok"], a["status"]) for a in attempts] == [(False, 500), (True, 200)]
    assert delivered["callback"]["url"] == receiver.url


def test_a_canceled_job_is_called_back_too(stack, tmp_path):
    receiver = WebhookReceiver(fail_first=0)
    try:
        path = small_clip(tmp_path / "hooked-cancel.mp4", offset=31)
        job = new_job_with_callback(stack, path, receiver.url).json()
        assert cancel(stack, job["job_id"]).status_code == 200
        wait_until(lambda: read_job(stack, job["job_id"]).json()["callback"]["state"] == "delivered", 60,
                   interval=0.2, what="the webhook of the canceled job")
    finally:
        receiver.close()
    [(_, _, body)] = receiver.requests
    assert json.loads(body)["type"] == "job.canceled"


@pytest.mark.parametrize("url", ["https://10.0.0.1/hook", "https://169.254.169.254/latest/meta-data/",
                                 "https://[fe80::1]/hook", "https://192.168.0.10:8443/x", "file:///etc/passwd"])
def test_a_callback_to_a_private_address_is_refused_at_creation(stack, tmp_path, url):
    path = small_clip(tmp_path / "refused.mp4")
    response = new_job_with_callback(stack, path, url)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_callback_url"

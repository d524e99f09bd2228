"""Job control through the running native stack: cancel in each state (an upload that lands
after the cancel, a queued job, a job in the middle of inference), a failed attempt retried
within seconds and shown to the person waiting, reads that never write, and webhooks:
delivered signed, retried after a 500, refused for private addresses."""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import signal
import socket
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


def test_a_job_canceled_mid_inference_stops_before_it_finishes_and_writes_no_score(stack, tmp_path):
    # 120 frames at 171x128: six distinct clips in two batches. The function is held after the
    # first batch, before it writes that batch's progress; the cancel lands during the hold.
    path = small_clip(tmp_path / "long.mp4", frames=120, size=(171, 128), offset=9)
    job = create_job(stack, path)
    with stack.holds.arm(job["job_id"], "batch1") as hold:
        post_upload(job, path)
        hold.reached(120)
        assert stack.store.get(job["job_id"])["progress"] < FIRST_BATCH_DONE
        canceled = cancel(stack, job["job_id"])
        canceled_at = datetime.now().astimezone()
    assert canceled.status_code == 200 and canceled.json()["status"] == "canceled", canceled.text

    final = wait_final(stack, job["job_id"])
    assert final["status"] == "canceled" and "score" not in final
    [stopped] = wait_until(
        lambda: [r for r in records_of(stack, job["job_id"]) if r["message"].startswith("canceled at")],
        60, what="the worker to stop",
    )
    assert stopped["canceled_at_progress"] == pytest.approx(FIRST_BATCH_DONE)  # at the first check after the hold
    assert not [r for r in records_of(stack, job["job_id"]) if r["message"].startswith("succeeded")]
    filmstrips = stack.client("s3").list_objects_v2(Bucket=stack.settings.bucket, Prefix=f"results/{job['job_id']}/")
    assert filmstrips.get("KeyCount") == 0
    record = stack.store.get(job["job_id"])
    assert record["status"] == "canceled" and "score" not in record and record["progress"] < FIRST_BATCH_DONE
    wait_until(lambda: drained(stack), 60, what="the message to be acknowledged")
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


class SilentReceiver:
    """A receiver that takes a webhook's request and never answers; ``open`` while the sender
    still waits on that connection."""

    def __init__(self):
        self.server = socket.create_server(("127.0.0.1", free_port()))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}/hook"
        self.taken, self.open = threading.Event(), False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        with contextlib.suppress(OSError):
            connection, _ = self.server.accept()
            with connection:
                connection.recv(65536)
                self.open = True
                self.taken.set()
                while connection.recv(65536):  # b"": the sender gave up and closed it
                    pass
                self.open = False

    def close(self):
        self.server.close()


def test_a_receiver_that_never_answers_delays_no_other_jobs_webhook(stack, tmp_path):
    silent, receiver = SilentReceiver(), WebhookReceiver()
    try:
        path = small_clip(tmp_path / "hooked.mp4", offset=31)
        stuck = new_job_with_callback(stack, path, silent.url).json()
        other = new_job_with_callback(stack, path, receiver.url).json()
        assert cancel(stack, stuck["job_id"]).status_code == 200
        assert silent.taken.wait(60), "the silent receiver's webhook was never sent"
        assert cancel(stack, other["job_id"]).status_code == 200
        wait_until(lambda: receiver.requests, 60, what="the other job's webhook")
        assert silent.open, "the other webhook waited for the silent receiver's request to time out"
    finally:
        silent.close()
        receiver.close()


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


@pytest.mark.parametrize("url", [
    "https://10.0.0.1/hook", "https://169.254.169.254/latest/meta-data/", "https://[fe80::1]/hook",
    "https://192.168.0.10:8443/x", "file:///etc/passwd",
    # IPv6 forms that carry a forbidden IPv4 address, and special-purpose IPv6 ranges
    "https://[64:ff9b::a9fe:a9fe]/", "https://[64:ff9b::7f00:1]/", "https://[2002:a9fe:a9fe::1]/",
    "https://[::ffff:0:a9fe:a9fe]/", "https://[::7f00:1]/", "https://[fec0::1]/",
    "https://93.184.216.34/x\r\nX-Injected: 1",  # a header smuggled into the stored URL
])
def test_a_callback_to_a_private_address_is_refused_at_creation(stack, tmp_path, url):
    path = small_clip(tmp_path / "refused.mp4")
    response = new_job_with_callback(stack, path, url)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_callback_url"


@pytest.mark.parametrize("port_setting", ["emulator_port", "presign_port", "score_port", "web_port", "runtime_port"])
def test_a_loopback_callback_may_not_reach_the_stacks_own_services(stack, tmp_path, port_setting):
    # The stack's tests allow plain http callbacks to loopback; never to the stack itself (a
    # webhook to the emulator's control routes would reset it).
    url = f"http://127.0.0.1:{getattr(stack.settings, port_setting)}/moto-api/reset"
    response = new_job_with_callback(stack, small_clip(tmp_path / "own.mp4"), url)
    assert response.status_code == 400, response.text
    assert "this stack's own services" in response.json()["error"]["message"]

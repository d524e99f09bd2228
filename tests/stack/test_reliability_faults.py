"""Faults in the running native stack: runtimes killed mid-inference, a dispatcher killed with
messages in flight, events delivered twice, the table unreachable, a poison message, the
emulator restarted. Whatever happens, every job ends ``succeeded`` or ``failed`` with a
reason, none is scored twice and none is lost.

The stacks here run with short timeouts (function 30 s, visibility 35 s, 2 receives before
the dead-letter queue) so that retries come back within the test; 30 s holds a cold start and
six clips on one thread of a machine whose other core is busy. Work a test interrupts is held
at a known point (devstack.holds), never raced.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest
import requests

from divescore.jobs import JobStore, new_job_id
from standins import dispatcher_key
from tests.support.helpers import ROOT, STACK_SETTINGS, Emulator, Stack, free_port, pid_alive, running_stack, wait_until
from tests.support.stack_support import (
    OwnDispatcher,
    OwnRuntime,
    TcpGate,
    claims_of,
    create_job,
    dead_letters,
    function_records,
    keys_in,
    kill_runtime,
    log_lines,
    padded,
    peek,
    post_upload,
    queue_counts,
    read_job,
    runtime_process,
    s3_event,
    send,
    small_clip,
    submit,
    upload_parts,
    wait_final,
)

pytestmark = pytest.mark.stack

FAULT_SETTINGS = {
    **STACK_SETTINGS,
    "DIVESCORE_FUNCTION_TIMEOUT_SECONDS": "30",
    "DIVESCORE_VISIBILITY_TIMEOUT_SECONDS": "35",
    "DIVESCORE_MAX_RECEIVE_COUNT": "2",
}
RETRY_WAIT = 120  # a retry comes back after the 35 s visibility timeout, plus a cold start on a busy machine


def drained(stack) -> bool:
    return queue_counts(stack) == (0, 0)


def dead_lettered(stack, key: str) -> bool:
    return key in keys_in(dead_letters(stack))


def short_video(tmp_path, name="dive.mp4", offset=0):
    """18 frames: three distinct clips, a second or two of work."""
    return small_clip(tmp_path / name, frames=18, offset=offset)


def video_to_kill(tmp_path, offset=0):
    """96 frames: six distinct clips in two batches, so a hold after the first batch is in the
    middle of inference."""
    return small_clip(tmp_path / "kill.mp4", frames=96, offset=offset)


# == two runtimes fed by the stack's dispatcher ==============================================

@pytest.fixture(scope="module")
def faulty(tmp_path_factory):
    with running_stack(FAULT_SETTINGS, runtimes=2, holds=True) as stack:
        yield stack


@pytest.fixture(scope="module")
def poison(faulty):
    """A message that crashes the function on every receive (an S3 notification without its
    object), sent before the other tests so it bounces while they run."""
    body = {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "s3": {"bucket": {}}}]}
    return send(faulty, body)


def kill_held(hold) -> None:
    """SIGKILL the runtime holding at ``hold``: inside an invocation, in the middle of the
    job's inference, by construction."""
    pid = hold.reached(RETRY_WAIT)["pid"]
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not pid_alive(pid), 10, what="the held runtime to die")


def test_a_runtime_killed_mid_inference_is_retried_after_the_visibility_timeout(faulty, poison, tmp_path):
    path = video_to_kill(tmp_path)
    job = create_job(faulty, path)
    with faulty.holds.arm(job["job_id"], "batch1", attempt=1) as hold:
        post_upload(job, path)
        kill_held(hold)

    final = wait_final(faulty, job["job_id"], timeout=RETRY_WAIT + 60)
    assert final["status"] == "succeeded", final
    assert faulty.store.get(job["job_id"])["attempts"] == 2
    assert len(claims_of(faulty, job["job_id"], 2)) == 2
    # The record can be read before the function's log line has reached the stack's log.
    succeeded = wait_until(lambda: [r for i in range(2) for r in function_records(faulty, f"function-{i}")
                                    if r.get("job_id") == job["job_id"]
                                    and str(r.get("message", "")).startswith("succeeded")], 30,
                           what="the success in the function's log")
    assert len(succeeded) == 1  # scored once: the killed attempt never recorded anything
    assert not dead_lettered(faulty, faulty.settings.upload_key(job["job_id"]))


def test_a_job_killed_on_every_attempt_ends_failed_and_its_message_dead_lettered(faulty, poison, tmp_path):
    path = video_to_kill(tmp_path, offset=50)
    job = create_job(faulty, path)
    key = faulty.settings.upload_key(job["job_id"])
    with faulty.holds.arm(job["job_id"], "batch1", attempt=1) as first, \
            faulty.holds.arm(job["job_id"], "batch1", attempt=2) as second:
        post_upload(job, path)
        kill_held(first)
        kill_held(second)

    final = wait_final(faulty, job["job_id"], timeout=RETRY_WAIT)
    assert final["status"] == "failed"
    assert final["error"]["code"] == "worker_lost", final["error"]
    assert "2 attempt(s)" in final["error"]["message"]
    wait_until(lambda: dead_lettered(faulty, key), RETRY_WAIT, interval=1, what="the message in the DLQ")
    assert faulty.store.get(job["job_id"])["attempts"] == 2


def test_the_same_event_twice_at_once_is_scored_once(faulty, tmp_path):
    path = small_clip(tmp_path / "twice.mp4", offset=7)
    job = create_job(faulty, path)
    key = faulty.settings.upload_key(job["job_id"])
    post_upload(job, path)  # the emulator queues one event; S3 may deliver it twice:
    send(faulty, s3_event(faulty, key, path.stat().st_size))

    final = wait_final(faulty, job["job_id"])
    wait_until(lambda: drained(faulty), 60, what="both messages to be consumed")

    assert final["status"] == "succeeded"
    assert faulty.store.get(job["job_id"])["attempts"] == 1
    assert len(claims_of(faulty, job["job_id"], 2)) == 1
    assert faulty.store.get(job["job_id"])["updated_at"] == final["updated_at"]


def test_two_events_for_one_multipart_upload_are_scored_once(faulty, tmp_path):
    path = padded(small_clip(tmp_path / "big.mp4", offset=13), 7 * 1024 * 1024)  # over the 6 MiB threshold
    job = create_job(faulty, path)
    upload, data = job["upload"], path.read_bytes()
    parts = upload_parts(job, data)
    key = faulty.settings.upload_key(job["job_id"])

    completed = requests.post(upload["complete_url"], json={"parts": parts}, timeout=60)
    assert completed.status_code == 200, completed.text
    send(faulty, s3_event(faulty, key, len(data), name="ObjectCreated:Put"))  # a second event, as S3 may send

    final = wait_final(faulty, job["job_id"])
    wait_until(lambda: drained(faulty), 60, what="both messages to be consumed")
    assert final["status"] == "succeeded", final
    assert faulty.store.get(job["job_id"])["attempts"] == 1
    assert len(claims_of(faulty, job["job_id"], 2)) == 1


def test_workers_claiming_one_job_at_the_same_moment_never_both_win(faulty):
    """Eight workers claim each job at once, through the stack's emulator: exactly one wins.
    (moto alone lets two conditional writes at once both pass; devstack.emulator locks them.)"""
    stores = [JobStore(faulty.resource("dynamodb").Table(faulty.settings.table)) for _ in range(8)]  # one per thread
    for _ in range(20):
        job_id = new_job_id()
        stores[0].create(job_id=job_id, filename="race.mp4", content_type="video/mp4", size=1,
                         key=faulty.settings.upload_key(job_id), ttl_seconds=3600)
        start = threading.Barrier(len(stores))
        winners = []

        def claim(store, i, job_id=job_id, start=start, winners=winners):
            start.wait()
            if store.claim(job_id, lease_seconds=60, message_id=f"message-{i}"):
                winners.append(i)

        threads = [threading.Thread(target=claim, args=(store, i)) for i, store in enumerate(stores)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(winners) == 1
        assert stores[0].get(job_id)["attempts"] == 1


def test_a_poison_message_ends_in_the_dead_letter_queue_without_stopping_the_stack(faulty, poison, tmp_path):
    wait_until(lambda: any(m["MessageId"] == poison for m in dead_letters(faulty)), RETRY_WAIT, interval=1,
               what="the poison message in the DLQ")
    received = [line for line in log_lines(faulty, "dispatcher") if f"message {poison} (receive" in line]
    assert len(received) == 2  # max_receive_count, then redriven: no crash loop
    for name in ("dispatcher", "function-0", "function-1"):
        assert pid_alive(faulty.pids[name]), name
    after = submit(faulty, small_clip(tmp_path / "after.mp4", offset=21))
    assert wait_final(faulty, after["job_id"])["status"] == "succeeded"


# == a dispatcher and a runtime of the test's own, the table behind a gate it can cut ==========

class OwnedStack:
    """A stack whose dispatcher and function runtime the test runs itself: the runtime reaches
    DynamoDB through a TCP gate the test can cut (S3 and SQS directly)."""

    def __init__(self):
        self.runtime_port = free_port()
        self.stack = Stack({**FAULT_SETTINGS,
                            "DIVESCORE_INVOKE_URL":
                                f"http://127.0.0.1:{self.runtime_port}/2015-03-31/functions/function/invocations"},
                           without=("dispatcher", "function-0"), holds=True)
        self.gate = TcpGate(self.stack.settings.emulator_port)
        self.runtime = OwnRuntime(self.stack, self.runtime_port, {"AWS_ENDPOINT_URL_DYNAMODB": self.gate.url})
        self.dispatcher = OwnDispatcher(self.stack)

    def stop(self):
        self.dispatcher.kill()
        self.runtime.stop()
        self.gate.close()
        self.stack.stop()


@pytest.fixture(scope="module")
def owned():
    owned = OwnedStack()
    yield owned
    owned.stop()


def test_a_dispatcher_killed_with_messages_in_flight_loses_nothing_and_repeats_nothing(owned, tmp_path):
    stack = owned.stack
    paths = [short_video(tmp_path, f"d{i}.mp4", offset=30 * i) for i in range(3)]
    jobs = [create_job(stack, path) for path in paths]
    with stack.holds.arm(jobs[0]["job_id"], "start") as hold:
        for job, path in zip(jobs, paths, strict=True):
            post_upload(job, path)
        hold.reached(60)
        owned.dispatcher.kill()  # SIGKILL while it waits for the runtime's answer
    owned.dispatcher = OwnDispatcher(stack)
    # The runtime still runs the first job: invoking it now would crash the RIE, so the new
    # dispatcher first waits that invocation out.
    assert "in flight from a previous dispatcher" in owned.dispatcher.output()

    finals = [wait_final(stack, job["job_id"], timeout=RETRY_WAIT + 60) for job in jobs]
    assert [f["status"] for f in finals] == ["succeeded"] * 3, finals
    assert [stack.store.get(job["job_id"])["attempts"] for job in jobs] == [1, 1, 1]
    wait_until(lambda: drained(stack), RETRY_WAIT, interval=1, what="the queue to drain")
    assert dead_letters(stack) == []


def assert_retried_once_the_table_is_back(owned, job: dict, failures_before: int) -> None:
    """With the table cut: the invocation fails; the table back: the retry scores the job."""
    wait_until(lambda: owned.dispatcher.output().count(" failed in ") > failures_before, 90, interval=0.2,
               what="the invocation to fail")
    owned.gate.restore()
    final = wait_final(owned.stack, job["job_id"], timeout=RETRY_WAIT + 60)
    assert final["status"] == "succeeded", final
    assert owned.stack.store.get(job["job_id"])["attempts"] == 2


def test_the_table_unreachable_for_a_while_is_retried_then_succeeds(owned, tmp_path):
    stack = owned.stack
    failures_before = owned.dispatcher.output().count(" failed in ")
    path = short_video(tmp_path, "cut.mp4", offset=70)
    job = create_job(stack, path)
    with stack.holds.arm(job["job_id"], "start", attempt=1) as hold:
        post_upload(job, path)
        hold.reached(60)
        owned.gate.cut()  # until the function gives up on the table and fails the invocation
    assert_retried_once_the_table_is_back(owned, job, failures_before)
    assert owned.gate.refused > 0


def test_a_retry_after_a_slow_cold_start_is_not_mistaken_for_a_duplicate(owned, tmp_path):
    """The first attempt claims the job late (a cold start stalled for longer than the
    visibility timeout minus the function timeout), then fails; the retry, on a warm runtime,
    arrives while that attempt's lease still runs. It must take the job over, not drop it."""
    stack = owned.stack
    kill_runtime(owned.runtime.process.pid)
    # The RIE reports a runtime that died while idle on the next invoke (502 Runtime.ExitError)
    # and starts a new one on the invoke after: let a warm-up take the 502, the job the cold start.
    requests.post(stack.settings.runtime_invoke_urls[0], json={"divescore": "warmup"},
                  headers=dispatcher_key.invocation_headers(stack.dispatcher_key), timeout=60)
    assert runtime_process(owned.runtime.process.pid) is None
    failures_before = owned.dispatcher.output().count(" failed in ")
    path = short_video(tmp_path, "cold.mp4", offset=90)
    job = create_job(stack, path)
    with stack.holds.arm(job["job_id"], "start", attempt=1) as hold:
        post_upload(job, path)
        cold = wait_until(lambda: runtime_process(owned.runtime.process.pid), 60, interval=0.01,
                          what="the new runtime")
        os.kill(cold, signal.SIGSTOP)  # a cold start stalled for 8 s (> 35 s - 30 s)
        time.sleep(8)
        os.kill(cold, signal.SIGCONT)
        hold.reached(90)
        owned.gate.cut()
    assert_retried_once_the_table_is_back(owned, job, failures_before)


# == the emulator restarted ==================================================================

def test_an_emulator_restart_between_upload_and_processing_loses_the_job_visibly(make_stack, tmp_path):
    """moto keeps everything in memory: a restart loses the bucket, the queue and the table.
    What the stack promises is that nothing hangs: the job reads 404, and once the resources
    are bootstrapped again the stack takes new jobs."""
    port = free_port()
    emulator = Emulator(port)
    try:
        stack = make_stack({**FAULT_SETTINGS, "DIVESCORE_EMULATOR_PORT": str(port)}, without=("emulator",))
        dispatcher = stack.pids["dispatcher"]
        wait_until(lambda: "dispatcher ready" in log_lines(stack, "dispatcher"), 120, what="the dispatcher")
        os.kill(dispatcher, signal.SIGSTOP)  # busy elsewhere: the upload waits in the queue
        try:
            job = submit(stack, small_clip(tmp_path / "lost.mp4"))
            key = stack.settings.upload_key(job["job_id"])
            wait_until(lambda: key in keys_in(peek(stack)), 30, what="the upload's event in the queue")

            emulator.stop()
            emulator = Emulator(port)
        finally:
            os.kill(dispatcher, signal.SIGCONT)

        # The table is gone: an internal error, answered at once, with nothing of the cause.
        refused = read_job(stack, job["job_id"], wait=5)
        assert refused.status_code == 500, refused.text
        assert refused.json()["error"]["code"] == "internal_error"
        assert "ResourceNotFound" not in refused.text and "Traceback" not in refused.text
        bootstrap = subprocess.run([sys.executable, "-m", "standins.bootstrap"], cwd=ROOT, capture_output=True,
                                   text=True, env={**os.environ, **stack.env}, timeout=120, check=False)
        assert bootstrap.returncode == 0, bootstrap.stderr

        gone = read_job(stack, job["job_id"], wait=2)
        assert gone.status_code == 404 and gone.json()["error"]["code"] == "job_not_found"
        again = submit(stack, small_clip(tmp_path / "again.mp4", offset=3))
        assert wait_final(stack, again["job_id"])["status"] == "succeeded"
        assert pid_alive(dispatcher)
    finally:
        emulator.stop()

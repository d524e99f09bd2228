"""The native stack, as the benchmark drives it.

The stack is the tests' harness (``devstack.harness.Stack``: ``python -m devstack.run``
on free ports), imported rather than copied so the benchmark measures exactly what the tests
start. It runs without its dispatcher: the benchmark starts the same dispatcher program
itself, on as many of the runtimes as a measurement needs (1, 2 or 4 for throughput) and
only when it needs it, so uploads measured on their own do not set the function to work.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import requests

from client.api import ApiClient
from client.upload import upload
from devstack.harness import OUTPUT, ROOT, Runtime, Stack  # what the tests start; see the module docstring
from devstack.run import FUNCTION_ROOT, HANDLER
from divescore.jobs import Status

CONTENT_TYPE = "video/mp4"
# The dispatcher's workers long-poll SQS for this long (standins.dispatcher.Worker.run). A
# receive left open by a stopped dispatcher still takes the next message off the queue and
# hides it for the visibility timeout, so nothing is uploaded until such polls have ended.
DISPATCHER_LONG_POLL_S = 5


def stack_settings(function_timeout_seconds: int, verbose: bool = False) -> dict[str, str]:
    return {
        "DIVESCORE_FUNCTION_TIMEOUT_SECONDS": str(function_timeout_seconds),
        "DIVESCORE_VISIBILITY_TIMEOUT_SECONDS": str(function_timeout_seconds + 60),
        "DIVESCORE_LOG_LEVEL": "WARNING",
        "DIVESCORE_VERBOSE": "1" if verbose else "0",  # 1: the emulator logs each request (bench.job_requests)
    }


def parse_time(iso: str) -> float:
    """A job record's ``updated_at`` (UTC, milliseconds) as a Unix time."""
    return datetime.fromisoformat(iso).timestamp()


class BenchStack:
    def __init__(self, runtimes: int, function_timeout_seconds: int = 600, verbose: bool = False):
        self.stack = Stack(stack_settings(function_timeout_seconds, verbose), without=("dispatcher",),
                           runtimes=runtimes)
        self.settings = self.stack.settings
        # The function's runtimes run with its role's key (the stack enforces IAM).
        self.env = dict(self.stack.env_as("function"))
        self.s3 = self.stack.client("s3")
        self.sqs = self.stack.client("sqs")
        self.store = self.stack.store
        self.api = ApiClient(self.stack.presign_url, self.stack.score_url)
        self.http = requests.Session()
        self.function_timeout = function_timeout_seconds
        self.dispatcher: subprocess.Popen | None = None
        self._dispatcher_log = None
        self._dispatchers_started = 0
        self._runtimes: list[Runtime] = []
        # In-process code that reaches the emulator (the presign apps of the upload
        # measurement) finds it through the standard variables, as the services do.
        presign = self.stack.env_as("presign")
        self._saved_env = {k: os.environ.get(k) for k in presign if k.startswith("AWS_")}
        os.environ.update({k: v for k, v in presign.items() if k.startswith("AWS_")})

    @property
    def invoke_urls(self) -> list[str]:
        return self.settings.runtime_invoke_urls

    # -- the dispatcher ------------------------------------------------------------------

    def start_dispatcher(self, invoke_urls: list[str], timeout: float = 600) -> float:
        """``python -m standins.dispatcher`` feeding these runtimes. It warms each runtime up
        before it takes messages. Returns the time (Unix) it was ready."""
        self.stop_dispatcher()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DIVESCORE_", "AWS_"))}
        env.update(self.stack.env_as("dispatcher"))
        env["DIVESCORE_INVOKE_URL"] = ",".join(invoke_urls)
        env["DIVESCORE_LOG_LEVEL"] = "INFO"
        OUTPUT.mkdir(exist_ok=True)
        self._dispatchers_started += 1
        log_path = OUTPUT / f"bench-dispatcher-{self.settings.emulator_port}-{self._dispatchers_started}.log"
        self._dispatcher_log = open(log_path, "w")  # closed in stop_dispatcher
        self.dispatcher = subprocess.Popen(
            [sys.executable, "-m", "standins.dispatcher"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=self._dispatcher_log,
            text=True,
            start_new_session=True,
        )
        ready = threading.Event()
        ready_at: list[float] = []

        def read(stdout=self.dispatcher.stdout, log=self._dispatcher_log):
            for line in stdout:
                log.write(line)
                log.flush()
                if line.strip() == "dispatcher ready":
                    ready_at.append(time.time())
                    ready.set()

        threading.Thread(target=read, daemon=True).start()
        deadline = time.monotonic() + timeout
        while not ready.wait(0.1):
            if self.dispatcher.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the dispatcher did not start; see {log_path}")
        return ready_at[0]

    def stop_dispatcher(self) -> None:
        if self.dispatcher is None:
            return
        stopped = time.monotonic()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.dispatcher.pid, signal.SIGTERM)
        try:
            self.dispatcher.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.dispatcher.pid, signal.SIGKILL)
            self.dispatcher.wait()
        self._dispatcher_log.close()
        self.dispatcher = None
        time.sleep(max(0.0, stopped + DISPATCHER_LONG_POLL_S + 0.5 - time.monotonic()))

    def extra_runtimes(self, count: int, env: dict[str, str]) -> list[Runtime]:
        """More runtimes of the function, beside the stack's, with extra environment (e.g.
        OMP_NUM_THREADS); stopped with the stack at the latest."""
        started = [
            Runtime(HANDLER, FUNCTION_ROOT, {**self.env, **env}, timeout_seconds=self.function_timeout)
            for _ in range(count)
        ]
        self._runtimes += started
        return started

    def stop_runtimes(self, runtimes: list[Runtime]) -> None:
        for runtime in runtimes:
            runtime.stop()
            self._runtimes.remove(runtime)

    def purge_queue(self) -> int:
        """Drop the queued notifications of uploads made while no dispatcher ran. (Received
        and deleted: SQS allows one PurgeQueue a minute.) Returns how many there were."""
        queue_url = self.sqs.get_queue_url(QueueName=self.settings.queue)["QueueUrl"]
        dropped = 0
        while True:
            messages = self.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
                "Messages", []
            )
            if not messages:
                return dropped
            self.sqs.delete_message_batch(
                QueueUrl=queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )
            dropped += len(messages)

    # -- jobs ----------------------------------------------------------------------------

    def submit(self, path: Path) -> tuple[str, float]:
        """A job through the API and its upload; returns the job id and when (monotonic) the
        upload was complete."""
        size = path.stat().st_size
        job = self.api.create_job(filename=path.name, content_type=CONTENT_TYPE, size=size)
        upload(self.api, job, path, content_type=CONTENT_TYPE, session=self.http)
        return job["job_id"], time.monotonic()

    def wait_final(self, job_id: str, timeout: float, interval: float = 0.1) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            job = self.store.get(job_id)
            if job and Status(job["status"]).final:
                return job
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} not finished after {timeout:.0f} s (status {job and job['status']})")
            time.sleep(interval)

    def stop(self) -> None:
        self.stop_dispatcher()
        self.stop_runtimes(list(self._runtimes))
        self.stack.stop()
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

"""What the reliability, security, fuzz and load tests do to a running native stack: use the
API as a browser does, look into the queues and the function's log, and break things (kill a
runtime, cut the table off, run a dispatcher of one's own)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import unquote_plus

import cv2
import requests

from devstack.holds import HOLD_DIR_ENV
from devstack.run import FUNCTION_ROOT, function_env
from standins import dispatcher_key
from tests.support.helpers import BIN, OUTPUT, ROOT, descendants, free_port, pid_alive, wait_until
from tests.support.videos import frame

FINAL = ("succeeded", "failed", "canceled")


# -- the API, as the web page uses it ----------------------------------------------------

def new_job(stack, *, filename="dive.mp4", content_type="video/mp4", size=1000) -> requests.Response:
    return requests.post(f"{stack.presign_url}/v1/jobs", json={
        "filename": filename, "content_type": content_type, "size": size,
    }, timeout=30)


def create_job(stack, path: Path, *, content_type="video/mp4", size: int | None = None) -> dict:
    response = new_job(stack, filename=path.name, content_type=content_type,
                       size=path.stat().st_size if size is None else size)
    assert response.status_code == 201, response.text
    return response.json()


def post_upload(job: dict, data: bytes | Path, content_type="video/mp4") -> requests.Response:
    upload = job["upload"]
    assert upload["method"] == "POST", upload["method"]
    body = data.read_bytes() if isinstance(data, Path) else data
    response = requests.post(upload["url"], data=upload["fields"], files={"file": ("video", body, content_type)},
                             timeout=60)
    assert response.status_code in (200, 201, 204), response.text
    return response


def upload_parts(job: dict, data: bytes) -> list[dict]:
    """PUT each part of a multipart job to its pre-signed URL; the parts list to complete it with."""
    upload = job["upload"]
    assert upload["method"] == "MULTIPART", upload["method"]
    parts = []
    for part in upload["parts"]:
        start = (part["part_number"] - 1) * upload["part_size"]
        put = requests.put(part["url"], data=data[start:start + upload["part_size"]], timeout=60)
        assert put.status_code == 200, put.text
        parts.append({"part_number": part["part_number"], "etag": put.headers["ETag"]})
    return parts


def submit(stack, path: Path, **kwargs) -> dict:
    """Create a job for ``path`` and upload it; the 201 body."""
    job = create_job(stack, path, **kwargs)
    post_upload(job, path)
    return job


def scored_through(stack, path: Path, **kwargs) -> tuple[dict, dict]:
    """``path`` submitted to ``stack`` and waited for: its 201 body and its final job."""
    job = submit(stack, path, **kwargs)
    return job, wait_final(stack, job["job_id"])


def read_job(stack, job_id: str, wait: int = 0) -> requests.Response:
    return requests.get(f"{stack.score_url}/v1/jobs/{job_id}", params={"wait": wait} if wait else None,
                        timeout=wait + 30)


def wait_final(stack, job_id: str, timeout: float = 300) -> dict:
    """The job once it is final (``succeeded``, ``failed`` or ``canceled``), read through the API's long poll."""
    def final():
        response = read_job(stack, job_id, wait=20)
        assert response.status_code == 200, response.text
        body = response.json()
        return body if body["status"] in FINAL else None

    return wait_until(final, timeout, interval=0, what=f"job {job_id} to finish")


def wait_status(stack, job_id: str, statuses: tuple[str, ...], timeout: float = 120, interval: float = 0.02):
    """The job's record (read straight from the table) once its status is one of ``statuses``."""
    def reached():
        job = stack.store.get(job_id)
        return job if job and job["status"] in statuses else None

    return wait_until(reached, timeout, interval=interval, what=f"job {job_id} to be {'/'.join(statuses)}")


# -- the queues --------------------------------------------------------------------------

def queue_url(stack, name: str | None = None) -> str:
    return stack.client("sqs").get_queue_url(QueueName=name or stack.settings.queue)["QueueUrl"]


def queue_counts(stack, name: str | None = None) -> tuple[int, int]:
    """(waiting, in flight) messages of the jobs queue, or of the queue ``name``."""
    attrs = stack.client("sqs").get_queue_attributes(
        QueueUrl=queue_url(stack, name),
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]), int(attrs["ApproximateNumberOfMessagesNotVisible"])


def dead_letters(stack) -> list[dict]:
    """The dead-letter queue's messages, left in it."""
    return peek(stack, stack.settings.dead_letter_queue)


def peek(stack, name: str | None = None) -> list[dict]:
    """The visible messages of a queue, left in it (received with a zero visibility timeout)."""
    sqs = stack.client("sqs")
    url = queue_url(stack, name)
    found: dict[str, dict] = {}
    for _ in range(5):  # SQS (and moto) may answer a receive with a subset of the messages
        answer = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0,
                                     AttributeNames=["All"])
        for message in answer.get("Messages", []):
            found[message["MessageId"]] = message
    return list(found.values())


def keys_in(messages: list[dict]) -> list[str]:
    """The object keys named by S3 notifications in queue messages (S3 sends them URL-encoded)."""
    keys = []
    for message in messages:
        with contextlib.suppress(ValueError, KeyError, TypeError):
            keys += [unquote_plus(r["s3"]["object"]["key"]) for r in json.loads(message["Body"])["Records"]]
    return keys


def s3_event(stack, key: str, size: int, name: str = "ObjectCreated:Post") -> dict:
    """An S3 notification as S3 (and moto) sends it to the queue."""
    return {"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": stack.settings.region,
        "eventName": name,
        "s3": {"bucket": {"name": stack.settings.bucket, "arn": f"arn:aws:s3:::{stack.settings.bucket}"},
               "object": {"key": key, "size": size}},
    }]}


def runtime_idle(stack) -> bool:
    """No message in the jobs queue, none in flight: the dispatcher invokes no runtime now, so a
    test may invoke one itself (the RIE takes one invocation at a time; invoked while busy, it crashes)."""
    return queue_counts(stack) == (0, 0)


def forged_upload_event(stack, job: dict) -> dict:
    """What anyone who can reach a runtime might send it: the S3 event of an upload that never happened."""
    return s3_event(stack, stack.settings.upload_key(job["job_id"]), 1000)


def send(stack, body: dict | str) -> str:
    text = body if isinstance(body, str) else json.dumps(body)
    return stack.client("sqs").send_message(QueueUrl=queue_url(stack), MessageBody=text)["MessageId"]


# -- the function's log ----------------------------------------------------------------

_PROCESS_LINE = re.compile(r"^\S+ (\S+)\s*\| (.*)$")


def log_lines(stack, process: str) -> list[str]:
    """What one process of the stack printed (honcho prefixes each line with its name)."""
    lines = []
    for line in stack.output().split("\n"):  # not splitlines(): logged paths may hold U+2028 and the like
        match = _PROCESS_LINE.match(line)
        if match and match.group(1) == process:
            lines.append(match.group(2))
    return lines


def function_records(stack, process: str = "function-0") -> list[dict]:
    """The function's structured (JSON) log records."""
    records = []
    for line in log_lines(stack, process):
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                records.append(json.loads(line))
    return records


def claims_of(stack, job_id: str, runtimes: int = 1) -> list[str]:
    """The runtimes (``function-N``) that claimed the job, one entry per claim, from their logs."""
    return [
        f"function-{i}"
        for i in range(runtimes)
        for record in function_records(stack, f"function-{i}")
        if record.get("job_id") == job_id and str(record.get("message", "")).startswith("claimed")
    ]


# -- the function's runtime ------------------------------------------------------------

def runtime_process(rie_pid: int) -> int | None:
    """The PID of the Python runtime (awslambdaric) the RIE ``rie_pid`` runs, if one is up."""
    for pid in descendants(rie_pid):
        with contextlib.suppress(OSError):
            if b"awslambdaric" in Path(f"/proc/{pid}/cmdline").read_bytes() and pid_alive(pid):
                return pid
    return None


def kill_runtime(rie_pid: int) -> int:
    """SIGKILL the function's runtime in the middle of whatever it does (as an out-of-memory
    kill or a crash in native code would); the RIE starts a new one on its next invoke."""
    pid = wait_until(lambda: runtime_process(rie_pid), 30, what="the runtime process")
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not pid_alive(pid), 10, what=f"runtime {pid} to die")
    return pid


class OwnRuntime:
    """One RIE + awslambdaric running the inference handler behind the dispatcher-only guard on
    ``port``, with the stack's settings and whatever extra environment a test gives it (e.g.
    another DynamoDB address)."""

    def __init__(self, stack, port: int, extra_env: dict[str, str]):
        base = {k: v for k, v in os.environ.items() if not k.startswith(("DIVESCORE_", "AWS_"))}
        holds = {HOLD_DIR_ENV: str(stack.holds.root)} if stack.holds else {}
        env = function_env(stack.settings, {**base, **stack.env_as("function"), "PYTHONUNBUFFERED": "1", **holds,
                                            **extra_env})
        OUTPUT.mkdir(exist_ok=True)
        self.log_path = OUTPUT / f"own-runtime-{port}.log"
        self.log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [str(BIN / "aws-lambda-rie"), "--runtime-interface-emulator-address", f"127.0.0.1:{port}",
             "--runtime-api-address", f"127.0.0.1:{free_port()}", sys.executable, "-m", "awslambdaric",
             dispatcher_key.GUARD],
            cwd=FUNCTION_ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        wait_until(lambda: _listening(port), 20, what="the runtime interface emulator")

    def records(self) -> list[dict]:
        records = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    records.append(json.loads(line))
        return records

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.log.close()


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


class OwnDispatcher:
    """``python -m standins.dispatcher`` with the stack's environment, for a stack started
    ``without=("dispatcher",)``: a test may kill it and start another."""

    def __init__(self, stack, extra_env: dict[str, str] | None = None):
        base = {k: v for k, v in os.environ.items() if not k.startswith(("DIVESCORE_", "AWS_"))}
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "standins.dispatcher"], cwd=ROOT,
            env={**base, **stack.env_as("dispatcher"), "PYTHONUNBUFFERED": "1", **(extra_env or {})},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        wait_until(lambda: "dispatcher ready" in self.lines or self.process.poll() is not None, 120,
                   what="the dispatcher")
        assert self.process.poll() is None, "\n".join(self.lines)

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def output(self) -> str:
        return "\n".join(self.lines)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, sig)
        self.process.wait(30)
        self._reader.join(5)


# -- the network -----------------------------------------------------------------------

class TcpGate:
    """A TCP forwarder to ``target`` that a test can cut: while cut, every connection (open
    ones included) is reset at once, as when a host is unreachable or its endpoint refuses."""

    def __init__(self, target_port: int):
        self.target = ("127.0.0.1", target_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._open = threading.Event()
        self._open.set()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self.refused = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self) -> None:
        self._open.clear()
        with self._lock:
            for sock in list(self._connections):
                _reset(sock)
            self._connections.clear()

    def restore(self) -> None:
        self._open.set()

    def close(self) -> None:
        self._closed.set()
        self.cut()
        self.listener.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self._open.is_set():
                self.refused += 1
                _reset(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _reset(client)
                continue
            with self._lock:
                self._connections |= {client, upstream}
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()

    def _passes(self, connection: dict, data: bytes) -> bool:
        """Whether ``data`` from the client goes on; False resets the connection. ``connection``
        is this connection's own scratch space. Subclasses cut connections their own way."""
        return True

    def _pipe(self, a: socket.socket, b: socket.socket) -> None:
        connection: dict = {}
        try:
            while True:
                readable, _, _ = select.select([a, b], [], [], 1)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if sock is a and not self._passes(connection, data):
                        connection["reset"] = True
                        return
                    (b if sock is a else a).sendall(data)
        except (OSError, ValueError):
            return
        finally:
            with self._lock:
                self._connections -= {a, b}
            for sock in (a, b):
                if connection.get("reset"):
                    _reset(sock)
                with contextlib.suppress(OSError):
                    sock.close()


def _reset(sock: socket.socket) -> None:
    """Close with an RST rather than a FIN: the peer sees 'connection reset'."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


# -- videos ------------------------------------------------------------------------------

def small_clip(path: Path, *, frames: int = 16, size=(112, 112), offset: int = 0) -> Path:
    """The smallest video the function scores (one 16-frame clip by default), MPEG-4 Part 2.
    ``offset`` shifts the test pattern, so clips with different offsets differ."""
    written = path.with_suffix(".mp4")
    writer = cv2.VideoWriter(str(written), cv2.VideoWriter_fourcc(*"mp4v"), 25, size)
    assert writer.isOpened()
    for i in range(frames):
        writer.write(frame(i + offset, size))
    writer.release()
    return written.replace(path)


def padded(path: Path, size: int) -> Path:
    """``path`` (an MP4) grown to ``size`` bytes with a trailing ``free`` box: still the same
    valid video, big enough to need a multipart upload."""
    data = path.read_bytes()
    pad = size - len(data)
    assert pad >= 8
    path.write_bytes(data + struct.pack(">I", pad) + b"free" + b"\0" * (pad - 8))
    return path

"""The native stack, and a lone function runtime, on free loopback ports: what the tests and
the benchmark start (``make run`` is the same program on the default ports). Everything
started here is stopped by whoever started it (``stop()``).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from devstack.holds import HOLD_DIR_ENV, Holds
from devstack.ports import free_port, free_ports
from standins import dispatcher_key

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
OUTPUT = ROOT / "test-output"  # each process's log


def wait_until(predicate, timeout: float, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is not alive
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc), children first."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().split(")")[-1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


class Stack:
    """``python -m devstack.run`` on free ports, with settings for tests.

    The stack's combined output is kept in ``lines`` and in test-output/stack-*.log; ``pids``
    maps each process name to its PID as honcho printed it."""

    STARTED = re.compile(r"system\s*\|\s*(\S+) started \(pid=(\d+)\)")

    def __init__(self, overrides: dict[str, str] | None = None, without: tuple[str, ...] = (),
                 runtimes: int = 1, timeout: float = 180, holds: bool = False):
        emulator, web, presign, score = free_ports(4)
        runtime_ports = free_ports(runtimes, consecutive=True)
        self.env_overrides = {
            "DIVESCORE_EMULATOR_PORT": str(emulator),
            "DIVESCORE_WEB_PORT": str(web),
            "DIVESCORE_PRESIGN_PORT": str(presign),
            "DIVESCORE_SCORE_PORT": str(score),
            "DIVESCORE_RUNTIME_PORT": str(runtime_ports[0]),
            "DIVESCORE_RUNTIMES": str(runtimes),
            "DIVESCORE_CACHE_DIR": str(ROOT / ".cache" / "weights"),
            # The access keys the stack makes for its processes (and its admin key, for the tests).
            "DIVESCORE_CREDENTIALS_DIR": tempfile.mkdtemp(prefix="divescore-test-keys-"),
            **(overrides or {}),
        }
        # With holds, a test can stop the function at a point of a job's work (devstack.holds).
        self.holds = Holds(tempfile.mkdtemp(prefix="divescore-holds-")) if holds else None
        if self.holds:
            self.env_overrides[HOLD_DIR_ENV] = str(self.holds.root)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DIVESCORE_", "AWS_"))}
        env.update(self.env_overrides)
        # The stack's dispatcher key, known here so that a test's own dispatcher or runtime holds it too.
        self.dispatcher_key = dispatcher_key.new()
        env[dispatcher_key.ENV] = self.dispatcher_key
        self.process_env = env
        from devstack.run import child_env, stack_settings

        self.settings = stack_settings(env)
        self.env = {k: v for k, v in child_env(self.settings, env).items() if k.startswith(("AWS_", "DIVESCORE_"))}
        self.web_url = f"http://127.0.0.1:{self.settings.web_port}"  # an override may set it
        self.presign_url = self.settings.presign_api_url
        self.score_url = self.settings.score_api_url
        self.emulator_url = f"http://127.0.0.1:{self.settings.emulator_port}"  # an override may set it
        self.lines: list[str] = []
        self.pids: dict[str, int] = {}
        OUTPUT.mkdir(exist_ok=True)
        self.log = open(OUTPUT / f"stack-{emulator}.log", "w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "devstack.run", *[f"--without={w}" for w in without]],
            env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,
        )
        self._ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.2):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the native stack did not start:\n" + "".join(self.lines[-40:]))

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line)
            self.log.write(line)
            self.log.flush()
            match = self.STARTED.search(line)
            if match:
                self.pids[match.group(1)] = int(match.group(2))
            if line.strip() == "divescore ready":
                self._ready.set()

    def key(self, principal: str = "admin") -> dict[str, str]:
        """The access key the stack made for ``principal`` (a process, or ``admin``); with IAM off,
        the one key every process uses."""
        from devstack.iam import principals

        if self.settings.iam != "enforced":
            return {"AccessKeyId": self.env["AWS_ACCESS_KEY_ID"], "SecretAccessKey": self.env["AWS_SECRET_ACCESS_KEY"]}
        return principals.read_key(self.settings.credentials_dir, principal)

    def env_as(self, principal: str) -> dict[str, str]:
        """The stack's environment with the access key of ``principal``, for a process of one's
        own (and the dispatcher's key, for a dispatcher or a function runtime)."""
        from devstack.iam import principals

        keyed = {dispatcher_key.ENV: self.dispatcher_key} if principal in ("dispatcher", "function") else {}
        return {**self.env, **principals.as_env(self.key(principal)), **keyed}

    @property
    def store(self):
        from divescore.jobs import JobStore

        return JobStore(self.resource("dynamodb").Table(self.settings.table))

    def resource(self, service: str):
        import boto3

        key = self.key()
        return boto3.session.Session(region_name=self.settings.region).resource(
            service, endpoint_url=self.emulator_url,
            aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"],
        )

    def output(self) -> str:
        return "".join(self.lines)

    def client(self, service: str, principal: str = "admin", **kwargs):
        """A boto3 client pointed at this stack's emulator, signing as ``principal`` with SigV4
        (as the stack's own clients do: S3 refuses SigV2 pre-signed URLs, and so does the emulator)."""
        import boto3
        from botocore.config import Config

        key = self.key(principal)
        kwargs.setdefault("config", Config(signature_version="s3v4", s3={"addressing_style": "path"}))
        return boto3.session.Session(region_name=self.settings.region).client(
            service, endpoint_url=self.emulator_url,
            aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"], **kwargs,
        )

    def stop(self, sig: int = signal.SIGINT, timeout: float = 20) -> int:
        if self.holds:
            self.holds.release_all()
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        # Belt and braces: nothing a test started may outlive it.
        for pid in self.pids.values():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        self._reader.join(5)
        self.log.close()
        shutil.rmtree(self.settings.credentials_dir, ignore_errors=True)
        if self.holds:
            shutil.rmtree(self.holds.root, ignore_errors=True)
        return self.process.returncode


class Runtime:
    """A Lambda Runtime Interface Emulator running ``python -m awslambdaric HANDLER`` in ``root``."""

    def __init__(self, handler: str, root: Path, env: dict[str, str], timeout_seconds: int = 30):
        self.port = free_port()
        self.invoke_url = f"http://127.0.0.1:{self.port}/2015-03-31/functions/function/invocations"
        full_env = {
            **os.environ, **env,
            "LAMBDA_TASK_ROOT": str(root),
            "AWS_LAMBDA_FUNCTION_NAME": "test-function",
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(timeout_seconds),
        }
        OUTPUT.mkdir(exist_ok=True)
        self.log = open(OUTPUT / f"runtime-{self.port}.log", "wb")
        self.process = subprocess.Popen(
            [str(BIN / "aws-lambda-rie"), "--runtime-interface-emulator-address", f"127.0.0.1:{self.port}",
             "--runtime-api-address", f"127.0.0.1:{free_port()}",
             sys.executable, "-m", "awslambdaric", handler],
            cwd=root, env=full_env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        wait_until(self._listening, 20, what="the runtime interface emulator")

    def _listening(self) -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", self.port)) == 0

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.log.close()

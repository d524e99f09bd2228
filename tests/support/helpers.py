"""Processes for tests: free ports, the AWS emulator, the native stack, and the one way to make
settings with resources of their own. Everything started here is stopped by the fixture that
started it. The native stack and a lone runtime live in devstack.harness (the benchmark starts
them too)."""

from __future__ import annotations

import contextlib
import http.server
import os
import signal
import ssl
import subprocess
import sys
import threading

import requests

from devstack.harness import (  # noqa: F401  (re-exported: the tests import them from here)
    BIN,
    OUTPUT,
    ROOT,
    Runtime,
    Stack,
    descendants,
    free_port,
    free_ports,
    pid_alive,
    wait_until,
)

TESTS = ROOT / "tests"
WEIGHTS_CACHE = ROOT / ".cache" / "weights"  # the generated weights, as the stack's function uses them

# What the tests' stacks run with: small multipart parts so tests can exercise them with
# small files, and a function timeout a real (2-core) inference fits in.
STACK_SETTINGS = {
    "DIVESCORE_MULTIPART_THRESHOLD_BYTES": str(6 * 1024 * 1024),
    "DIVESCORE_PART_SIZE_BYTES": str(5 * 1024 * 1024),
    "DIVESCORE_FUNCTION_TIMEOUT_SECONDS": "120",
    "DIVESCORE_VISIBILITY_TIMEOUT_SECONDS": "130",
    "DIVESCORE_ALLOW_LOOPBACK_HTTP_CALLBACKS": "1",  # the webhook tests' receivers listen on loopback
    "DIVESCORE_VERBOSE": "1",  # every line in the logs: the tests read them, and look for secrets in them
}


@contextlib.contextmanager
def running_stack(overrides: dict[str, str] | None = None, **kwargs):
    """A native stack with ``STACK_SETTINGS`` and ``overrides`` (``kwargs``: Stack's), stopped on exit."""
    stack = Stack({**STACK_SETTINGS, **(overrides or {})}, **kwargs)
    try:
        yield stack
    finally:
        stack.stop()


class WebhookReceiver:
    """A webhook receiver on 127.0.0.1 (a free port): records each POST as ``(path, headers,
    body)`` and answers 500 to the first ``fail_first``, then 200; over https when given a
    ``certificate`` (a ``trustme`` leaf). ``url`` is its hook on 127.0.0.1."""

    def __init__(self, fail_first: int = 0, certificate=None):
        self.requests: list[tuple[str, dict, bytes]] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.requests.append((self.path, dict(self.headers.items()), body))
                self.send_response(500 if len(receiver.requests) <= fail_first else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        if certificate is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            certificate.configure_cert(context)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def __enter__(self) -> WebhookReceiver:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1",
                    "AWS_DEFAULT_REGION": "us-east-1"}


class Emulator:
    """A moto server (S3, SQS, DynamoDB) on a free loopback port."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.env = {**FAKE_CREDENTIALS, "AWS_ENDPOINT_URL": self.endpoint}
        OUTPUT.mkdir(exist_ok=True)
        self.log = open(OUTPUT / f"emulator-{self.port}.log", "wb")
        self.process = subprocess.Popen(
            # moto's server as the stack runs it: atomic conditional writes, signatures kept out of its log
            [sys.executable, "-m", "devstack.emulator", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        wait_until(self._up, 30, what="moto server")

    def _up(self) -> bool:
        try:
            requests.get(self.endpoint, timeout=1)
            return True
        except requests.RequestException:
            if self.process.poll() is not None:
                raise RuntimeError(f"moto server exited with {self.process.returncode}") from None
            return False

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.log.close()


def isolated_settings(*, bootstrap: bool = True, **overrides):
    """The tests' one settings factory: settings naming resources of their own (unique names, so
    tests never share state) on the emulator in the environment; created there unless
    ``bootstrap`` is False. Fixtures of every scope (conftest's ``settings``, the service tests'
    ``api_settings``) call it."""
    import secrets

    from divescore.settings import load
    from standins.bootstrap import bootstrap as create_resources

    suffix = secrets.token_hex(5)
    values = {
        "bucket": f"test-uploads-{suffix}",
        "queue": f"test-jobs-{suffix}",
        "dead_letter_queue": f"test-jobs-dlq-{suffix}",
        "table": f"test-jobs-{suffix}",
        "s3_addressing_style": "path",
        "function_timeout_seconds": 30,
        "visibility_timeout_seconds": 40,
        **overrides,
    }
    settings = load({}, **values)
    if bootstrap:
        create_resources(settings)
    return settings

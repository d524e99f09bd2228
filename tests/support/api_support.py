"""Shared by the API tests: their settings' limits, and the two services started for real (in a
thread with Werkzeug's server, or under gunicorn as subprocesses).

Each test module builds its settings once (tests/service/conftest.py's ``api_settings``, on the
session's ``emulator``) and keeps its services running for the whole module.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import requests
from werkzeug.serving import make_server

from divescore import aws
from divescore.jobs import JobStore
from divescore.settings import MIB, Settings
from standins.serving import gunicorn_command
from tests.support.helpers import ROOT, free_port, wait_until

ALLOWED_ORIGIN = "http://allowed.example"


# What the API tests' settings (tests.support.helpers.isolated_settings) hold besides their own
# resources: small limits, so multipart tests move a few MiB, not hundreds.
API_SETTINGS = {
    "cors_origins": (ALLOWED_ORIGIN,),
    "max_upload_bytes": 40 * MIB,
    "multipart_threshold_bytes": 6 * MIB,
    "part_size_bytes": 5 * MIB,
    "max_wait_seconds": 5,
    "poll_interval_ms": 20,
    "log_level": "WARNING",
}


def store_for(settings: Settings, **kwargs) -> JobStore:
    return JobStore(aws.table(settings), **kwargs)


@contextlib.contextmanager
def serve_in_thread(app) -> Iterator[str]:
    """The app on a free port, served by Werkzeug's threaded server; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


@dataclasses.dataclass(frozen=True)
class Served:
    url: str
    log: Path  # the service's stdout and stderr


@contextlib.contextmanager
def serve_with_gunicorn(service: str, settings: Settings, env: dict[str, str], log_dir: Path) -> Iterator[Served]:
    """``service`` under gunicorn, with the command line the stack uses, on a free port."""
    port = free_port()
    port_setting, url_setting = {"jobs_api": ("presign_port", "presign_api_url"),
                                 "status_api": ("score_port", "score_api_url")}[service]
    settings = dataclasses.replace(settings, host="127.0.0.1",
                                   **{port_setting: port, url_setting: f"http://127.0.0.1:{port}"})
    child_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DIVESCORE_")},
        **env, **settings.to_env(),
    }
    log = log_dir / f"{service}.log"
    with open(log, "a") as out:  # append: the workers' lines never overwrite each other
        process = subprocess.Popen(
            gunicorn_command(service, settings), cwd=ROOT, env={**child_env, "PYTHONUNBUFFERED": "1"},
            stdout=out, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _answers(url + "/healthz", process), 30, what=f"{service} under gunicorn")
        yield Served(url=url, log=log)
    finally:
        process.send_signal(signal.SIGINT)  # gunicorn's quick shutdown
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _answers(url: str, process: subprocess.Popen) -> bool:
    if process.poll() is not None:
        raise RuntimeError(f"{process.args} exited with {process.returncode}")
    try:
        return requests.get(url, timeout=5).status_code == 200
    except requests.RequestException:  # listening before its workers have loaded the app
        return False


def http_api_event(method: str, path: str, *, body: str | None = None, query: str = "",
                   headers: dict[str, str] | None = None, request_id: str = "apigw-req-1") -> dict:
    """An API Gateway HTTP API event, payload format 2.0, in the shape AWS documents for Lambda
    proxy integrations (lower-case headers, ``rawQueryString``, ``requestContext.http``)."""
    from urllib.parse import parse_qsl

    parameters: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        parameters[key] = f"{parameters[key]},{value}" if key in parameters else value
    event = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": {"content-type": "application/json", "host": "api.example.com", "x-forwarded-proto": "https",
                    "x-forwarded-port": "443", "x-forwarded-for": "192.0.2.1", "origin": ALLOWED_ORIGIN,
                    "user-agent": "test", **{k.lower(): v for k, v in (headers or {}).items()}},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api-id",
            "domainName": "api.example.com",
            "domainPrefix": "api",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "192.0.2.1",
                     "userAgent": "test"},
            "requestId": request_id,
            "routeKey": "$default",
            "stage": "$default",
            "time": "01/Dec/2026:12:00:00 +0000",
            "timeEpoch": 1796126400000,
        },
        "isBase64Encoded": False,
    }
    if parameters:
        event["queryStringParameters"] = parameters
    if body is not None:
        event["body"] = body
    return event

"""The client's uploads against a real HTTP server that misbehaves the way storage can:
parts that fail and must be retried, refusals that must not be, and a missing ETag."""

from __future__ import annotations

import hashlib
import os
import threading

import pytest
import requests
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from client.upload import UploadFailed, put_parts
from tests.support.helpers import free_port

PART = 64 * 1024


class FlakyStorage:
    """Accepts ``PUT /part/N``; answers each part's first ``failures`` attempts with ``status``."""

    def __init__(self, *, failures: int = 0, status: int = 500, etag: bool = True):
        self.failures, self.status, self.etag = failures, status, etag
        self.attempts: dict[int, int] = {}
        self.received: dict[int, bytes] = {}
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        request = Request(environ)
        number = int(request.path.rsplit("/", 1)[1])
        body = request.get_data()
        with self.lock:
            self.attempts[number] = self.attempts.get(number, 0) + 1
            attempt = self.attempts[number]
        if attempt <= self.failures:
            xml = f"<Error><Code>Oops</Code><Message>Part {number} refused on attempt {attempt}</Message></Error>"
            return Response(xml, status=self.status, mimetype="application/xml")(environ, start_response)
        self.received[number] = body
        headers = {"ETag": f'"{hashlib.md5(body).hexdigest()}"'} if self.etag else {}
        return Response(b"", status=200, headers=headers)(environ, start_response)


@pytest.fixture
def serve():
    servers = []

    def start(app):
        server = make_server("127.0.0.1", free_port(), app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for server in servers:
        server.shutdown()


def instructions(base: str, size: int) -> dict:
    count = -(-size // PART)
    return {"method": "MULTIPART", "part_size": PART, "complete_url": "unused",
            "parts": [{"part_number": n, "url": f"{base}/part/{n}"} for n in range(1, count + 1)]}


def upload(tmp_path, base, size, **kwargs):
    data = os.urandom(size)
    path = tmp_path / "video.mp4"
    path.write_bytes(data)
    done = []
    parts = put_parts(instructions(base, size), path, progress=done.append, parallel=3,
                      cancel=threading.Event(), session=requests.Session(), sleep=lambda s: None, **kwargs)
    return data, parts, sum(done)


def test_parts_that_fail_are_retried_and_the_progress_counts_each_byte_once(tmp_path, serve):
    storage = FlakyStorage(failures=2, status=503)
    size = 5 * PART + 123
    data, parts, progress = upload(tmp_path, serve(storage), size)

    assert [p["part_number"] for p in parts] == [1, 2, 3, 4, 5, 6]
    assert all(storage.attempts[n] == 3 for n in range(1, 7))
    assert b"".join(storage.received[n] for n in range(1, 7)) == data
    assert parts[0]["etag"] == f'"{hashlib.md5(data[:PART]).hexdigest()}"'
    assert progress == size  # bytes of the failed attempts were taken back


def test_a_refusal_is_not_retried_and_its_message_is_reported(tmp_path, serve):
    storage = FlakyStorage(failures=99, status=403)
    with pytest.raises(UploadFailed, match=r"S3 answered 403: Part \d refused on attempt 1"):
        upload(tmp_path, serve(storage), 3 * PART)
    assert max(storage.attempts.values()) == 1


def test_a_part_that_keeps_failing_gives_up_after_the_last_attempt(tmp_path, serve):
    storage = FlakyStorage(failures=99, status=500)
    with pytest.raises(UploadFailed, match="after 4 attempts"):
        upload(tmp_path, serve(storage), PART)
    assert storage.attempts[1] == 4


def test_a_part_without_an_etag_is_an_error_that_names_cors(tmp_path, serve):
    with pytest.raises(UploadFailed, match="CORS"):
        upload(tmp_path, serve(FlakyStorage(etag=False)), PART)

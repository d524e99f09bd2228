"""gunicorn's worker for the laptop stacks' APIs, answering what gunicorn itself refuses (a
request line or headers too long, a malformed request) in the API's JSON error form instead
of gunicorn's HTML page. On AWS, API Gateway answers these before any function runs.

    gunicorn --worker-class standins.json_errors.JsonErrorsWorker ...
"""

from __future__ import annotations

import json

from gunicorn import util
from gunicorn.workers.gthread import ThreadWorker

# gunicorn's status → the API's error code (docs/api.md, "Errors").
CODES = {414: "request_too_large", 431: "request_too_large", 500: "internal_error"}
MESSAGES = {
    414: "The request's address is too long.",
    431: "The request's headers are too large.",
    500: "Something went wrong on our side. Try again.",
}
DEFAULT_MESSAGE = "The request could not be read as HTTP: check the request line and its headers."


class _Captured:
    """Stands in for the client socket while gunicorn writes its error page."""

    def __init__(self):
        self.data = b""

    def gettimeout(self) -> float:
        return 0.0

    def sendall(self, data: bytes) -> None:
        self.data += data


def json_error(status: int, reason: str) -> bytes:
    body = json.dumps({"error": {"code": CODES.get(status, "bad_request"),
                                 "message": MESSAGES.get(status, DEFAULT_MESSAGE)}}).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode("latin1")
    return head + body


class JsonErrorsWorker(ThreadWorker):
    def handle_error(self, req, client, addr, exc):
        page = _Captured()
        super().handle_error(req, page, addr, exc)  # logs as gunicorn does; its page is kept here
        status_line = page.data.split(b"\r\n", 1)[0].decode("latin1")  # "HTTP/1.1 414 URI Too Long"
        _, status, reason = [*status_line.split(" ", 2), "", ""][:3]
        try:
            util.write_nonblock(client, json_error(int(status or 500), reason or "Internal Server Error"))
        except Exception:
            self.log.debug("Failed to send error message.")

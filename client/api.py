"""A small client of the HTTP API v1 (see docs/api.md): ``POST /v1/jobs``, the multipart
``complete`` call, ``POST /v1/jobs/{id}/rescore``, ``POST /v1/jobs/{id}/cancel`` and
``GET /v1/jobs/{id}`` with its long-poll."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import urljoin

import requests

FINAL_STATUSES = ("succeeded", "failed", "canceled")
LONG_POLL_SECONDS = 20


class ApiError(Exception):
    """The API refused a request (``status`` ≥ 400), or could not be reached (``status`` 0)."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    @property
    def retryable(self) -> bool:
        return self.status == 0 or self.status == 429 or self.status >= 500

    def as_dict(self) -> dict:
        return {"code": self.code, "message": self.message}


@dataclass(frozen=True)
class Poll:
    """One answer of ``GET /v1/jobs/{id}``: the job, or None when unchanged since ``etag`` (304)."""

    job: dict | None
    etag: str | None


def backoff_delays(first: float = 0.5, cap: float = 15.0) -> Iterator[float]:
    """Exponential back-off with full jitter: 0..0.5 s, 0..1 s, 0..2 s, ... up to ``cap``."""
    delay = first
    while True:
        yield random.uniform(delay / 2, delay)
        delay = min(delay * 2, cap)


class ApiClient:
    def __init__(self, presign_url: str, score_url: str, *, session: requests.Session | None = None,
                 timeout: float = 15.0):
        self.presign_url = presign_url.rstrip("/")
        self.score_url = score_url.rstrip("/")
        self.session = session or requests.Session()
        self.timeout = timeout

    # -- presign API -------------------------------------------------------------------

    def create_job(self, *, filename: str, content_type: str, size: int, entry_s: float | None = None) -> dict:
        """A new job and its upload instructions (``upload.method`` POST or MULTIPART); with
        ``entry_s``, the job scores the window ending there."""
        body = {"filename": filename, "content_type": content_type, "size": size}
        if entry_s is not None:
            body["entry_s"] = entry_s
        return self._json("POST", f"{self.presign_url}/v1/jobs", json=body)

    def complete_upload(self, complete_url: str, parts: list[dict]) -> dict:
        """Ends a multipart upload: ``parts`` is ``[{"part_number", "etag"}]`` in order."""
        url = urljoin(self.presign_url + "/", complete_url)
        return self._json("POST", url, json={"parts": parts})

    def cancel_job(self, job_id: str) -> dict:
        """Cancels the job (a canceled one stays so); the job as it is now."""
        return self._json("POST", f"{self.presign_url}/v1/jobs/{job_id}/cancel")

    def rescore_job(self, job_id: str, entry_s: float | None = None) -> dict:
        """A new job scoring the same video over the window ending at ``entry_s`` (None: find
        the entry again); the new job as ``GET /v1/jobs/{id}`` shows it."""
        return self._json("POST", f"{self.presign_url}/v1/jobs/{job_id}/rescore", json={"entry_s": entry_s})

    # -- score API ---------------------------------------------------------------------

    def get_job(self, job_id: str, *, wait: int = 0, etag: str | None = None) -> Poll:
        headers = {"If-None-Match": etag} if etag else {}
        params = {"wait": wait} if wait else {}
        response = self._request(
            "GET", f"{self.score_url}/v1/jobs/{job_id}", params=params, headers=headers,
            timeout=(self.timeout, self.timeout + wait),
        )
        if response.status_code == 304:
            return Poll(None, etag)
        return Poll(_json_or_raise(response), response.headers.get("ETag"))

    def follow(self, job_id: str, *, on_change: Callable[[dict], None] | None = None,
               wait: int = LONG_POLL_SECONDS, timeout: float | None = None,
               sleep: Callable[[float], None] = time.sleep) -> dict:
        """Long-polls the job until it is final and returns it, calling ``on_change`` with each
        new version. Transient errors (unreachable, 5xx, 429) are retried with back-off; an
        unknown job raises :class:`ApiError`; so does ``timeout`` seconds without a final status."""
        deadline = None if timeout is None else time.monotonic() + timeout
        etag, job, delays = None, None, backoff_delays()
        while True:
            try:
                # Without an ETag the service would hold even a finished job: the first read is at once.
                poll = self.get_job(job_id, wait=wait if etag else 0, etag=etag)
            except ApiError as err:
                if not err.retryable:
                    raise
                sleep(next(delays))
            else:
                delays = backoff_delays()
                if poll.job is not None:
                    job, etag = poll.job, poll.etag
                    if on_change:
                        on_change(job)
                    if job.get("status") in FINAL_STATUSES:
                        return job
            if deadline is not None and time.monotonic() > deadline:
                status = job.get("status") if job else "unknown"
                raise ApiError(0, "follow_timeout",
                               f"Job {job_id} is still {status} after {timeout:.0f} s; "
                               f"check it later with `divescore status {job_id}`.")

    # -- plumbing ----------------------------------------------------------------------

    def _request(self, method: str, url: str, **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout)
        try:
            return self.session.request(method, url, **kwargs)
        except requests.RequestException as err:
            raise ApiError(0, "unreachable", f"Could not reach {url}: {err.__class__.__name__}.") from err

    def _json(self, method: str, url: str, **kwargs) -> dict:
        return _json_or_raise(self._request(method, url, **kwargs))


def _json_or_raise(response: requests.Response) -> dict:
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code >= 400:
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict) and "message" in error:
            raise ApiError(response.status_code, error.get("code", "error"), error["message"])
        raise ApiError(response.status_code, f"http_{response.status_code}",
                       f"{response.request.method} {response.url} answered {response.status_code} "
                       f"{response.reason}.")
    if not isinstance(body, dict):
        raise ApiError(response.status_code, "bad_response",
                       f"{response.url} answered {response.status_code} without a JSON object.")
    return body

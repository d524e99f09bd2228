"""Reading a job for a client, and waiting for it to change (the long-poll). No Flask here.

A read only reads: it gets the job record and signs a short-lived URL for its filmstrip. It
never writes (the function, the presign service and the sweep change jobs), so the service
runs with read access only.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import re
import threading
import time
from collections.abc import Callable, Collection

from divescore import errors
from divescore.jobs import JobStore, Status, public_view
from divescore.settings import Settings

_WAIT = re.compile(r"^[0-9]{1,6}$")


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """What a client is shown: the body, and the ETag of the job's public fields."""

    body: dict
    etag: str


def parse_wait(raw: str | None, settings: Settings) -> int:
    """Seconds to hold the request: ``?wait=N``, a whole number from 0 to the limit."""
    if raw is None:
        return 0
    if not _WAIT.match(raw) or int(raw) > settings.max_wait_seconds:
        raise errors.InvalidWait(
            f"wait must be a whole number of seconds from 0 to {settings.max_wait_seconds}; got {raw[:20]!r}."
        )
    return int(raw)


def etag_of(view: dict) -> str:
    """A hash of the job's public fields (without the filmstrip URL, which is signed anew on
    every read): equal exactly when the job has not changed."""
    canonical = json.dumps(view, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def read_job(job_id: str, settings: Settings, *, store: JobStore, presigner) -> Snapshot | None:
    """The job as a client may see it, or None when there is no such (unexpired) job."""
    job = store.get(job_id)
    if job is None:
        return None
    view = public_view(job)
    body = dict(view)
    if job.get("filmstrip_key"):
        body["filmstrip_url"] = presigner.generate_presigned_url(
            "get_object",
            Params={"Bucket": settings.bucket, "Key": job["filmstrip_key"]},
            ExpiresIn=settings.url_ttl_seconds,
        )
    return Snapshot(body=body, etag=etag_of(view))


class WaitingPlaces:
    """How many requests of one process may wait at once. A waiting request holds a thread for
    up to ``max_wait_seconds``; with every thread waiting, nothing else (a plain read,
    ``/healthz``) would be answered until one ends. A request that finds no place is refused at
    once (503 with ``Retry-After``), and the clients ask again."""

    def __init__(self, places: int):
        self._places = threading.BoundedSemaphore(places)

    @contextlib.contextmanager
    def taken(self):
        if not self._places.acquire(blocking=False):
            raise errors.TooManyWaiting(
                "Too many clients are waiting for jobs to change on this server; ask again in a second."
            )
        try:
            yield
        finally:
            self._places.release()


def wait_for_change(read: Callable[[], Snapshot | None], *, seen: Collection[str], wait_seconds: float,
                    poll_interval_seconds: float, sleep=time.sleep, clock=time.monotonic) -> Snapshot | None:
    """Read until the job differs from what the client has, or ``wait_seconds`` pass.

    ``seen`` holds the ETags the client sent (``If-None-Match``); without any, the job as it
    is at the first read counts as seen. A finished job never changes, so it is answered at
    once. Returns the last read (None: the job is gone).
    """
    deadline = clock() + wait_seconds
    snapshot = read()
    if snapshot is None:
        return None
    seen = set(seen) or {snapshot.etag}
    while snapshot.etag in seen and not Status(snapshot.body["status"]).final:
        left = deadline - clock()
        if left <= 0:
            break
        sleep(min(poll_interval_seconds, left))
        snapshot = read()
        if snapshot is None:
            return None
    return snapshot

"""Upload a video straight to S3 with the instructions ``POST /v1/jobs`` returned: a
pre-signed POST for small files, or multipart (parts PUT in parallel, each retried) for large
ones. Progress is reported in bytes of the file through a callback (a tqdm bar's ``update``)."""

from __future__ import annotations

import concurrent.futures
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import requests
from requests_toolbelt import MultipartEncoder, MultipartEncoderMonitor

from client.api import ApiClient, backoff_delays

PARALLEL_PARTS = 3
ATTEMPTS = 4
CHUNK_BYTES = 256 * 1024
TIMEOUT = (10, 120)  # connect, read (seconds)

Progress = Callable[[int], None]  # bytes sent since the last call; negative when a retry starts over


class UploadFailed(Exception):
    """S3 refused the upload or could not be reached, after the retries; the message says why."""


class UploadCancelled(Exception):
    """The upload was stopped by its ``cancel`` event."""


def upload(api: ApiClient, job: dict, path: str | Path, *, content_type: str, progress: Progress = lambda n: None,
           parallel: int = PARALLEL_PARTS, cancel: threading.Event | None = None,
           session: requests.Session | None = None, sleep: Callable[[float], None] = time.sleep) -> None:
    """Upload ``path`` as ``job`` (the answer of ``POST /v1/jobs``) instructs."""
    instructions = job["upload"]
    cancel = cancel or threading.Event()
    session = session or requests.Session()
    if instructions["method"] == "POST":
        post_file(instructions, path, content_type=content_type, progress=progress, cancel=cancel,
                  session=session, sleep=sleep)
    elif instructions["method"] == "MULTIPART":
        parts = put_parts(instructions, path, progress=progress, parallel=parallel, cancel=cancel,
                          session=session, sleep=sleep)
        api.complete_upload(instructions["complete_url"], parts)
    else:
        raise UploadFailed(f"Unknown upload method {instructions['method']!r}; is the client older than the API?")


# -- pre-signed POST ---------------------------------------------------------------------

def post_file(instructions: dict, path: str | Path, *, content_type: str, progress: Progress,
              cancel: threading.Event, session: requests.Session, sleep=time.sleep) -> None:
    size = os.path.getsize(path)

    def attempt(report: Progress) -> requests.Response:
        with open(path, "rb") as file:
            # S3 reads the form fields in order and requires the file to come last.
            fields = [*instructions["fields"].items(), ("file", (Path(path).name, file, content_type))]
            encoder = MultipartEncoder(fields=fields)
            sent = 0

            def on_read(monitor: MultipartEncoderMonitor) -> None:
                nonlocal sent
                if cancel.is_set():
                    raise UploadCancelled()
                # The body is the file plus a little form overhead: report its share of the file.
                now = monitor.bytes_read * size // encoder.len
                report(now - sent)
                sent = now

            monitor = MultipartEncoderMonitor(encoder, on_read)
            return session.post(instructions["url"], data=monitor, headers={"Content-Type": monitor.content_type},
                                timeout=TIMEOUT)

    _with_retries(attempt, "the upload", progress=progress, cancel=cancel, sleep=sleep)


# -- multipart ---------------------------------------------------------------------------

def put_parts(instructions: dict, path: str | Path, *, progress: Progress, parallel: int,
              cancel: threading.Event, session: requests.Session, sleep=time.sleep) -> list[dict]:
    """PUT every part, ``parallel`` at a time; returns ``[{"part_number", "etag"}]`` in order.
    The first part that fails all its attempts stops the others."""
    part_size = instructions["part_size"]
    lock = threading.Lock()

    def locked_progress(n: int) -> None:
        with lock:
            progress(n)

    def put_one(part: dict) -> dict:
        number = part["part_number"]
        with open(path, "rb") as file:
            file.seek((number - 1) * part_size)
            data = file.read(part_size)

        def attempt(report: Progress) -> requests.Response:
            return session.put(part["url"], data=_CountingBody(data, report, cancel), timeout=TIMEOUT)

        response = _with_retries(attempt, f"part {number}", progress=locked_progress, cancel=cancel, sleep=sleep)
        etag = response.headers.get("ETag")
        if not etag:
            raise UploadFailed(f"S3 accepted part {number} but sent no ETag; the bucket's CORS must expose it.")
        return {"part_number": number, "etag": etag}

    pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="part")
    futures = [pool.submit(put_one, part) for part in instructions["parts"]]
    try:
        # Waiting in short steps keeps Ctrl-C responsive in the main thread.
        pending = set(futures)
        while pending:
            done, pending = concurrent.futures.wait(pending, timeout=0.5,
                                                    return_when=concurrent.futures.FIRST_EXCEPTION)
            for future in done:
                future.result()
        return sorted((f.result() for f in futures), key=lambda p: p["part_number"])
    except BaseException:
        cancel.set()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


class _CountingBody:
    """A request body that reports each chunk as it is sent and stops when cancelled.
    ``__len__`` makes requests send a Content-Length (S3 refuses chunked part uploads)."""

    def __init__(self, data: bytes, report: Progress, cancel: threading.Event):
        self.data, self.report, self.cancel = data, report, cancel

    def __len__(self) -> int:
        return len(self.data)

    def __iter__(self) -> Iterator[bytes]:
        view = memoryview(self.data)
        for start in range(0, len(view), CHUNK_BYTES):
            if self.cancel.is_set():
                raise UploadCancelled()
            chunk = view[start:start + CHUNK_BYTES]
            yield bytes(chunk)
            self.report(len(chunk))


# -- retries -----------------------------------------------------------------------------

def _with_retries(attempt: Callable[[Progress], requests.Response], what: str, *, progress: Progress,
                  cancel: threading.Event, sleep=time.sleep, attempts: int = ATTEMPTS) -> requests.Response:
    """Run ``attempt`` until S3 accepts it: connection errors and 5xx/429 answers are retried
    with back-off, other refusals are final. Bytes of a failed attempt are taken back."""
    delays = backoff_delays(first=1.0, cap=8.0)
    for number in range(1, attempts + 1):
        if cancel.is_set():
            raise UploadCancelled()
        sent = 0

        def report(n: int) -> None:
            nonlocal sent
            sent += n
            progress(n)

        try:
            response = attempt(report)
        except UploadCancelled:
            progress(-sent)
            raise
        except requests.RequestException as err:
            progress(-sent)
            if cancel.is_set():
                raise UploadCancelled() from err
            problem = f"could not reach S3 ({err.__class__.__name__})"
        else:
            if response.ok:
                return response
            progress(-sent)
            problem = f"S3 answered {response.status_code}: {_s3_message(response)}"
            if response.status_code < 500 and response.status_code != 429:
                raise UploadFailed(f"Uploading {what} failed: {problem}")
        if number < attempts:
            sleep(next(delays))
    raise UploadFailed(f"Uploading {what} failed after {attempts} attempts: {problem}")


def _s3_message(response: requests.Response) -> str:
    match = re.search(r"<Message>(.*?)</Message>", response.text or "", re.DOTALL)
    return match.group(1).strip() if match else (response.reason or "no reason given")

"""4. Upload: a 200 MB file through the stack's pre-signed POST and through multipart with
parallel parts (the client's own upload code, over HTTP to the emulator), each divided by a
raw PUT of the same bytes to the same emulator: how much the upload protocol costs.

The presign app runs in this process on a free port (the service's own ``create_app``),
twice: once with the multipart threshold above the file's size, once below it, so the same
file goes each way. No dispatcher runs meanwhile: the upload notifications are dropped from
the queue afterwards and the function never looks at the random bytes.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import requests
from werkzeug.serving import make_server

from bench.report import Metric, Spec, at_least
from client.api import ApiClient
from client.upload import PARALLEL_PARTS, put_parts, upload

TARGET = at_least(0.80)
RAW_KEY = "bench/raw-put"  # outside the upload prefix: no notification, no job

POST = Spec("upload_post_vs_raw", "upload, pre-signed POST: raw PUT time / POST time", "ratio", TARGET)
MULTIPART = Spec(
    "upload_multipart_vs_raw",
    "upload, multipart (parallel parts): raw PUT time / multipart time",
    "ratio",
    TARGET,
)
SPECS = (POST, MULTIPART)


@contextmanager
def presign_server(settings):
    """The presign service's app on a free loopback port, in a thread."""
    from services.jobs_api import create_app

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    server = make_server("127.0.0.1", 0, create_app(settings), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()


def random_file(path, size: int):
    # Video bytes are already compressed: random bytes are the honest stand-in.
    rng = np.random.default_rng(7)
    with open(path, "wb") as f:
        left = size
        while left:
            block = min(left, 16 * 1024 * 1024)
            f.write(rng.bytes(block))
            left -= block
    return path


def raw_put_seconds(bs, data: bytes, session: requests.Session) -> float:
    url = bs.s3.generate_presigned_url(
        "put_object", Params={"Bucket": bs.settings.bucket, "Key": RAW_KEY}, ExpiresIn=600
    )
    started = time.perf_counter()
    response = session.put(url, data=data, timeout=600)
    seconds = time.perf_counter() - started
    response.raise_for_status()
    bs.s3.delete_object(Bucket=bs.settings.bucket, Key=RAW_KEY)
    return seconds


def client_upload_seconds(
    bs, presign_url: str, path, expected_method: str, session: requests.Session
) -> tuple[float, float]:
    """Seconds for the whole upload, and of them the multipart ``complete`` call (0 for POST).
    The multipart branch is the client's ``upload`` in its two steps, timed apart."""
    api = ApiClient(presign_url, bs.stack.score_url, session=session)
    job = api.create_job(filename="bench.mp4", content_type="video/mp4", size=path.stat().st_size)
    if job["upload"]["method"] != expected_method:
        raise RuntimeError(f"the presign app answered {job['upload']['method']}, expected {expected_method}")
    started = time.perf_counter()
    complete_seconds = 0.0
    if expected_method == "MULTIPART":
        parts = put_parts(
            job["upload"],
            path,
            progress=lambda n: None,
            parallel=PARALLEL_PARTS,
            cancel=threading.Event(),
            session=session,
        )
        completing = time.perf_counter()
        api.complete_upload(job["upload"]["complete_url"], parts)
        complete_seconds = time.perf_counter() - completing
    else:
        upload(api, job, path, content_type="video/mp4", session=session)
    seconds = time.perf_counter() - started
    head = bs.s3.head_object(Bucket=bs.settings.bucket, Key=bs.settings.upload_key(job["job_id"]))
    if head["ContentLength"] != path.stat().st_size:
        raise RuntimeError(f"{expected_method} stored {head['ContentLength']} bytes, sent {path.stat().st_size}")
    bs.s3.delete_object(Bucket=bs.settings.bucket, Key=bs.settings.upload_key(job["job_id"]))
    return seconds, complete_seconds


def measure(ctx) -> Iterator[Metric]:
    plan = ctx.plan
    bs = ctx.stack()
    bs.stop_dispatcher()
    size = plan.upload_bytes
    path = random_file(ctx.work / "upload.bin", size)
    data = path.read_bytes()
    settings = bs.settings
    post_settings = dataclasses.replace(settings, multipart_threshold_bytes=max(size, settings.max_upload_bytes))
    multipart_settings = dataclasses.replace(
        settings, multipart_threshold_bytes=min(size - 1, settings.part_size_bytes)
    )
    times: dict[str, list[float]] = {"raw": [], "post": [], "multipart": [], "multipart_complete": []}
    session = requests.Session()
    try:
        with presign_server(post_settings) as post_url, presign_server(multipart_settings) as multipart_url:
            for _ in range(plan.upload_repeats):  # interleaved, so drift hits all three alike
                times["raw"].append(raw_put_seconds(bs, data, session))
                times["post"].append(client_upload_seconds(bs, post_url, path, "POST", session)[0])
                total, complete = client_upload_seconds(bs, multipart_url, path, "MULTIPART", session)
                times["multipart"].append(total)
                times["multipart_complete"].append(complete)
    finally:
        bs.purge_queue()
        path.unlink(missing_ok=True)
    best = {k: min(v) for k, v in times.items()}
    mb = size / 1e6
    ctx.series["upload"] = {"bytes": size, "seconds": times, "part_size": settings.part_size_bytes}
    parts = -(-size // settings.part_size_bytes)
    raw_note = f"raw PUT {best['raw']:.2f} s ({mb / best['raw']:.0f} MB/s)"
    yield POST.of(
        best["raw"] / best["post"],
        f"{mb:.0f} MB: POST {best['post']:.2f} s, {raw_note}; best of {plan.upload_repeats}",
    )
    yield MULTIPART.of(
        best["raw"] / best["multipart"],
        (
            f"{mb:.0f} MB in {parts} parts of {settings.part_size_bytes / 2**20:.0f} MiB, "
            f"{PARALLEL_PARTS} at a time: {best['multipart']:.2f} s (of which complete "
            f"{times['multipart_complete'][times['multipart'].index(best['multipart'])]:.2f} s), {raw_note}"
        ),
    )

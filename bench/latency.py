"""5. Event latency and 6. result latency, through the native stack.

Event latency: a short clip is uploaded through the API (pre-signed POST); from the moment
the upload request returns until the job reads ``processing`` (S3 notification → SQS → the
dispatcher's long poll → invoke → the runtime claims the job). The job table is read every
few milliseconds, so the figure includes up to one read interval. One job at a time, on one
warm runtime.

Result latency: a job is written ``succeeded`` with the job store directly while a client
waits on ``GET /v1/jobs/{id}?wait=25`` with the ETag it last saw; from the start of the write
until the client has the answer. Compared with a page that polls every 5 seconds, whose
latency for a result arriving at a uniformly random moment is 2.5 s on average (uniform on
0–5 s: p50 2.5 s, p95 4.75 s) plus one request.
"""

from __future__ import annotations

import random
import statistics
import threading
import time
from collections.abc import Iterator

from bench import videos
from bench.report import Metric, Spec, at_most
from divescore.jobs import Status, new_job_id

TABLE_READ_INTERVAL_S = 0.005
POLL_PERIOD_S = 5.0  # the period of the polling page compared with

EVENT_P50 = Spec("event_latency_p50", "event latency p50: upload complete → processing", "ms", at_most(300))
EVENT_P95 = Spec("event_latency_p95", "event latency p95", "ms")
EVENT_SPECS = (EVENT_P50, EVENT_P95)
RESULT_P50 = Spec(
    "result_latency_p50", "result latency p50: succeeded written → waiting client sees it", "ms", at_most(200)
)
RESULT_P95 = Spec("result_latency_p95", "result latency p95", "ms")
RESULT_POLL = Spec("result_latency_5s_poll_p50", "result latency p50 with the original 5 s poll", "ms")
RESULT_SPECS = (RESULT_P50, RESULT_P95, RESULT_POLL)


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def uniform_poll_latency(period_s: float, q: float) -> float:
    """The q-th percentile of the wait for the next poll when a result lands at a uniformly
    random moment of the period."""
    return period_s * q / 100


# -- 5. event latency -----------------------------------------------------------------------


def time_to_processing(bs, job_id: str, since: float, timeout: float = 60) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = bs.store.get(job_id)
        if job and job["status"] != Status.AWAITING_UPLOAD and job["status"] != Status.QUEUED:
            seen = time.monotonic()
            if job["status"] == Status.FAILED and job.get("attempts", 0) == 0:
                raise RuntimeError(f"job {job_id} failed before processing: {job.get('error')}")
            return seen - since
        time.sleep(TABLE_READ_INTERVAL_S)
    raise TimeoutError(f"job {job_id} did not start processing within {timeout:.0f} s")


def measure_event_latency(ctx) -> Iterator[Metric]:
    plan = ctx.plan
    clip = ctx.video(videos.short_clip(0.64))  # 16 frames: the cheapest real job
    bs = ctx.stack()
    bs.purge_queue()
    bs.start_dispatcher(bs.invoke_urls[:1])
    latencies = []
    for _ in range(plan.event_jobs):
        job_id, uploaded = bs.submit(clip)
        latencies.append(time_to_processing(bs, job_id, uploaded) * 1000)
        job = bs.wait_final(job_id, timeout=300)
        if job["status"] != Status.SUCCEEDED:
            raise RuntimeError(f"job {job_id} ended {job['status']}: {job.get('error')}")
    ctx.series["event_latency_ms"] = latencies
    note = (
        f"{len(latencies)} jobs, one at a time, 1 warm runtime; table read every "
        f"{TABLE_READ_INTERVAL_S * 1000:.0f} ms; min {min(latencies):.0f} ms"
    )
    yield EVENT_P50.of(percentile(latencies, 50), note)
    yield EVENT_P95.of(percentile(latencies, 95), f"max {max(latencies):.0f} ms")


# -- 6. result latency ----------------------------------------------------------------------


def one_result_trial(bs) -> tuple[float, float]:
    """Returns (ms from the write to the waiting client's answer, ms of a plain GET)."""
    store, settings = bs.store, bs.settings
    job_id = new_job_id()
    store.create(
        job_id=job_id,
        filename="bench.mp4",
        content_type="video/mp4",
        size=1,
        key=settings.upload_key(job_id),
        ttl_seconds=3600,
    )
    claim = store.claim(job_id, lease_seconds=600)["claim"]
    t = time.perf_counter()
    current = bs.api.get_job(job_id)
    plain_get_ms = (time.perf_counter() - t) * 1000
    answered: dict = {}

    def wait() -> None:
        poll = bs.api.get_job(job_id, wait=settings.max_wait_seconds, etag=current.etag)
        answered["at"] = time.perf_counter()
        answered["job"] = poll.job

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(random.uniform(0.3, 0.6))  # the request is being held by now, at a random phase of its reads
    written = time.perf_counter()
    store.succeed(job_id, claim, {"score": 0.0})
    waiter.join(settings.max_wait_seconds + 15)
    if not answered.get("job") or answered["job"]["status"] != Status.SUCCEEDED:
        raise RuntimeError(f"the waiting client did not see job {job_id} succeed: {answered.get('job')}")
    return (answered["at"] - written) * 1000, plain_get_ms


def measure_result_latency(ctx) -> Iterator[Metric]:
    bs = ctx.stack()
    trials = [one_result_trial(bs) for _ in range(ctx.plan.result_trials)]
    latencies = [t[0] for t in trials]
    get_ms = statistics.median(t[1] for t in trials)
    poll_p50 = uniform_poll_latency(POLL_PERIOD_S, 50) * 1000 + get_ms
    ctx.series["result_latency_ms"] = latencies
    ctx.series["result_poll_ms"] = {
        "p50": poll_p50,
        "p95": uniform_poll_latency(POLL_PERIOD_S, 95) * 1000 + get_ms,
    }
    interval = bs.settings.poll_interval_ms
    yield RESULT_P50.of(
        percentile(latencies, 50),
        (
            f"{len(latencies)} trials, ?wait={bs.settings.max_wait_seconds} with If-None-Match; "
            f"the service re-reads the job every {interval} ms"
        ),
    )
    yield RESULT_P95.of(percentile(latencies, 95), f"max {max(latencies):.0f} ms")
    yield RESULT_POLL.of(
        poll_p50,
        f"computed: uniform arrival in a 5 s period (2.5 s) + one GET ({get_ms:.0f} ms); "
        f"p95 {ctx.series['result_poll_ms']['p95']:.0f} ms",
    )

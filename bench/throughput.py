"""8. Throughput: jobs per minute with 1, 2 and 4 runtimes for queued short clips.

Each configuration gets fresh runtimes (the real RIE and ``awslambdaric``) with PyTorch's
thread count set as the native stack sets it (``OMP_NUM_THREADS`` = cores ÷ runtimes, taken
from :func:`devstack.run.function_env`), plus one configuration with two runtimes each
left at torch's default of every core, to show why that setting exists. The clips are
uploaded through the API while no dispatcher runs (so they wait in the queue); then the
dispatcher starts on the runtimes (warming them up first) and the clock runs from its
"ready" to the last job's ``succeeded`` write. Each job's own timings (model time, total)
show where scaling stops.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
from collections.abc import Iterator

from bench import videos
from bench.report import Metric, Spec
from bench.stack import parse_time
from devstack.run import function_env
from divescore.jobs import Status

RUNTIME_COUNTS = (1, 2, 4)
RATE = {
    n: Spec(f"throughput_{n}_runtimes", f"throughput, {n} runtime{'s' if n > 1 else ''}", "jobs/min")
    for n in RUNTIME_COUNTS
}
OVERSUBSCRIBED_RUNTIMES = 2
OVERSUBSCRIBED = Spec("throughput_2_runtimes_all_cores", "throughput, 2 runtimes, torch on every core each", "jobs/min")
SCALING = Spec("throughput_best_vs_1", "throughput: best / 1 runtime", "ratio")
SPECS = (*RATE.values(), OVERSUBSCRIBED, SCALING)


def stack_threads(settings, runtimes: int) -> str:
    """The torch thread count the native stack gives each of ``runtimes`` runtimes."""
    return function_env(dataclasses.replace(settings, runtimes=runtimes), {})["OMP_NUM_THREADS"]


def run_batch(bs, clip, jobs: int, invoke_urls: list[str]) -> dict:
    bs.stop_dispatcher()
    bs.purge_queue()
    job_ids = [bs.submit(clip)[0] for _ in range(jobs)]
    ready = bs.start_dispatcher(invoke_urls)
    finished = [bs.wait_final(job_id, timeout=900, interval=0.5) for job_id in job_ids]
    bs.stop_dispatcher()
    failed = [j for j in finished if j["status"] != Status.SUCCEEDED]
    if failed:
        raise RuntimeError(
            f"{len(failed)} of {jobs} jobs failed on {len(invoke_urls)} runtime(s): {failed[0].get('error')}"
        )
    seconds = max(parse_time(j["updated_at"]) for j in finished) - ready
    return {
        "runtimes": len(invoke_urls),
        "jobs": jobs,
        "seconds": seconds,
        "jobs_per_minute": jobs / seconds * 60,
        "mean_model_s": statistics.mean(j["timings"]["inference_s"] for j in finished),
        "mean_job_s": statistics.mean(j["timings"]["total_s"] for j in finished),
    }


def measure_config(bs, clip, jobs: int, runtimes: int, threads: str) -> dict:
    started = bs.extra_runtimes(runtimes, {"OMP_NUM_THREADS": threads})
    try:
        batch = run_batch(bs, clip, jobs, [r.invoke_url for r in started])
    finally:
        bs.stop_runtimes(started)
    return {**batch, "threads": int(threads)}


def _note(batch: dict) -> str:
    return (
        f"{batch['threads']} torch thread(s) each; {batch['jobs']} jobs in {batch['seconds']:.1f} s; "
        f"per job: model {batch['mean_model_s']:.2f} s, total {batch['mean_job_s']:.2f} s"
    )


def measure(ctx) -> Iterator[Metric]:
    plan = ctx.plan
    clip = ctx.video(videos.short_clip(plan.throughput_clip_seconds))
    bs = ctx.stack()
    batches = []
    ctx.series["throughput"] = batches
    for n in plan.throughput_runtimes:
        batch = measure_config(bs, clip, plan.throughput_jobs, n, stack_threads(bs.settings, n))
        batches.append(batch)
        yield RATE[n].of(batch["jobs_per_minute"], _note(batch))
    for n in RUNTIME_COUNTS:
        if n not in plan.throughput_runtimes:
            yield RATE[n].skipped("not run in the quick mode")

    cores = len(os.sched_getaffinity(0))
    oversubscribed = measure_config(bs, clip, plan.throughput_jobs, OVERSUBSCRIBED_RUNTIMES, str(cores))
    ctx.series["throughput_oversubscribed"] = oversubscribed
    yield OVERSUBSCRIBED.of(oversubscribed["jobs_per_minute"], _note(oversubscribed))

    best = max(batches, key=lambda b: b["jobs_per_minute"])
    yield SCALING.of(
        best["jobs_per_minute"] / batches[0]["jobs_per_minute"],
        f"best: {best['runtimes']} runtime(s) on {cores} cores; model s/job: "
        + ", ".join(f"{b['mean_model_s']:.2f} ({b['runtimes']} × {b['threads']} thr)" for b in batches),
    )

"""8. Throughput: jobs per minute with 1, 2 and 4 runtimes for queued short clips.

For each runtime count, the clips are uploaded through the API while no dispatcher runs
(so they wait in the queue), then the dispatcher starts on that many runtimes (warming them
up first) and the clock runs from its "ready" to the last job's ``succeeded`` write. Each job's
own timings (model time, total) show where scaling stops: every runtime's PyTorch uses as
many threads as there are cores, so runtimes beyond the core count share the same cores.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterator

from bench import videos
from bench.report import Metric, Spec
from bench.stack import parse_time
from divescore.jobs import Status

RUNTIME_COUNTS = (1, 2, 4)
RATE = {
    n: Spec(f"throughput_{n}_runtimes", f"throughput, {n} runtime{'s' if n > 1 else ''}", "jobs/min")
    for n in RUNTIME_COUNTS
}
ONE_THREAD_RUNTIMES = 2
ONE_THREAD = Spec("throughput_2_runtimes_1_thread", "throughput, 2 runtimes with 1 torch thread each", "jobs/min")
SCALING = Spec("throughput_best_vs_1", "throughput: best / 1 runtime", "ratio")
SPECS = (*RATE.values(), ONE_THREAD, SCALING)


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


def _note(batch: dict) -> str:
    return (
        f"{batch['jobs']} jobs in {batch['seconds']:.1f} s; per job: model {batch['mean_model_s']:.2f} s, "
        f"total {batch['mean_job_s']:.2f} s"
    )


def measure(ctx) -> Iterator[Metric]:
    plan = ctx.plan
    clip = ctx.video(videos.short_clip(plan.throughput_clip_seconds))
    bs = ctx.stack()
    batches = []
    ctx.series["throughput"] = batches
    for n in plan.throughput_runtimes:
        batch = run_batch(bs, clip, plan.throughput_jobs, bs.invoke_urls[:n])
        batches.append(batch)
        yield RATE[n].of(batch["jobs_per_minute"], _note(batch))
    for n in RUNTIME_COUNTS:
        if n not in plan.throughput_runtimes:
            yield RATE[n].skipped("not run in the quick mode")

    # The same, with each runtime's torch limited to one thread (OMP_NUM_THREADS=1), so that
    # two runtimes do not each spread over both cores.
    runtimes = bs.extra_runtimes(ONE_THREAD_RUNTIMES, {"OMP_NUM_THREADS": "1"})
    try:
        one_thread = run_batch(bs, clip, plan.throughput_jobs, [r.invoke_url for r in runtimes])
    finally:
        bs.stop_runtimes(runtimes)
    ctx.series["throughput_one_thread"] = one_thread
    yield ONE_THREAD.of(one_thread["jobs_per_minute"], _note(one_thread))

    best = max(batches, key=lambda b: b["jobs_per_minute"])
    yield SCALING.of(
        best["jobs_per_minute"] / batches[0]["jobs_per_minute"],
        (
            f"best: {best['runtimes']} runtime(s) on {ctx.machine['usable_cores']} cores, torch "
            f"{ctx.machine['torch_threads']} threads per runtime; model s/job: "
            + ", ".join(f"{b['mean_model_s']:.2f} ({b['runtimes']} rt)" for b in batches)
        ),
    )

"""The function image as built, and what 1,000 videos cost on Lambda.

The image is built as ``make up`` builds it (``devstack.engine``) and run under its own
Runtime Interface Emulator, on the host's network so it reaches this section's native stack
(the emulator, IAM enforced, with the function's key); jobs are put in the stack's table and
bucket and the container is invoked directly with their S3 events, as the function section
invokes a native runtime (:class:`bench.function.FunctionJobs`).

1. As compose runs it (no CPU limit): container start → the answer to a no-op event, then the
   first job on the cold-start clip, beside the native runtime's figures of the same run.
2. With the CPU share Lambda gives each memory setting (``--cpus`` = memory ÷ 1,769 MB, at
   most the machine's cores; ``--memory`` = the setting): a warm job's duration, and its cost
   at Lambda's prices (:mod:`bench.prices`) plus the requests one job makes.
3. The requests: one job through the native stack (API, upload, dispatcher, runtime, a client
   following it), counted from the emulator's request log (:mod:`bench.job_requests`).

arm64's price is lower, but its durations cannot be measured on an x86_64 machine: that row
says so instead of a figure.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Iterator

from bench import job_requests, machine, prices, videos
from bench.function import FunctionJobs, template_memory_mb
from bench.report import Metric, Spec
from devstack import engine
from devstack.harness import OUTPUT, free_port, wait_until
from devstack.iam.policies import PRINCIPALS
from devstack.run import HANDLER

RIE = "/usr/local/bin/aws-lambda-rie"  # where the Lambda base images (and the stand-in) keep it
HOST_ONLY_SETTINGS = ("DIVESCORE_CACHE_DIR", "DIVESCORE_CREDENTIALS_DIR")  # the image has its own

IMAGE_SIZE = Spec("image_size", "function image as built: size", "MB", headline=True)
IMAGE_READY = Spec("image_ready", "function image: container start → ready for the first event", "s", headline=True)
IMAGE_FIRST_JOB = Spec("image_first_job", "function image: first job (the cold start's clip)", "s", headline=True)
BEST_MEMORY = Spec("lambda_memory_cost_minimising", "Lambda memory setting that minimises a job's cost", "MB",
                   headline=True)
BEST_DURATION = Spec("lambda_job_at_best_memory", "warm job at that setting's CPU share", "s")
COST_X86 = Spec("cost_1000_videos_x86", "1,000 videos on Lambda x86_64: function + S3, SQS, DynamoDB requests",
                "USD", headline=True)
COST_ARM = Spec("cost_1000_videos_arm64", "1,000 videos on Lambda arm64", "USD", headline=True)
REQUESTS = {service: Spec(f"requests_per_job_{service}", f"{name} requests per job", "requests")
            for service, name in (("s3", "S3"), ("sqs", "SQS"), ("dynamodb", "DynamoDB"))}
SPECS = (IMAGE_SIZE, IMAGE_READY, IMAGE_FIRST_JOB, BEST_MEMORY, BEST_DURATION, COST_X86, COST_ARM,
         *REQUESTS.values())


class FunctionContainer(FunctionJobs):
    """The function image under its emulator, on the host's network, with a CPU and memory limit."""

    def __init__(self, bs, memory_mb: int, cpus: float | None, limit_memory: bool, timeout_seconds: int = 900):
        port = free_port()
        self.name = f"divescore-bench-{port}"
        env = {k: v for k, v in bs.env.items() if k not in HOST_ONLY_SETTINGS}
        env.update(AWS_LAMBDA_FUNCTION_NAME="divescore-inference", AWS_LAMBDA_FUNCTION_MEMORY_SIZE=str(memory_mb),
                   AWS_LAMBDA_FUNCTION_TIMEOUT=str(timeout_seconds))
        limits = [*(["--cpus", f"{cpus:.3f}"] if cpus else []),
                  *(["--memory", f"{memory_mb}m", "--memory-swap", f"{memory_mb}m"] if limit_memory else [])]
        command = ["docker", "run", "--detach", "--rm", "--name", self.name, "--network", "host", *limits,
                   *[f"--env={name}" for name in env],  # values from this process's environment, not the command line
                   "--entrypoint", RIE, engine.FUNCTION_IMAGE,
                   "--runtime-interface-emulator-address", f"127.0.0.1:{port}",
                   "--runtime-api-address", f"127.0.0.1:{free_port()}", "python3", "-m", "awslambdaric", HANDLER]
        self.started = time.monotonic()
        started = subprocess.run(command, env={**os.environ, **env}, check=True, capture_output=True, text=True,
                                 timeout=120)
        machine.adopt_container(started.stdout)
        self.port = port
        super().__init__(bs, f"http://127.0.0.1:{port}/2015-03-31/functions/function/invocations",
                         timeout_seconds + 30)

    def ready_seconds(self) -> float:
        """Container start → the answer to a no-op event (the runtime starts on the first one)."""
        wait_until(self._listening, 60, what="the container's runtime interface emulator")
        self.invoke({"divescore": "warmup"})
        return time.monotonic() - self.started

    def _listening(self) -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", self.port)) == 0

    def stop(self) -> None:
        subprocess.run(["docker", "stop", "--time", "2", self.name], capture_output=True, timeout=60, check=False)


def image_megabytes() -> float:
    size = subprocess.run(["docker", "image", "inspect", "--format", "{{.Size}}", engine.FUNCTION_IMAGE],
                          capture_output=True, text=True, check=True, timeout=60).stdout
    return int(size) / 1e6


def count_job_requests(bs, clip) -> tuple[Counter, int]:
    """One job through the native stack, as a user's: (principal, service, action) → requests
    the emulator saw meanwhile, and the size of the job's final record (DynamoDB bills by it)."""
    bs.purge_queue()  # the notifications of the uploads the containers scored, or the dispatcher would take them
    bs.start_dispatcher(bs.invoke_urls)
    try:
        principals = {bs.stack.key(name)["AccessKeyId"]: name for name in PRINCIPALS}
        mark = len(bs.stack.lines)
        job_id, _ = bs.submit(clip)
        final = bs.api.follow(job_id, timeout=600)
        if final["status"] != "succeeded":
            raise RuntimeError(f"the counted job ended {final['status']}: {final.get('error')}")
        time.sleep(1)  # the last lines of the emulator's log
        counted = job_requests.count(bs.stack.lines[mark:], principals)
    finally:
        bs.stop_dispatcher()
    item_bytes = len(json.dumps(bs.store.get(job_id), default=str).encode())
    return counted, item_bytes


def measure(ctx) -> Iterator[Metric]:
    from bench.stack import BenchStack

    plan = ctx.plan
    try:
        daemon = engine.start_engine(OUTPUT / "bench-dockerd.log")
    except (RuntimeError, TimeoutError, OSError) as err:
        for spec in SPECS:
            yield spec.skipped(f"no container engine: {err}")
        return
    bs = None
    try:
        started = time.monotonic()
        engine.build_function_image()
        built_s = time.monotonic() - started
        figures: dict = {"build_s": built_s}
        ctx.series["image"] = figures
        size = figures["image_mb"] = image_megabytes()
        yield IMAGE_SIZE.of(size, f"{engine.FUNCTION_IMAGE} (docker image inspect); `make up`'s build took "
                                  f"{built_s:.0f} s here (cached layers reused)")
        native = ctx.series.get("function", {})
        clip = ctx.video(videos.clip_720p(plan.clip_seconds))
        ctx.log("  starting a native stack that logs each AWS request")
        bs = BenchStack(runtimes=1, verbose=True)
        template_mb = template_memory_mb()

        container = FunctionContainer(bs, template_mb, cpus=None, limit_memory=False)
        try:
            ready = figures["ready_s"] = container.ready_seconds()
            first = figures["first_job_s"] = container.score(clip)[0]
        finally:
            container.stop()
        beside = (f"native runtime in this run: ready {native['ready_s']:.2f} s, "
                  f"first job {native['first_job_s']:.2f} s" if "ready_s" in native
                  else "the function section did not run: no native figure beside it")
        yield IMAGE_READY.of(ready, f"docker run → RIE answers a no-op event, no CPU limit; {beside}")
        yield IMAGE_FIRST_JOB.of(first, f"{clip.name}, right after ready; {beside}")

        durations = figures["warm_job_s"] = {}
        cores = os.cpu_count() or 1
        for memory_mb in plan.image_memory_mb:
            cpus = min(prices.cpu_share(memory_mb), cores)
            container = FunctionContainer(bs, memory_mb, cpus=cpus, limit_memory=True)
            try:
                container.ready_seconds()
                container.score(clip)  # the first job pays for the first forward
                durations[memory_mb] = min(container.score(clip)[0] for _ in range(plan.image_warm_jobs))
            finally:
                container.stop()
            ctx.log(f"  {memory_mb} MB ({cpus:.2f} CPUs): warm job {durations[memory_mb]:.2f} s")

        counted, item_bytes = count_job_requests(bs, clip)
        requests = job_requests.per_job(counted)
        figures.update(requests_seen={" ".join(k): n for k, n in sorted(counted.items())},
                       requests_per_job={" ".join(k): n for k, n in sorted(requests.items())}, item_bytes=item_bytes)
        request_cost = prices.requests_cost(requests, item_bytes)
        for service, spec in REQUESTS.items():
            actions = ", ".join(f"{a} {n}" for (s, a), n in sorted(requests.items()) if s == service)
            yield spec.of(sum(n for (s, _), n in requests.items() if s == service),
                          f"{actions}; ${request_cost[service] * 1000:.4f} per 1,000 jobs")

        floor = ctx.facts.get("lambda_memory_mb")
        fits = [m for m in durations if floor is None or m >= floor] or list(durations)
        costs = {m: prices.lambda_cost(durations[m], m) for m in durations}
        figures["function_cost_x86"] = costs
        best = min(fits, key=costs.get)
        swept = "; ".join(f"{m} MB ({min(prices.cpu_share(m), cores):.2f} CPU) {durations[m]:.2f} s "
                          f"${costs[m] * 1000:.3f}" for m in durations)
        why_floor = (f"settings under {floor} MB (the function's peak RSS on the large file × 1.25) left out"
                     if floor else "no memory floor: the function section did not run")
        follows = "follows" if template_mb == best else "does not follow"
        yield BEST_MEMORY.of(best, f"per 1,000 warm jobs x86: {swept}; {why_floor}; template.yaml FunctionMemoryMB "
                                   f"default {template_mb} {follows} from it")
        yield BEST_DURATION.of(durations[best], f"{clip.name}, --cpus {min(prices.cpu_share(best), cores):.2f}, "
                                                f"--memory {best}m, best of {plan.image_warm_jobs} warm jobs")
        total = (costs[best] + sum(request_cost.values())) * 1000
        yield COST_X86.of(total, f"at {best} MB: Lambda ${costs[best] * 1000:.3f} "
                                 f"+ S3 ${request_cost['s3'] * 1000:.4f} "
                                 f"+ SQS ${request_cost['sqs'] * 1000:.4f} + DynamoDB "
                                 f"${request_cost['dynamodb'] * 1000:.4f}; us-east-1 prices of {prices.PRICES_CHECKED} "
                                 "(bench/prices.py); warm jobs, no free tier")
        yield COST_ARM.skipped(
            f"not measured: arm64 durations cannot be measured on this {platform.machine()} machine "
            f"(arm64's GB-second costs {prices.LAMBDA_GB_SECOND['arm64'] / prices.LAMBDA_GB_SECOND['x86_64']:.0%} "
            "of x86_64's; its duration on Graviton is unknown)")
    finally:
        if bs is not None:
            bs.stop()
        engine.stop_engine(daemon)

"""Runs the sections in order, collects their metrics, writes the results.

Each section is a generator of metrics over a shared :class:`Context`; a section that raises
keeps what it already reported, and every metric it promised (its ``SPECS``) but did not
report is recorded as not measured, with the error. The run then exits 1: the benchmark
fails only when it could not measure, never because of a time.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from bench import machine, report
from bench.plan import Plan
from bench.report import Metric, Spec, State


class Context:
    """What the sections share: the plan, a scratch folder, the videos, the running stack."""

    def __init__(self, plan: Plan, described: dict, log: Callable[[str], None] = print):
        self.plan = plan
        self.machine = described
        self.log = log
        self.series: dict = {}  # figures for the plot and the JSON, by section
        self.facts: dict = {}  # figures one section measures and a later one uses
        self.work = Path(tempfile.mkdtemp(prefix="divescore-bench-"))
        self._stack = None

    def video(self, spec) -> Path:
        from bench import videos

        path = videos.CACHE / spec.filename()
        if not path.is_file():
            self.log(f"  generating {path.name} (kept in {videos.CACHE} for the next run)")
        return videos.ensure(spec)

    def stack(self):
        """The native stack, started on first use with as many runtimes as any section needs."""
        if self._stack is None:
            from bench.stack import BenchStack

            # One runtime, as `make run` starts it; the throughput section starts its own.
            self.log("  starting the native stack (1 runtime, dispatcher on demand)")
            self._stack = BenchStack(runtimes=1)
        return self._stack

    def close(self) -> None:
        if self._stack is not None:
            self._stack.stop()
            self._stack = None
        shutil.rmtree(self.work, ignore_errors=True)


@dataclasses.dataclass(frozen=True)
class Section:
    name: str
    specs: tuple[Spec, ...]
    measure: Callable[[Context], Iterator[Metric]]


def sections() -> list[Section]:
    from bench import footage, function, image, latency, model_speed, throughput, uploads, window

    return [
        Section("model", model_speed.SPECS, model_speed.measure),
        Section("function", function.SPECS, function.measure),
        Section("window", window.SPECS, window.measure),
        Section("footage", footage.SPECS, footage.measure),
        Section("upload", uploads.SPECS, uploads.measure),
        Section("event-latency", latency.EVENT_SPECS, latency.measure_event_latency),
        Section("result-latency", latency.RESULT_SPECS, latency.measure_result_latency),
        Section("throughput", throughput.SPECS, throughput.measure),
        Section("image", image.SPECS, image.measure),
    ]


# Rows measured while other processes kept at least this many cores busy are flagged.
BUSY_CORES = 0.25


def run_section(section: Section, ctx: Context) -> list[Metric]:
    metrics: list[Metric] = []
    started = time.monotonic()
    load_before = [round(x, 2) for x in os.getloadavg()]
    others = machine.OtherLoad().start()
    ctx.log(f"[{section.name}]")
    try:
        for metric in section.measure(ctx):
            metrics.append(metric)
            ctx.log(f"  {metric.name}: {report.format_value(metric.value)} {metric.unit}  {metric.note}")
    except Exception as err:  # reported as "not measured"; the run goes on
        why = f"{err.__class__.__name__}: {err}".splitlines()[0][:300]
        ctx.log(f"  could not measure: {why}\n" + traceback.format_exc())
        done = {m.key for m in metrics}
        metrics += [spec.failed(why) for spec in section.specs if spec.key not in done]
    busy = ctx.series.setdefault("other_load_cores", {})[section.name] = round(others.cores(), 2)
    load_after = [round(x, 2) for x in os.getloadavg()]
    ctx.series.setdefault("load_average", {})[section.name] = {"before": load_before, "after": load_after}
    ctx.log(f"  ({time.monotonic() - started:.0f} s; other processes kept {busy:.1f} cores busy meanwhile; "
            f"load average {load_before[0]:g} before, {load_after[0]:g} after)")
    if busy >= BUSY_CORES:
        metrics = [dataclasses.replace(m, busy=True) for m in metrics]
    return metrics


def run(plan: Plan, out: Path, only: list[str] | None = None) -> int:
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    started = time.monotonic()
    described = machine.describe()
    print(
        f"divescore benchmark ({'quick' if plan.quick else 'full'}) on {machine.one_line(described)}",
        flush=True,
    )
    chosen = [s for s in sections() if not only or s.name in only]
    ctx = Context(plan, described, log=lambda line: print(line, flush=True))
    metrics: list[Metric] = []
    try:
        for section in chosen:
            metrics += run_section(section, ctx)
    finally:
        with contextlib.suppress(Exception):
            ctx.close()
    results = {
        "mode": "quick" if plan.quick else "full",
        "started_at": started_at,
        "duration_s": round(time.monotonic() - started, 1),
        "machine": described,
        "plan": dataclasses.asdict(plan),
        "series": ctx.series,
    }
    written = report.write(out, results, metrics)
    print()
    print(report.text_table(metrics))
    print()
    for kind, path in written.items():
        print(f"{kind}: {path}")
    failed = [m for m in metrics if m.state is State.FAILED]
    if failed:
        print(f"could not measure {len(failed)} metric(s): {', '.join(m.key for m in failed)}")
        return 1
    return 0

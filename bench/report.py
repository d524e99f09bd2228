"""Metric rows and the files they go to: a table on stdout, ``results.json``, ``results.md``
and ``results.png`` (drawn by :mod:`bench.plot`), and the README's copy of the rows that have
a target (``python -m bench.report`` writes it from ``bench/results/results.json``)."""

from __future__ import annotations

import dataclasses
import enum
import json
import math
from pathlib import Path

from bench.machine import one_line


class State(enum.StrEnum):
    MEASURED = "measured"
    SKIPPED = "skipped"  # not measured in this mode (e.g. 4 runtimes in the quick run)
    FAILED = "failed"  # could not be measured: the run exits non-zero


@dataclasses.dataclass(frozen=True)
class Target:
    """``value >= bound`` (``at_least``) or ``value <= bound``. A value above ``ceiling`` cannot
    be (e.g. a share of a peak over 1.0): the reference it was divided by is wrong, and the
    row says so instead of "met"."""

    bound: float
    at_least: bool
    ceiling: float | None = None

    def impossible(self, value: float) -> bool:
        return self.ceiling is not None and value > self.ceiling

    def met(self, value: float) -> bool:
        if self.impossible(value):
            return False
        return value >= self.bound if self.at_least else value <= self.bound

    def __str__(self) -> str:
        return f"{'≥' if self.at_least else '≤'} {self.bound:g}"


def at_least(bound: float, ceiling: float | None = None) -> Target:
    return Target(bound, True, ceiling)


def at_most(bound: float) -> Target:
    return Target(bound, False)


@dataclasses.dataclass(frozen=True)
class Metric:
    key: str  # stable identifier, e.g. "upload_post_vs_raw"
    name: str
    value: float | None
    unit: str
    target: Target | None = None  # None: supporting figure, no target
    note: str = ""
    state: State = State.MEASURED
    busy: bool = False  # measured while other processes kept the machine busy: not a clean figure
    headline: bool = False  # in the README's table although it has no target

    @property
    def met(self) -> bool | None:
        if self.target is None or self.value is None or self.state is not State.MEASURED:
            return None
        return self.target.met(self.value)

    @property
    def reference_wrong(self) -> bool:
        """Over the target's ceiling: what it was measured against is not the limit it claims."""
        return self.met is False and self.target.impossible(self.value)

    def as_dict(self) -> dict:
        return {
            "key": self.key,
            "name": self.name,
            "value": self.value,
            "unit": self.unit,
            "target": str(self.target) if self.target else None,
            "met": self.met,
            "reference_wrong": self.reference_wrong,
            "note": self.note,
            "state": self.state.value,
            "busy": self.busy,
            "headline": self.headline,
        }


@dataclasses.dataclass(frozen=True)
class Spec:
    """One metric a section promises to report; the runner reports it as not measured when
    the section stops before it."""

    key: str
    name: str
    unit: str
    target: Target | None = None
    headline: bool = False

    def of(self, value: float, note: str = "") -> Metric:
        return Metric(self.key, self.name, float(value), self.unit, self.target, note, headline=self.headline)

    def skipped(self, why: str) -> Metric:
        return Metric(self.key, self.name, None, self.unit, self.target, why, State.SKIPPED, headline=self.headline)

    def failed(self, why: str) -> Metric:
        return Metric(self.key, self.name, None, self.unit, self.target, why, State.FAILED, headline=self.headline)


# -- formatting ------------------------------------------------------------------------


def format_value(value: float | None) -> str:
    if value is None:
        return "—"
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def met_text(metric: Metric) -> str:
    return met_text_of(metric.as_dict())


def met_text_of(row: dict) -> str:
    """The met column of a metric as ``results.json`` holds it (:meth:`Metric.as_dict`)."""
    if row["state"] == State.FAILED:
        return "not measured"
    if row["state"] == State.SKIPPED:
        return "n/a"
    text = "reference wrong" if row["reference_wrong"] else {True: "yes", False: "no", None: "–"}[row["met"]]
    return f"{text} (busy)" if row["busy"] else text


COLUMNS = ("metric", "value", "unit", "target", "met", "note")


def rows(metrics: list[Metric]) -> list[tuple[str, ...]]:
    return [
        (m.name, format_value(m.value), m.unit, str(m.target) if m.target else "", met_text(m), m.note) for m in metrics
    ]


def text_table(metrics: list[Metric], note_width: int = 70) -> str:
    table = [COLUMNS, *[(*r[:5], _shorten(r[5], note_width)) for r in rows(metrics)]]
    widths = [max(len(r[i]) for r in table) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def markdown(results: dict, metrics: list[Metric], plot_name: str | None) -> str:
    machine = results["machine"]
    lines = [
        f"# divescore benchmark ({results['mode']} run)",
        "",
        f"Measured {results['started_at']} in {results['duration_s']:.0f} s on: {one_line(machine)}.",
        (
            f"Load average at start: {', '.join(map(str, machine['load_average_at_start']))}. "
            "Ratios are taken within this run; absolute times are for orientation only."
        ),
        "",
        "Cores kept busy by other processes during each section (of "
        f"{machine['usable_cores']}; the machine is shared): "
        + ", ".join(f"{name} {cores:.1f}" for name, cores in results["series"].get("other_load_cores", {}).items())
        + ". Load average (1 min) before → after each section: "
        + ", ".join(f"{name} {load['before'][0]:g} → {load['after'][0]:g}"
                    for name, load in results["series"].get("load_average", {}).items())
        + ". Rows marked (busy) were measured while other processes kept at least a quarter of a core busy.",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "| " + " | ".join("---" for _ in COLUMNS) + " |",
    ]
    for r in rows(metrics):
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in r) + " |")
    if plot_name:
        lines += ["", f"![benchmark plot]({plot_name})"]
    return "\n".join(lines) + "\n"


# -- the README's copy ------------------------------------------------------------------

RESULTS = Path(__file__).resolve().parent / "results"
README = Path(__file__).resolve().parent.parent / "README.md"
README_START, README_END = "<!-- bench:start -->", "<!-- bench:end -->"


def readme_section(results: dict) -> str:
    """When and on what a run measured, and its rows that have a target or are headlines
    (``results`` as ``results.json`` holds it); every row, with its note, is in ``results.md``."""
    when = results["started_at"][:16].replace("T", " ")
    lines = [
        f"{results['mode'].capitalize()} run of {when} UTC on {one_line(results['machine'])}; "
        "every row, with the figures behind each ratio: "
        "[bench/results/results.md](bench/results/results.md).",
        "",
        "| metric | value | unit | target | met |",
        "| --- | --- | --- | --- | --- |",
    ]
    for m in results["metrics"]:
        if m["target"] or m.get("headline"):
            cells = (m["name"], format_value(m["value"]), m["unit"], m["target"] or "", met_text_of(m))
            lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines)


def write_readme(results: dict, readme: Path = README) -> bool:
    """Put :func:`readme_section` between the README's markers; False when it has none."""
    text = readme.read_text()
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        return False
    head = text[: start + len(README_START)]
    readme.write_text(f"{head}\n{readme_section(results)}\n{text[end:]}")
    return True


def write(out: Path, results: dict, metrics: list[Metric]) -> dict[str, Path]:
    """results.json, results.md and results.png in ``out``; returns what was written."""
    from bench import plot

    out.mkdir(parents=True, exist_ok=True)
    written = {}
    results = {**results, "metrics": [m.as_dict() for m in metrics]}
    json_path = out / "results.json"
    json_path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    written["json"] = json_path
    png_path = out / "results.png"
    plot.draw(results, png_path)
    written["png"] = png_path
    md_path = out / "results.md"
    md_path.write_text(markdown(results, metrics, png_path.name))
    written["md"] = md_path
    return written


if __name__ == "__main__":
    # The README's table from the kept full run, without measuring anything.
    import sys

    if not write_readme(json.loads((RESULTS / "results.json").read_text())):
        sys.exit(f"{README.name}: no {README_START} ... {README_END} markers")

"""`make bench QUICK=1`: the benchmark harness runs end to end and reports every metric.

A smoke test of the harness, not of speed: nothing here looks at a measured time.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench import footage, image, runner
from bench.machine import FLAGS_OF_INTEREST
from tests.support.helpers import ROOT

pytestmark = [pytest.mark.stack, pytest.mark.timeout(900)]

# The quick run leaves out 4 runtimes; the real footage is skipped where its clips are absent
# (bench/footage/README.md); the image rows where no container engine can run; arm64's cost on
# every x86_64 machine. Nothing is skipped because of the CPU.
MAY_BE_SKIPPED = {"throughput_4_runtimes", *(spec.key for spec in footage.SPECS), *(spec.key for spec in image.SPECS)}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(out)],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=840,
    )
    return done, out


def test_quick_run_exits_zero(quick_run):
    done, _ = quick_run
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]


def test_every_metric_is_in_the_json(quick_run):
    _, out = quick_run
    results = json.loads((out / "results.json").read_text())
    promised = [spec.key for section in runner.sections() for spec in section.specs]
    reported = {m["key"]: m for m in results["metrics"]}
    assert sorted(reported) == sorted(promised)
    for key, metric in reported.items():
        if key in MAY_BE_SKIPPED and metric["state"] == "skipped":
            assert metric["value"] is None and metric["note"]
            continue
        assert metric["state"] == "measured", metric
        assert isinstance(metric["value"], float) and metric["value"] >= 0, metric
        if metric["target"]:
            assert metric["met"] in (True, False), metric
    assert results["mode"] == "quick"
    assert results["machine"]["cpu"] and results["machine"]["cores"] >= 1 and results["machine"]["torch"]
    # The flags are this CPU's, read here on our own: each says whether /proc/cpuinfo lists it.
    listed = set(re.search(r"^flags\s*:(.*)$", Path("/proc/cpuinfo").read_text(), re.MULTILINE).group(1).split())
    assert results["machine"]["cpu_flags"] == {flag: flag in listed for flag in FLAGS_OF_INTEREST}
    assert results["machine"]["bf16"] == bool(listed & {"avx512_bf16", "amx_bf16"})


def test_the_table_names_every_metric(quick_run):
    done, out = quick_run
    results = json.loads((out / "results.json").read_text())
    table = (out / "results.md").read_text()
    for metric in results["metrics"]:
        assert metric["name"] in table
        assert metric["name"] in done.stdout  # the table printed to stdout
    assert "![benchmark plot](results.png)" in table


def test_the_plot_is_a_png(quick_run):
    _, out = quick_run
    data = (out / "results.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 10_000  # four panels, not an empty canvas


def test_the_benchmark_imports_nothing_from_the_tests():
    """`make bench` runs without the test suite's helpers (a maintainer may bench an install
    that has no tests/ folder): what both need lives in divescore/ or bench/."""
    importing = [f"{path.name}:{n}" for path in sorted((ROOT / "bench").glob("*.py"))
                 for n, line in enumerate(path.read_text().splitlines(), start=1)
                 if re.match(r"\s*(from tests\b|import tests\b)", line)]
    assert not importing, importing

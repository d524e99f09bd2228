"""``python -m bench [--quick] [--out DIR] [--only SECTION ...]`` (``make bench [QUICK=1]``)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bench.plan import FULL, QUICK
from bench.report import RESULTS, write_readme


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description="Measure the stack; see bench/__init__.py.")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a short smoke run (small files, few repeats): checks the harness, not the numbers",
    )
    parser.add_argument(
        "--out",
        type=Path,
        help=f"where results go (default: {RESULTS.relative_to(RESULTS.parent.parent)}, "
        "or its quick/ folder for --quick)",
    )
    parser.add_argument(
        "--only",
        action="append",
        metavar="SECTION",
        help="run only this section (model, function, window, footage, upload, event-latency, result-latency, "
        "throughput, image); repeatable",
    )
    args = parser.parse_args(argv)
    from bench import runner

    known = {s.name for s in runner.sections()}
    unknown = set(args.only or []) - known
    if unknown:
        parser.error(f"unknown section(s) {', '.join(sorted(unknown))}; choose from {', '.join(sorted(known))}")
    out = args.out or (RESULTS / "quick" if args.quick else RESULTS)
    code = runner.run(QUICK if args.quick else FULL, out, args.only)
    if out == RESULTS and not args.only:  # a whole full run into bench/results/: the README shows it
        write_readme(json.loads((RESULTS / "results.json").read_text()))
    return code


if __name__ == "__main__":
    sys.exit(main())

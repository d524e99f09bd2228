"""Runs: ranges of consecutive frame indices, the unit frames are asked for and read in."""

from __future__ import annotations

from collections.abc import Iterable


def runs_of(indices: Iterable[int]) -> list[range]:
    """Sorted, distinct ``indices`` as the fewest runs of consecutive frames."""
    runs: list[range] = []
    for index in sorted(set(indices)):
        if runs and runs[-1].stop == index:
            runs[-1] = range(runs[-1].start, index + 1)
        else:
            runs.append(range(index, index + 1))
    return runs


def merged(runs: Iterable[range]) -> list[range]:
    """``runs`` (in any order, overlapping or not) as the fewest sorted runs, negative indices left out."""
    return runs_of(i for run in runs for i in run if i >= 0)

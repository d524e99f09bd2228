"""``divescore bootstrap``: create the stack's resources (see standins.bootstrap)."""

from __future__ import annotations


def add_arguments(parser) -> None:
    pass


def run(args) -> int:
    from standins.bootstrap import main

    return main()

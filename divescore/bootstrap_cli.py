"""``divescore bootstrap``: create the stack's resources (see divescore.bootstrap)."""

from __future__ import annotations


def add_arguments(parser) -> None:
    pass


def run(args) -> int:
    from divescore.bootstrap import main

    return main()

"""``divescore settings``: every setting with its variable, the value in effect here and where
it comes from (the environment or the default), and its meaning; ``--markdown``: the table of
defaults in docs/settings.md."""

from __future__ import annotations

import dataclasses
import os
import sys

from divescore.settings import SettingsError, describe, env_name, load


def add_arguments(parser) -> None:
    parser.add_argument("--markdown", action="store_true", help="print the table of defaults (docs/settings.md)")


def run(args) -> int:
    try:
        lines = _markdown() if args.markdown else _in_effect()
        sys.stdout.write("".join(line + "\n" for line in lines))
        sys.stdout.flush()
    except BrokenPipeError:  # `divescore settings | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except SettingsError as err:
        print(f"divescore settings: {err}", file=sys.stderr)
        return 2
    return 0


def _markdown() -> list[str]:
    lines = ["| variable | default | meaning |", "| --- | --- | --- |"]
    lines += [f"| `{name}` | `{default}` | {help_text} |" for name, default, help_text in describe()]
    return lines


def _in_effect() -> list[str]:
    settings = load()
    rows = []
    for field, (name, _, help_text) in zip(dataclasses.fields(settings), describe(), strict=True):
        value = getattr(settings, field.name)
        shown = ",".join(value) if isinstance(value, tuple) else str(value)
        source = "environment" if env_name(field.name) in os.environ else "default"
        rows.append((name, shown or '""', source, help_text))
    width = max(len(row[0]) for row in rows)
    value_width = min(30, max(len(row[1]) for row in rows))
    return [f"{name:<{width}}  {value:<{value_width}}  {source:<11}  {help_text}"
            for name, value, source, help_text in rows]

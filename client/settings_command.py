"""``divescore settings``: every setting with its variable, default and meaning."""

from __future__ import annotations

from divescore.settings import describe


def add_arguments(parser) -> None:
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table (docs/settings.md)")


def run(args) -> int:
    rows = describe()
    if args.markdown:
        print("| variable | default | meaning |\n| --- | --- | --- |")
        for name, default, help_text in rows:
            print(f"| `{name}` | `{default}` | {help_text} |")
    else:
        width = max(len(r[0]) for r in rows)
        for name, default, help_text in rows:
            print(f"{name:<{width}}  {default!s:<30}  {help_text}")
    return 0

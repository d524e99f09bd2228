"""``divescore``: the command-line entry point. Each subcommand lives in its own module that
provides ``add_arguments(parser)`` and ``run(args) -> int``; heavy ones are imported only
when called (``predict`` pulls in torch)."""

from __future__ import annotations

import argparse
import importlib
import sys

# subcommand → (module, one-line help)
COMMANDS = {
    "submit": ("client.submit", "upload videos to a deployment and print their scores"),
    "status": ("client.status", "show one job"),
    "rescore": ("client.rescore", "score a job's video again, over the window ending at --entry"),
    "cancel": ("client.cancel", "cancel a job"),
    "predict": ("client.predict", "score a local video file, no AWS involved"),
    "bootstrap": ("client.bootstrap_command", "create the stack's AWS resources (idempotent)"),
    "settings": ("client.settings_command", "list every setting, its variable and default"),
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="divescore", description="Score an Olympic dive from a video.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    # Only the chosen subcommand's module is imported.
    if argv and argv[0] in COMMANDS:
        module = importlib.import_module(COMMANDS[argv[0]][0])
        sub_parser = argparse.ArgumentParser(prog=f"divescore {argv[0]}", description=COMMANDS[argv[0]][1])
        module.add_arguments(sub_parser)
        return module.run(sub_parser.parse_args(argv[1:]))
    parser.parse_args(argv)
    return 2


if __name__ == "__main__":
    sys.exit(main())

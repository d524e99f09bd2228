"""The entry point of a long-running process of the stack (the sweep, the notifier): settings
from the environment, logging, and a stop event set by SIGTERM or SIGINT."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Callable
from typing import TextIO

from divescore.settings import Settings, load_or_exit


def run(name: str, work: Callable[[Settings, threading.Event], None]) -> int:
    """Run ``work(settings, stop)`` until it returns (it returns once ``stop`` is set)."""
    settings = load_or_exit()
    logging.basicConfig(level=settings.log_level, format="%(name)s: %(message)s")
    quiet_libraries(settings)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    announce_ready(name)
    work(settings, stop)
    return 0


def announce_ready(name: str, stream: TextIO | None = None) -> None:
    """``NAME ready`` on its own line, which the stack and the tests wait for.

    Written in one call: ``print`` writes the text and the newline apart, and with
    ``PYTHONUNBUFFERED`` (the native stack sets it) each is a write of its own, so a log line
    from another thread could land between them and the ready line would never be whole.
    """
    stream = stream or sys.stdout
    stream.write(f"{name} ready\n")
    stream.flush()


def quiet_libraries(settings: Settings) -> None:
    """botocore's notes (where it found credentials and endpoints) only when asked for."""
    if not settings.verbose:
        logging.getLogger("botocore").setLevel(max(logging.WARNING, logging.getLogger().level))

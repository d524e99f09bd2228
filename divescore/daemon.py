"""The entry point of a long-running process of the stack (the sweep, the notifier): settings
from the environment, logging, and a stop event set by SIGTERM or SIGINT."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable

from divescore.settings import Settings, load_or_exit


def run(name: str, work: Callable[[Settings, threading.Event], None]) -> int:
    """Run ``work(settings, stop)`` until it returns (it returns once ``stop`` is set)."""
    settings = load_or_exit()
    logging.basicConfig(level=settings.log_level, format="%(name)s: %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"{name} ready", flush=True)
    work(settings, stop)
    return 0

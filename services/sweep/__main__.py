"""The laptop stacks' sweep: ``python -m services.sweep``, one pass every
``DIVESCORE_SWEEP_INTERVAL_SECONDS``."""

from __future__ import annotations

import logging
import sys
import threading

from divescore import daemon
from divescore.jobs import JobStore
from divescore.settings import Settings
from services.sweep.sweep import sweep

log = logging.getLogger("divescore.sweep")


def run(settings: Settings, stop: threading.Event) -> None:
    store = JobStore.for_settings(settings)
    while not stop.wait(settings.sweep_interval_seconds):
        try:
            sweep(store, settings)
        except Exception:  # the table may be briefly unreachable: the next pass tries again
            if stop.is_set():
                break  # the stack is stopping: the emulator may be gone already
            log.exception("sweep failed; trying again in %d s", settings.sweep_interval_seconds)


if __name__ == "__main__":
    sys.exit(daemon.run("sweep", run))

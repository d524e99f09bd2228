"""The sweep: record as ``failed`` (``worker_lost``) the jobs whose worker stopped on their last
allowed attempt (killed, out of memory, timed out). No retry comes for them (their message
went to the dead-letter queue), and nothing else would ever write their end. It also queues
again the webhook of an ended job whose webhook could not be queued when it ended.

In AWS a scheduled function runs :func:`handler` once a minute; the native and compose stacks
run ``python -m divescore.sweep`` (every ``DIVESCORE_SWEEP_INTERVAL_SECONDS``).
"""

from __future__ import annotations

import logging
import sys
import threading

from divescore import daemon
from divescore.jobs import JobStore
from divescore.settings import Settings, load

log = logging.getLogger("divescore.sweep")


UNSENT_AFTER_SECONDS = 300  # longer than any queued webhook waits for its first attempt


def sweep(store: JobStore, settings: Settings) -> list[str]:
    """One pass; the ids of the jobs it recorded as lost."""
    if store.on_final is not None:
        for job_id in store.unsent_callbacks(older_than_seconds=UNSENT_AFTER_SECONDS):
            log.warning("job %s: its webhook was never queued; queuing it now", job_id)
            store.on_final(job_id)
    lost = []
    for job in store.abandoned(max_attempts=settings.max_receive_count):
        if store.fail_abandoned(job["job_id"], job["claim"], attempts=job.get("attempts", 0)):
            log.warning("job %s: its worker stopped on the last attempt; recorded failed (worker_lost)",
                        job["job_id"])
            lost.append(job["job_id"])
    return lost


def handler(event, context) -> dict:
    """The scheduled function's entry point."""
    settings = load()
    return {"lost": sweep(JobStore.for_settings(settings), settings)}


def run(settings: Settings, stop: threading.Event) -> None:
    store = JobStore.for_settings(settings)
    while not stop.wait(settings.sweep_interval_seconds):
        try:
            sweep(store, settings)
        except Exception:  # the table may be briefly unreachable: the next pass tries again
            log.exception("sweep failed; trying again in %d s", settings.sweep_interval_seconds)


if __name__ == "__main__":
    sys.exit(daemon.run("sweep", run))

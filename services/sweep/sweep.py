"""The sweep: record as ``failed`` (``worker_lost``) the jobs whose worker stopped on their last
allowed attempt (killed, out of memory, timed out). No retry comes for them (their message
went to the dead-letter queue), and nothing else would ever write their end. It also queues
again the webhook of an ended job whose webhook could not be queued when it ended.

In AWS a scheduled function runs :mod:`services.sweep.aws_lambda` once a minute; the native and compose stacks
run ``python -m services.sweep`` (every ``DIVESCORE_SWEEP_INTERVAL_SECONDS``).
"""

from __future__ import annotations

import logging

from divescore.jobs import JobStore
from divescore.settings import Settings

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

"""One job's end delivered to its ``callback_url`` (:mod:`divescore.webhooks` checks, signs
and posts), the attempt recorded in the job, and the delay before the next attempt."""

from __future__ import annotations

import logging
import time
from datetime import datetime

from standardwebhooks.webhooks import Webhook

from divescore.jobs import JobStore, Status
from divescore.settings import Settings
from divescore.webhooks import deliver

log = logging.getLogger("divescore.notifier")


def notify(job_id: str, store: JobStore, webhook: Webhook, settings: Settings, *, receives: int) -> int | None:
    """Deliver one job's end. None: done (delivered, given up, or nothing to send); else the
    seconds before the next attempt."""
    job = store.get(job_id)
    if job is None or not job.get("callback") or not Status(job["status"]).final:
        return None
    if job["callback"].get("state") in ("delivered", "failed"):
        return None  # a repeated message
    # One webhook-id for every attempt: receivers use it to drop repeats.
    attempt = deliver(job, webhook, settings, message_id=f"msg_{job_id}")
    earlier = job["callback"].get("attempts") or [attempt]
    first = datetime.fromisoformat(earlier[0]["at"].replace("Z", "+00:00")).timestamp()
    delay = settings.callback_retry_delay(receives)
    out_of_time = time.time() + delay > first + settings.callback_max_seconds
    state = "delivered" if attempt["ok"] else ("failed" if attempt.pop("final", False) or out_of_time else "retrying")
    attempt.pop("final", None)
    store.record_callback(job_id, attempt, state=state)
    log.info("job %s: callback attempt %d %s (%s)", job_id, receives,
             "delivered" if attempt["ok"] else "failed", attempt.get("status") or attempt.get("error"))
    return delay if state == "retrying" else None

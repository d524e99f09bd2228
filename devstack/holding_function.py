"""The inference function with holds (:mod:`devstack.holds`): what a stack's runtimes run
instead of ``inference.handler.handler`` when it is started with a hold folder. The real
function's cold start and handler run unchanged; only its scorer is wrapped, so that a job can
be held after its claim (``start``) and after each clip batch (``batchK``)."""

from __future__ import annotations

import os
import time

from devstack.holds import HOLD_DIR_ENV, Holds
from inference import handler as function
from inference.worker import PROGRESS_INTERVAL_S

holds = Holds(os.environ[HOLD_DIR_ENV])
_invocation_ends = float("inf")


class HoldingScorer:
    """The function's scorer, holding where the test armed a point of the job it scores. A
    hold lasts at least one progress interval, so the progress written right after it checks
    the job (a cancel made during the hold is noticed there)."""

    def __init__(self, scorer):
        self.scorer = scorer

    def __getattr__(self, name):
        return getattr(self.scorer, name)

    def score(self, video, limits, *, on_progress, **options):
        job_id = function.services.settings.job_id_from_key(video.key)
        if not holds.armed_for(job_id):
            return self.scorer.score(video, limits, on_progress=on_progress, **options)
        attempt = int(function.services.store.get(job_id)["attempts"])

        def reach(point: str) -> None:
            holds.reach(job_id, attempt, point, deadline=_invocation_ends, at_least=PROGRESS_INTERVAL_S)

        reach("start")
        last, batches = 0.0, 0

        def reporting(stage, fraction: float) -> None:
            nonlocal last, batches
            if fraction > last:  # the scorer's fraction rises once per clip batch
                last, batches = fraction, batches + 1
                reach(f"batch{batches}")
            on_progress(stage, fraction)

        return self.scorer.score(video, limits, on_progress=reporting, **options)


function.services.scorer = HoldingScorer(function.services.scorer)


def handler(event: dict, context) -> dict:
    global _invocation_ends
    _invocation_ends = time.monotonic() + context.get_remaining_time_in_millis() / 1000
    return function.handler(event, context)

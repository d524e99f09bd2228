"""AWS Lambda entry point: handler ``services.sweep.aws_lambda.handler``, run once a minute."""

from __future__ import annotations

from divescore.jobs import JobStore
from divescore.settings import load
from services.sweep.sweep import sweep


def handler(event, context) -> dict:
    """The scheduled function's entry point."""
    settings = load()
    return {"lost": sweep(JobStore.for_settings(settings), settings)}

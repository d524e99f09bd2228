"""The score API: ``GET /v1/jobs/{id}`` with ``?wait=N`` long-polls and ETags.

Routes parse the request, call :mod:`services.status_api.waiting` and shape the response; the
shared behaviour (errors, CORS, logs, ``/healthz``) comes from :mod:`services.http`.
"""

from __future__ import annotations

import functools

from flask import Blueprint, Flask, Response, current_app, jsonify, request

from divescore import errors
from divescore.jobs import JobStore
from divescore.settings import Settings
from services.http import create_service_app, service_deps
from services.status_api import waiting

SERVICE = "status_api"
# Requests that may wait at once in one process: fewer than the threads standins.serving gives
# each worker (16), so a plain read and /healthz always find one.
WAITING_PLACES = 12
bp = Blueprint("jobs", __name__)


def create_app(settings: Settings | None = None, *, store: JobStore | None = None, s3=None,
               presigner=None) -> Flask:
    app = create_service_app(__name__, SERVICE, bp, settings, store=store, s3=s3, presigner=presigner)
    app.extensions["divescore.waiting"] = waiting.WaitingPlaces(WAITING_PLACES)
    return app


# Any path below /v1/jobs/ is an id, so "a/b" gets the same 404 as every other unknown id.
@bp.get("/v1/jobs/<path:job_id>")
def get_job(job_id: str):
    deps = service_deps()
    wait_seconds = waiting.parse_wait(request.args.get("wait"), deps.settings)
    seen = request.if_none_match.as_set(include_weak=True)
    read = functools.partial(
        waiting.read_job, job_id, deps.settings, store=deps.store, presigner=deps.presigner
    )
    if wait_seconds:
        with current_app.extensions["divescore.waiting"].taken():
            snapshot = waiting.wait_for_change(
                read, seen=seen, wait_seconds=wait_seconds, poll_interval_seconds=deps.settings.poll_interval_ms / 1000
            )
    else:
        snapshot = read()
    if snapshot is None:
        raise errors.JobNotFound()
    response = Response(status=304) if snapshot.etag in seen else jsonify(snapshot.body)
    # Weak: the body's filmstrip URL is signed anew on each read; the job itself is the same.
    response.set_etag(snapshot.etag, weak=True)
    response.headers["Cache-Control"] = "no-store"
    return response

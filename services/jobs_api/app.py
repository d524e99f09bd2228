"""The presign API: ``POST /v1/jobs``, ``GET /v1/jobs/{id}/upload/parts``,
``POST /v1/jobs/{id}/upload/complete``, ``POST /v1/jobs/{id}/rescore`` and
``POST /v1/jobs/{id}/cancel``.

Routes parse the request, call :mod:`services.jobs_api.uploads` and shape the response; the
shared behaviour (errors, CORS, logs, ``/healthz``) comes from :mod:`services.http`.
"""

from __future__ import annotations

from flask import Blueprint, Flask, current_app, url_for

from divescore.jobs import JobStore
from divescore.settings import Settings
from services.http import create_service_app, json_body, logger_of, service_deps
from services.jobs_api import uploads

SERVICE = "jobs_api"
bp = Blueprint("jobs", __name__)


def create_app(settings: Settings | None = None, *, store: JobStore | None = None, s3=None,
               presigner=None, public_url: str | None = None) -> Flask:
    """``public_url``: the address clients reach this API at, for the URLs its answers carry.
    Without it they are built from the request's host, as behind API Gateway, which routes by
    that host; a server anyone can reach directly (gunicorn) passes the setting instead."""
    app = create_service_app(__name__, SERVICE, bp, settings, store=store, s3=s3, presigner=presigner)
    app.config["PUBLIC_URL"] = public_url.rstrip("/") if public_url else None
    return app


def _complete_url(job_id: str) -> str:
    public_url = current_app.config["PUBLIC_URL"]
    if public_url:
        return public_url + url_for("jobs.complete_upload", job_id=job_id)
    return url_for("jobs.complete_upload", job_id=job_id, _external=True)


@bp.post("/v1/jobs")
def create_job():
    deps = service_deps()
    new = uploads.parse_new_job(json_body(), deps.settings)
    body = uploads.create_job(
        new, deps.settings, store=deps.store, s3=deps.s3, presigner=deps.presigner,
        complete_url=_complete_url,
    )
    logger_of(current_app).info("job created", extra={
        "job_id": body["job_id"], "size": new.size, "content_type": new.content_type,
        "upload_method": body["upload"]["method"],
    })
    return body, 201


@bp.post("/v1/jobs/<job_id>/rescore")
def rescore(job_id: str):
    deps = service_deps()
    body = uploads.rescore(job_id, json_body(), deps.settings, store=deps.store, s3=deps.s3)
    logger_of(current_app).info("rescore job created", extra={"job_id": body["job_id"], "rescore_of": job_id})
    return body, 201


@bp.get("/v1/jobs/<job_id>/upload/parts")
def upload_parts(job_id: str):
    deps = service_deps()
    return uploads.upload_parts(
        job_id, deps.settings, store=deps.store, s3=deps.s3, presigner=deps.presigner,
        complete_url=_complete_url(job_id),
    ), 200


@bp.post("/v1/jobs/<job_id>/upload/complete")
def complete_upload(job_id: str):
    deps = service_deps()
    body = uploads.complete_upload(job_id, json_body(), deps.settings, store=deps.store, s3=deps.s3)
    logger_of(current_app).info("upload completed", extra={"job_id": job_id, "status": body.get("status")})
    return body, 200


@bp.post("/v1/jobs/<job_id>/cancel")
def cancel_job(job_id: str):
    deps = service_deps()
    body = uploads.cancel_job(job_id, deps.settings, store=deps.store, s3=deps.s3)
    logger_of(current_app).info("job canceled", extra={"job_id": job_id})
    return body, 200

"""What both Flask services share: errors as JSON, CORS, request ids, JSON logs, body limits.

``create_api_app`` builds the Flask app each service's factory starts from. Every error a
client can see leaves through :func:`error_response`, as ``{"error": {"code", "message"}}``:
domain errors (``divescore.errors``), what Werkzeug rejects (unknown route, wrong method,
oversized body) and anything unexpected (a 500 whose details go to the log, never the client).
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
import uuid
from typing import Any

from aws_lambda_powertools import Logger
from flask import Blueprint, Flask, Response, current_app, g, jsonify, request
from flask_cors import CORS
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from divescore import aws, errors
from divescore.jobs import JobStore
from divescore.settings import Settings

# A caller's X-Request-Id is kept when it looks like an id; anything else is replaced.
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

# Headers the browser may send and read across origins.
CORS_ALLOW_HEADERS = ["Content-Type", "If-None-Match", "X-Request-Id"]
CORS_EXPOSE_HEADERS = ["ETag", "X-Request-Id"]
CORS_MAX_AGE_SECONDS = 600


def create_api_app(import_name: str, settings: Settings, *, service: str) -> Flask:
    """A Flask app with the shared behaviour; the caller adds its blueprint."""
    app = Flask(import_name, static_folder=None)  # an API: no /static route
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    app.json.sort_keys = False
    logger = Logger(service=service, level=settings.log_level)
    app.extensions["divescore.logger"] = logger

    CORS(
        app,
        origins=list(settings.cors_origins),
        methods=["GET", "POST", "OPTIONS"],
        allow_headers=CORS_ALLOW_HEADERS,
        expose_headers=CORS_EXPOSE_HEADERS,
        max_age=CORS_MAX_AGE_SECONDS,
        supports_credentials=False,
        vary_header=True,
    )

    @app.before_request
    def start_request() -> None:
        g.request_id = _request_id()
        g.started = time.perf_counter()
        logger.thread_safe_append_keys(request_id=g.request_id)

    @app.after_request
    def finish_request(response: Response) -> Response:
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers["X-Content-Type-Options"] = "nosniff"
        # The CORS headers depend on the Origin (flask-cors omits this with a single origin).
        response.vary.add("Origin")
        request_id = g.get("request_id")
        if request_id:
            response.headers["X-Request-Id"] = request_id
        # The path and job id, never a body or a URL: responses carry pre-signed signatures.
        logger.info("request", extra={
            "method": request.method,
            "path": _ascii(request.path),
            "status": response.status_code,
            "job_id": _ascii((request.view_args or {}).get("job_id")),
            "duration_ms": round((time.perf_counter() - g.get("started", time.perf_counter())) * 1000, 1),
        })
        return response

    @app.teardown_request
    def forget_request(_exc: BaseException | None) -> None:
        logger.thread_safe_clear_keys()

    @app.errorhandler(errors.ApiError)
    def on_api_error(err: errors.ApiError) -> Response:
        return error_response(err)

    @app.errorhandler(HTTPException)
    def on_http_exception(err: HTTPException) -> Response:
        response = error_response(_from_http_exception(err, settings))
        for name, value in err.get_headers():
            if name.lower() != "content-type":
                response.headers[name] = value
        return response

    @app.errorhandler(Exception)
    def on_unexpected(err: Exception) -> Response:
        logger.exception("unexpected error")
        return error_response(errors.InternalError(
            f"Something went wrong on our side. Try again; if it keeps failing, report request id "
            f"{g.get('request_id', 'unknown')}."
        ))

    @app.get("/healthz")
    def healthz():
        return {"status": "ok"}

    return app


@dataclasses.dataclass(frozen=True)
class Deps:
    """What a service's routes use, attached to its app."""

    settings: Settings
    store: JobStore
    s3: object  # talks to S3 from here
    presigner: object  # signs URLs for the address the browser uses


def create_service_app(import_name: str, service: str, blueprint: Blueprint, settings: Settings | None = None, *,
                       store: JobStore | None = None, s3=None, presigner=None) -> Flask:
    """A service's app. Without ``settings``, the defaults (entry points pass ``settings.load()``);
    the clients default to the shared ones of :mod:`divescore.aws` (tests pass their own)."""
    settings = settings or Settings()
    app = create_api_app(import_name, settings, service=service)
    app.extensions["divescore"] = Deps(
        settings=settings,
        store=store or JobStore.for_settings(settings),
        s3=s3 or aws.client("s3", settings),
        presigner=presigner or aws.presigning_s3(settings),
    )
    app.register_blueprint(blueprint)
    return app


def service_deps() -> Deps:
    return current_app.extensions["divescore"]


def logger_of(app: Flask) -> Logger:
    return app.extensions["divescore.logger"]


def error_response(err: errors.ApiError) -> Response:
    response = jsonify(err.body())
    response.status_code = err.status
    if getattr(err, "retry_after", None):
        response.headers["Retry-After"] = str(err.retry_after)
    return response


def json_body() -> Any:
    """The request body parsed as JSON (whatever its Content-Type), or ``InvalidJson``."""
    raw = request.get_data(cache=True)  # over MAX_CONTENT_LENGTH: 413 request_too_large
    if request.content_length is None and len(raw) >= (request.max_content_length or float("inf")):
        # A chunked body (no Content-Length) is read only up to the limit, and what was read
        # would be parsed as if it were all: refuse it instead.
        raise RequestEntityTooLarge()
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise errors.InvalidJson(
            'The request body is not valid JSON. Send a JSON object such as '
            '{"filename": "dive.mp4", "content_type": "video/mp4", "size": 12345678}.'
        ) from None


def _from_http_exception(err: HTTPException, settings: Settings) -> errors.ApiError:
    if err.code == 404:
        return errors.NotFound(f"There is no {request.path}. See docs/api.md for the API's routes.")
    if err.code == 405:
        allowed = ", ".join(sorted(m for m in (getattr(err, "valid_methods", None) or []) if m != "OPTIONS"))
        return errors.MethodNotAllowed(f"{request.method} is not allowed on {request.path}; use {allowed}.")
    if err.code == 413:
        return errors.RequestTooLarge(
            f"The request body is larger than {settings.max_request_bytes} bytes. Send only the JSON fields "
            "the API expects; the video itself goes to the upload URL."
        )
    if err.code is not None and 400 <= err.code < 500:
        error = errors.BadRequest(f"The request was not understood: {err.description}")
        error.status = err.code
        return error
    return errors.InternalError("Something went wrong on our side. Try again.")


def _ascii(value: str | None) -> str | None:
    """A client's text, escaped to ASCII for the log: it may hold line separators (U+2028,
    U+0085) at which line-oriented readers (honcho, ``splitlines``) would break the record."""
    return None if value is None else value.encode("ascii", "backslashreplace").decode("ascii")


def _request_id() -> str:
    given = request.headers.get("X-Request-Id", "")
    if _REQUEST_ID.match(given):
        return given
    # Behind API Gateway (through apig-wsgi), reuse its id so the two logs line up.
    context = request.environ.get("apig_wsgi.request_context") or {}
    return str(context.get("requestId") or uuid.uuid4().hex)

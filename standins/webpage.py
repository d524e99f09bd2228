"""The web page: the static files in ``web/`` and ``/config.json``, which tells the page where
the APIs are and what the upload limits are (so the page holds no address of its own).

    python -m standins.webpage            # settings.host:settings.web_port
    gunicorn standins.webpage:app         # ``app`` is built from the environment on first use
"""

from __future__ import annotations

import sys
from pathlib import Path

from flask import Flask, jsonify, send_from_directory

from divescore.settings import Settings, load, load_or_exit

# web/ of the checkout; a wheel carries it inside the package (pyproject.toml, standins.web).
_PACKAGED_WEB_DIR = Path(__file__).resolve().parent / "web"
WEB_DIR = _PACKAGED_WEB_DIR if _PACKAGED_WEB_DIR.is_dir() else Path(__file__).resolve().parent.parent / "web"
LONG_POLL_SECONDS = 20

# The page runs only its own scripts; it talks to the APIs and S3, whose addresses it learns
# from /config.json, so connect-src and img-src stay open; media-src takes the chosen video as
# an object URL (blob:), to scrub it beside its score.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob: http: https:; "
        "media-src 'self' blob:; "
        "connect-src 'self' http: https:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
        "form-action 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def page_config(settings: Settings) -> dict:
    """Everything the page needs to know about the deployment."""
    return {
        "presign_api_url": settings.presign_api_url.rstrip("/"),
        "score_api_url": settings.score_api_url.rstrip("/"),
        "max_upload_bytes": settings.max_upload_bytes,
        "content_types": list(settings.content_types),
        "long_poll_seconds": min(LONG_POLL_SECONDS, settings.max_wait_seconds),
        # How long scoring may take, so the page can say when a job is late and what to do.
        "function_timeout_seconds": settings.function_timeout_seconds,
        "max_receive_count": settings.max_receive_count,
    }


def create_app(settings: Settings | None = None, web_dir: Path | str = WEB_DIR) -> Flask:
    settings = settings or load()
    app = Flask(__name__, static_folder=None)
    config = page_config(settings)

    @app.get("/")
    def index():
        return send_from_directory(web_dir, "index.html")

    @app.get("/<path:name>")
    def static_file(name: str):
        return send_from_directory(web_dir, name)

    @app.get("/config.json")
    def config_json():
        return jsonify(config)

    @app.get("/healthz")
    def healthz():
        return jsonify({"status": "ok"})

    @app.after_request
    def headers(response):
        response.headers.update(SECURITY_HEADERS)
        # The page is small and changes with the code: always revalidate (ETag → 304).
        response.headers["Cache-Control"] = "no-cache"
        return response

    return app


def __getattr__(name: str):
    # ``standins.webpage:app`` for WSGI servers, built only when asked for so that importing
    # this module never reads the environment.
    if name == "app":
        app = create_app()
        globals()["app"] = app
        return app
    raise AttributeError(name)


def main() -> int:
    from werkzeug.serving import run_simple

    settings = load_or_exit()
    run_simple(settings.host, settings.web_port, create_app(settings), threaded=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

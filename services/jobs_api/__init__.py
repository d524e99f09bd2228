"""services.jobs_api: creates jobs and hands out pre-signed upload instructions (``POST /v1/jobs``)."""

from services.jobs_api.app import create_app

__all__ = ["create_app"]

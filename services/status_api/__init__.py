"""services.status_api: the job's public record, with a long-poll (``GET /v1/jobs/{id}?wait=N``)."""

from services.status_api.app import create_app

__all__ = ["create_app"]

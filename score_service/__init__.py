"""score_service: the job's public record, with a long-poll (``GET /v1/jobs/{id}?wait=N``)."""

from score_service.app import create_app

__all__ = ["create_app"]

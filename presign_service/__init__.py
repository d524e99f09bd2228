"""presign_service: creates jobs and hands out pre-signed upload instructions (``POST /v1/jobs``)."""

from presign_service.app import create_app

__all__ = ["create_app"]

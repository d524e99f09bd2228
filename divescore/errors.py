"""What the HTTP API can answer besides success: one small class per error, each with its
HTTP status and its stable ``code``, defined here and nowhere else.

The services' plain modules raise these; ``services.http`` turns any of them into
``{"error": {"code", "message"}}`` with the status. No Flask here, so the logic that raises
them runs and is tested without a web server.
"""

from __future__ import annotations


class ApiError(Exception):
    """An answer for the client. ``message`` is a sentence a person can act on."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def body(self) -> dict:
        return {"error": {"code": self.code, "message": self.message}}


# -- the request itself ---------------------------------------------------------------

class InvalidJson(ApiError):
    status, code = 400, "invalid_json"


class MissingField(ApiError):
    status, code = 400, "missing_field"


class InvalidField(ApiError):
    status, code = 400, "invalid_field"


class UnknownField(ApiError):
    status, code = 400, "unknown_field"


# -- a new job ------------------------------------------------------------------------

class InvalidFilename(ApiError):
    status, code = 400, "invalid_filename"


class InvalidSize(ApiError):
    status, code = 400, "invalid_size"


class FileTooLarge(ApiError):
    status, code = 413, "file_too_large"


class InvalidCallbackUrl(ApiError):
    status, code = 400, "invalid_callback_url"


class UnsupportedMediaType(ApiError):
    status, code = 415, "unsupported_media_type"


# -- an existing job ------------------------------------------------------------------

class JobNotFound(ApiError):
    status, code = 404, "job_not_found"

    def __init__(self, message: str = "No job has this id, or it has expired. Create a new job with POST /v1/jobs."):
        super().__init__(message)


class InvalidParts(ApiError):
    status, code = 400, "invalid_parts"


class NotMultipartUpload(ApiError):
    status, code = 409, "not_multipart_upload"


class UploadNotPending(ApiError):
    status, code = 409, "upload_not_pending"


class UploadNotAvailable(ApiError):
    status, code = 409, "upload_not_available"


class JobNotScored(ApiError):
    status, code = 409, "job_not_scored"


class JobAlreadyFinal(ApiError):
    status, code = 409, "job_already_final"


class InvalidWait(ApiError):
    status, code = 400, "invalid_wait"


class TooManyWaiting(ApiError):
    """Every waiting place of the instance is taken; the client asks again after ``retry_after``."""

    status, code = 503, "too_many_waiting"
    retry_after = 1


# -- transport (raised by services.http for what Flask/Werkzeug reject) ----------------

class NotFound(ApiError):
    status, code = 404, "not_found"


class MethodNotAllowed(ApiError):
    status, code = 405, "method_not_allowed"


class RequestTooLarge(ApiError):
    status, code = 413, "request_too_large"


class BadRequest(ApiError):
    status, code = 400, "bad_request"


class InternalError(ApiError):
    status, code = 500, "internal_error"

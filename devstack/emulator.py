"""The native stack's AWS emulator: moto's server, with pre-signed URL signatures kept out of
its request log, and with the few places where moto behaves unlike AWS in a way the stack
would notice made to behave like it (atomic conditional writes, ``NoSuchUpload``, ranged GETs
that read only their range; the IAM ones are in :mod:`devstack.iam.enforce`).

Browsers send the pre-signed URLs they were given (part uploads, filmstrip downloads) to the
emulator, and Werkzeug logs each request line, query string included. A signature in a log
is a usable URL for whoever reads the log until it expires, so it is replaced there.

    python -m devstack.emulator -H 127.0.0.1 -p 5000 [--quiet]

``--quiet``: no line per request and no development-server banner (``make run`` by default).
Otherwise each request also gets a line naming its service, action and access key
(:func:`request_line`), which Werkzeug's line cannot tell apart (SQS and DynamoDB both
``POST /``): ``bench/job_requests.py`` counts one job's requests from them.
"""

from __future__ import annotations

import functools
import io
import logging
import re
import sys
import threading

# SigV4 query signatures (X-Amz-Signature=...), SigV2 ones (Signature=...) and session tokens.
_SECRET_PARAMETER = re.compile(r"((?:X-Amz-Signature|Signature|X-Amz-Security-Token)=)[^&\s\"]+", re.IGNORECASE)


def redact(text: str) -> str:
    return _SECRET_PARAMETER.sub(r"\1REDACTED", text)


class RedactSignatures(logging.Filter):
    """Rewrites a log record whose message holds a signed query string."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


def serialize_dynamodb_writes() -> None:
    """Make moto's DynamoDB writes atomic, as DynamoDB's are.

    moto checks a write's condition and then applies the write in separate steps, and its
    server handles requests on threads: two conditional writes at once could both pass their
    condition (two workers both claiming one job). One lock around each write closes that gap.
    """
    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()
    for name in ("put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item"):
        original = getattr(DynamoDBBackend, name)

        @functools.wraps(original)
        def locked(self, *args, _original=original, **kwargs):
            with lock:
                return _original(self, *args, **kwargs)

        setattr(DynamoDBBackend, name, locked)


def answer_no_such_upload() -> None:
    """Completing an upload that is gone (completed or aborted) is S3's ``NoSuchUpload``, not
    moto's 500: services.jobs_api tells a repeated completion from a failed one by it."""
    from moto.s3.exceptions import NoSuchUpload
    from moto.s3.models import S3Backend

    original = S3Backend.complete_multipart_upload

    @functools.wraps(original)
    def complete(self, bucket_name, multipart_id, body):
        if multipart_id not in self.get_bucket(bucket_name).multiparts:
            raise NoSuchUpload(multipart_id)
        return original(self, bucket_name, multipart_id, body)

    S3Backend.complete_multipart_upload = complete


# A ranged GET the patch below serves: one range with a first byte (``bytes=0-99``, ``bytes=100-``).
_SINGLE_RANGE = re.compile(r"bytes=(\d+)-(\d*)")


class _StoredBytes:
    """An object's bytes in moto's store, read only where sliced."""

    def __init__(self, key):
        self._key = key

    def __len__(self) -> int:
        return self._key.size

    def __getitem__(self, part: slice) -> bytes:
        start, stop, _ = part.indices(len(self))
        with self._key.lock:
            self._key._value_buffer.seek(start)
            return self._key._value_buffer.read(max(0, stop - start))


class _RangedKey:
    """A stored object whose ``value`` is read lazily; everything else is the object's."""

    def __init__(self, key):
        self._key = key

    def __getattr__(self, name):
        return getattr(self._key, name)

    @property
    def value(self) -> _StoredBytes:
        return _StoredBytes(self._key)


def serve_ranges_from_storage() -> None:
    """Answer a ranged GET by reading only its range, as S3 does.

    moto reads the whole object for every GET and then slices out the range: the function reads
    a 200 MB upload in 1 MiB ranges, so each of them copied 200 MB in the emulator, which took
    the function's cores and made every read cost what the object's size costs, nothing like S3.
    """
    from moto.s3.responses import S3Response

    original = S3Response.get_object

    @functools.wraps(original)
    def get_object(self):
        wanted = _SINGLE_RANGE.fullmatch(self.headers.get("range") or "")
        if wanted and (not wanted[2] or int(wanted[2]) >= int(wanted[1])):
            get_key = self._get_key  # a response object serves one request: this is its own

            def ranged_key(*args, **kwargs):
                key, not_modified = get_key(*args, **kwargs)
                return _RangedKey(key), not_modified

            self._get_key = ranged_key
        return original(self)

    S3Response.get_object = get_object


# The one control request the stack makes: IAM enforcement switched on (moto authenticates every
# request once its count of unauthenticated ones reaches the body's number).
_ENFORCE = ("POST", "/moto-api/reset-auth", b"0")
_REFUSED = b'{"error": {"code": "forbidden", "message": "The emulator\'s control routes are closed."}}'


def close_control_routes(app):
    """moto's ``/moto-api/`` routes read every stored secret, key and message, reset the
    emulator and switch IAM enforcement off, for anyone who asks. Only switching enforcement
    on passes; everything else there is refused."""

    def guarded(environ, start_response):
        if not environ.get("PATH_INFO", "").startswith("/moto-api"):
            return app(environ, start_response)
        method, path = environ.get("REQUEST_METHOD"), environ.get("PATH_INFO")
        body = b""
        if (method, path) == _ENFORCE[:2]:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length) if 0 < length <= 16 else b""
            environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(body), str(len(body))
        if (method, path, body) == _ENFORCE:
            return app(environ, start_response)
        start_response("403 Forbidden", [("Content-Type", "application/json"), ("Content-Length", str(len(_REFUSED)))])
        return [_REFUSED]

    return guarded


REQUEST_LOG = "devstack.emulator.requests"
REQUEST_PREFIX = "aws-request"
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/[^/]+/[^/]+/([^/]+)/")
_QUERY_CREDENTIAL = re.compile(r"X-Amz-Credential=([^%&/]+)(?:%2F|/)", re.IGNORECASE)


def request_line(environ: dict) -> str:
    """``aws-request SERVICE ACTION KEY_ID``: the service and action from the JSON protocols'
    ``X-Amz-Target`` (DynamoDB, SQS, Secrets Manager), else the service the signature names
    (S3 when unsigned: a pre-signed POST) and the HTTP method; the access key from the
    signature, ``-`` for a pre-signed POST (its key is in the form)."""
    signed = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
    queried = _QUERY_CREDENTIAL.search(environ.get("QUERY_STRING", ""))
    key_id = signed.group(1) if signed else queried.group(1) if queried else "-"
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        prefix, _, action = target.partition(".")
        service = "dynamodb" if prefix.startswith("DynamoDB") else "sqs" if prefix == "AmazonSQS" else prefix.lower()
    else:
        service, action = (signed.group(2) if signed else "s3"), environ.get("REQUEST_METHOD", "")
    return f"{REQUEST_PREFIX} {service} {action} {key_id}"


def log_requests(app):
    log = logging.getLogger(REQUEST_LOG)

    def logged(environ, start_response):
        if log.isEnabledFor(logging.INFO):
            log.info(request_line(environ))
        return app(environ, start_response)

    return logged


def page_origins() -> tuple[str, ...]:
    """The web page's origins, as the stack's settings name them (none when they cannot be read)."""
    from divescore.settings import SettingsError, load

    try:
        return load().cors_origins
    except SettingsError:
        return ()


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--quiet" in argv:
        argv.remove("--quiet")
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
    else:
        requests_log = logging.getLogger(REQUEST_LOG)
        requests_log.setLevel(logging.INFO)
        requests_log.addHandler(logging.StreamHandler())
    logging.getLogger("werkzeug").addFilter(RedactSignatures())
    serialize_dynamodb_writes()
    answer_no_such_upload()
    serve_ranges_from_storage()
    from devstack.iam import enforce as emulator_auth

    emulator_auth.install()
    import moto.server
    from moto.moto_server import werkzeug_app

    # moto answers every origin's CORS requests; here only the stack's page may read its answers
    # (the browser uploads to S3 from there), and a page of any other origin reads nothing.
    werkzeug_app.CORS = functools.partial(werkzeug_app.CORS, origins=list(page_origins()))
    dispatcher = moto.server.DomainDispatcherApplication
    moto.server.DomainDispatcherApplication = lambda *args, **kwargs: log_requests(
        close_control_routes(dispatcher(*args, **kwargs)))
    moto.server.main(argv)


if __name__ == "__main__":
    sys.exit(main())

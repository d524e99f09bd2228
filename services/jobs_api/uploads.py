"""New jobs and their uploads: validate the request, create the record, sign the upload.

Plain functions (no Flask): the routes in ``services.jobs_api.app`` parse the request, call
these and shape the response. The object key is always ``settings.upload_key(job_id)``:
nothing the client sends (file name, path, extension) ever reaches it.
"""

from __future__ import annotations

import dataclasses
import math
import unicodedata
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from divescore import errors, jobs
from divescore import webhooks as callbacks
from divescore.jobs import JobStore, Status
from divescore.settings import MB, MIB, Settings

S3_MIN_PART_BYTES = 5 * MIB  # every part but the last
# S3 allows 10,000 parts; 100 keeps the completion request well under max_request_bytes (16 KiB)
# and is plenty: 200 MB in the default 16 MiB parts is 12.
MAX_PARTS = 100
MAX_ETAG_CHARS = 100  # S3's are 34 (a quoted MD5 hex)

NEW_JOB_EXAMPLE = '{"filename": "dive.mp4", "content_type": "video/mp4", "size": 12345678}'
NEW_JOB_FIELDS = {"filename": str, "content_type": str, "size": int}
NEW_JOB_OPTIONAL = ("entry_s", "callback_url")
FORBIDDEN_CATEGORIES = ("Cc", "Cf", "Cs")  # control, format (bidi, invisible), surrogate


@dataclasses.dataclass(frozen=True)
class NewJob:
    filename: str
    content_type: str
    size: int
    entry_s: float | None = None  # when the diver enters the water, seconds from the start
    callback_url: str | None = None


# -- validation -------------------------------------------------------------------------

def parse_new_job(body: Any, settings: Settings) -> NewJob:
    """The request of ``POST /v1/jobs``, checked in this order: shape, fields, file name,
    size, content type, callback URL. The first problem found is the one reported."""
    fields = _object_with_fields(body, NEW_JOB_FIELDS, example=NEW_JOB_EXAMPLE, optional=NEW_JOB_OPTIONAL)
    new = NewJob(**fields, entry_s=parse_entry_s(body.get("entry_s"), settings),
                 callback_url=body.get("callback_url"))
    _check_filename(new.filename, settings)
    _check_size(new.size, settings)
    _check_content_type(new.content_type, settings)
    if "callback_url" in body:
        callbacks.check_url(new.callback_url, settings)
    return new


def _object_with_fields(body: Any, expected: dict[str, type], *, example: str,
                        optional: tuple[str, ...] = ()) -> dict[str, Any]:
    """The ``expected`` fields of ``body``, each of its type; ``optional`` ones are allowed
    and left to the caller."""
    if not isinstance(body, dict):
        raise errors.InvalidJson(f"The request body must be a JSON object such as {example}.")
    unknown = sorted(set(body) - set(expected) - set(optional))
    if unknown:
        raise errors.UnknownField(
            f"Unknown field {unknown[0]!r}. The accepted fields are: {', '.join([*expected, *optional])}."
        )
    fields = {}
    for name, kind in expected.items():
        if name not in body:
            raise errors.MissingField(f"The field {name!r} is missing. Example: {example}.")
        value = whole_number(body[name]) if kind is int else body[name]
        if not isinstance(value, kind):
            raise errors.InvalidField(f"The field {name!r} must be {_kind_name(kind)}. Example: {example}.")
        fields[name] = value
    return fields


def whole_number(value: Any) -> int | None:
    """``value`` as an int if JSON would call it an integer (``12`` or ``12.0``), else None.
    ``true`` is not a number, whatever Python thinks."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def parse_entry_s(value: Any, settings: Settings) -> float | None:
    """``entry_s``: absent or null, or the moment of the entry into the water, in seconds from
    the video's start (0 to the longest accepted video)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or not 0 <= value <= settings.max_video_seconds:
        raise errors.InvalidField(
            "The field 'entry_s' must be the moment the diver enters the water, in seconds from the start of the "
            f"video: a number from 0 to {settings.max_video_seconds:g}, e.g. 12.4."
        )
    return float(value)


def _kind_name(kind: type) -> str:
    return {str: "a string", int: "a whole number", list: "a list"}.get(kind, kind.__name__)


def _check_filename(filename: str, settings: Settings) -> None:
    if not filename:
        raise errors.InvalidFilename("The file name is empty. Send the name of the video file, e.g. dive.mp4.")
    if len(filename) > settings.max_filename_chars:
        raise errors.InvalidFilename(
            f"The file name has {len(filename)} characters; at most {settings.max_filename_chars} are accepted. "
            "Rename the file and try again."
        )
    # Control characters; format characters (Cf: bidirectional overrides such as U+202E, which
    # makes "evil\u202egnp.mp4" display as "evilmp4.png", and invisible ones such as U+200B);
    # lone surrogates that no storage can encode.
    bad = next((c for c in filename if unicodedata.category(c) in FORBIDDEN_CATEGORIES), None)
    if bad is not None:
        raise errors.InvalidFilename(
            f"The file name contains the control or invisible character U+{ord(bad):04X} (characters such as "
            "a newline, a tab or a text-direction override are refused). Rename the file and try again."
        )


def _check_size(size: int, settings: Settings) -> None:
    if size <= 0:
        raise errors.InvalidSize(f"The size must be the file's size in bytes, at least 1; got {size}.")
    if size > settings.max_upload_bytes:
        raise errors.FileTooLarge(
            f"The file is larger than the largest accepted upload, {settings.max_upload_bytes / MB:g} MB. "
            "Trim the video to the dive itself or export it at a lower resolution."
        )


def _check_content_type(content_type: str, settings: Settings) -> None:
    if content_type not in settings.content_types:
        shown = repr(content_type[:100]) if content_type else "empty"
        raise errors.UnsupportedMediaType(
            f"The content type {shown} is not a supported video type. "
            f"Send one of: {', '.join(settings.content_types)}."
        )


# -- creating a job ---------------------------------------------------------------------

def create_job(new: NewJob, settings: Settings, *, store: JobStore, s3, presigner,
               complete_url: Callable[[str], str]) -> dict:
    """Create the job record and the upload instructions; the ``201`` body of ``POST /v1/jobs``.

    ``s3`` talks to S3 from the service; ``presigner`` signs URLs for the address the browser
    uses (they differ under compose). ``complete_url(job_id)`` is where a multipart upload
    is completed.
    """
    job_id = jobs.new_job_id()
    key = settings.upload_key(job_id)
    if new.size <= settings.multipart_threshold_bytes:
        upload = _presigned_post(presigner, settings, key, new.content_type)
        upload_id = None
    else:
        upload_id = s3.create_multipart_upload(Bucket=settings.bucket, Key=key, ContentType=new.content_type)[
            "UploadId"
        ]
        upload = _multipart(presigner, settings, key, upload_id, new.size, complete_url(job_id))
    job = store.create(
        job_id=job_id,
        filename=new.filename,
        content_type=new.content_type,
        size=new.size,
        key=key,
        ttl_seconds=settings.job_ttl_days * 86400,
        upload_id=upload_id,
        entry_s=new.entry_s,
        callback_url=new.callback_url,
    )
    return {"job_id": job_id, "status": job["status"], "upload": upload, "expires_at": job["expires_at"]}


def _presigned_post(presigner, settings: Settings, key: str, content_type: str) -> dict:
    # The policy pins the exact key (no starts-with), the content type and the size range, so
    # S3 itself refuses an upload to another key, of another type, or over the limit.
    post = presigner.generate_presigned_post(
        Bucket=settings.bucket,
        Key=key,
        Fields={"Content-Type": content_type},
        Conditions=[{"Content-Type": content_type}, ["content-length-range", 1, settings.max_upload_bytes]],
        ExpiresIn=settings.url_ttl_seconds,
    )
    return {"method": "POST", "url": post["url"], "fields": post["fields"]}


def part_size_for(size: int, settings: Settings) -> int:
    """The part size for a file of ``size`` bytes: the setting, raised to S3's minimum part
    and to whatever keeps the upload within ``MAX_PARTS``."""
    return max(settings.part_size_bytes, S3_MIN_PART_BYTES, math.ceil(size / MAX_PARTS))


def part_count(size: int, settings: Settings) -> int:
    return math.ceil(size / part_size_for(size, settings))


def _part_url(presigner, settings: Settings, key: str, upload_id: str, number: int) -> dict:
    return {
        "part_number": number,
        "url": presigner.generate_presigned_url(
            "upload_part",
            Params={"Bucket": settings.bucket, "Key": key, "UploadId": upload_id, "PartNumber": number},
            ExpiresIn=settings.url_ttl_seconds,
        ),
    }


def _multipart(presigner, settings: Settings, key: str, upload_id: str, size: int, complete_url: str) -> dict:
    parts = [_part_url(presigner, settings, key, upload_id, n) for n in range(1, part_count(size, settings) + 1)]
    return {
        "method": "MULTIPART",
        "part_size": part_size_for(size, settings),
        "parts": parts,
        "complete_url": complete_url,
    }


# -- score from here: a new job from the same upload ---------------------------------------

RESCORE_EXAMPLE = '{"entry_s": 12.4}'


def rescore(job_id: str, body: Any, settings: Settings, *, store: JobStore, s3) -> dict:
    """A new job that scores job ``job_id``'s video again over the window ending at
    ``entry_s`` (``null``: look for the entry again); the ``201`` body of
    ``POST /v1/jobs/{id}/rescore``. Knowing the job id is the right to do it, as for reading.

    Nothing is uploaded again: S3 copies the object to the new job's key on its side, and the
    copy's ObjectCreated event queues the new job like any upload.
    """
    job = store.get(job_id)
    if job is None:
        raise errors.JobNotFound()
    _object_with_fields(body, {}, example=RESCORE_EXAMPLE, optional=("entry_s",))
    entry_s = parse_entry_s(body.get("entry_s"), settings)
    if job["status"] not in (Status.SUCCEEDED, Status.FAILED) or not job.get("attempts"):
        raise errors.JobNotScored(
            f"This job was never scored (it is {job['status']}): only a scored job's video can be scored again. "
            "Create a new job and upload the video."
        )
    if not _object_exists(s3, settings, job["key"]):
        raise _upload_gone(settings)
    new_id = jobs.new_job_id()
    key = settings.upload_key(new_id)
    # The record comes first: the copy's ObjectCreated event queues the new job, and the function
    # acknowledges an event for a job it does not know.
    store.create(job_id=new_id, filename=job["filename"], content_type=job["content_type"], size=job["size"],
                 key=key, ttl_seconds=settings.job_ttl_days * 86400, entry_s=entry_s, rescore_of=job_id)
    try:
        s3.copy_object(Bucket=settings.bucket, Key=key, CopySource={"Bucket": settings.bucket, "Key": job["key"]})
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") not in ("NoSuchKey", "404"):
            raise
        gone = _upload_gone(settings)  # deleted since it was looked at: the new job ends saying so
        store.fail(new_id, gone.code, gone.message)
        raise gone from None
    store.mark_queued(new_id)
    return jobs.public_view(store.get(new_id))


def _upload_gone(settings: Settings) -> errors.UploadNotAvailable:
    return errors.UploadNotAvailable(
        "This job's video is not in storage (past its retention of "
        f"{settings.upload_retention_days} day(s)). Create a new job and upload the video."
    )


# -- resuming a multipart upload --------------------------------------------------------

def upload_parts(job_id: str, settings: Settings, *, store: JobStore, s3, presigner, complete_url: str) -> dict:
    """The parts S3 already holds for the job's open multipart upload, and fresh pre-signed
    URLs for the others: what a client needs to resume an upload and send only what is missing.

    A part S3 holds with the wrong size (another file's, or cut short) counts as missing:
    uploading it again replaces it."""
    job = _open_multipart(job_id, store)
    size = job["size"]
    part_size, count = part_size_for(size, settings), part_count(size, settings)
    held = {}
    try:
        for page in s3.get_paginator("list_parts").paginate(
                Bucket=settings.bucket, Key=job["key"], UploadId=job["upload_id"]):
            for part in page.get("Parts", []):
                held[part["PartNumber"]] = part
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") != "NoSuchUpload":
            raise
        raise errors.UploadNotPending(
            "This job's multipart upload no longer exists (it was completed or abandoned). "
            "Create a new job to upload again."
        ) from None
    uploaded, missing = [], []
    for number in range(1, count + 1):
        expected = min(part_size, size - (number - 1) * part_size)
        part = held.get(number)
        if part is not None and part.get("Size") == expected:
            uploaded.append({"part_number": number, "etag": part["ETag"], "size": expected})
        else:
            missing.append(_part_url(presigner, settings, job["key"], job["upload_id"], number))
    return {
        "job_id": job_id,
        "part_size": part_size,
        "part_count": count,
        "uploaded": uploaded,
        "missing": missing,
        "complete_url": complete_url,
    }


def _open_multipart(job_id: str, store: JobStore) -> dict:
    """The job, if its multipart upload is still open; else the error that says why not."""
    job = store.get(job_id)
    if job is None:
        raise errors.JobNotFound()
    if not job.get("upload_id"):
        raise errors.NotMultipartUpload(
            "This job's upload is a single pre-signed POST; there are no parts."
        )
    if job["status"] != Status.AWAITING_UPLOAD:
        raise errors.UploadNotPending(
            f"This job's upload is no longer open (the job is {job['status']}). Create a new job to upload again."
        )
    return job


# -- completing a multipart upload ------------------------------------------------------

COMPLETE_EXAMPLE = '{"parts": [{"part_number": 1, "etag": "\\"9b2cf535f27731c974343645a3985328\\""}]}'


def complete_upload(job_id: str, body: Any, settings: Settings, *, store: JobStore, s3) -> dict:
    """Complete the job's multipart upload from the parts the client uploaded; then the job
    is ``queued``. A parts list S3 cannot use aborts the upload and fails the job: its parts
    are discarded, and the client starts again with a new job."""
    job = _open_multipart(job_id, store)
    fields = _object_with_fields(body, {"parts": list}, example=COMPLETE_EXAMPLE)
    try:
        parts = _parse_parts(fields["parts"], expected=part_count(job["size"], settings))
        s3.complete_multipart_upload(
            Bucket=settings.bucket,
            Key=job["key"],
            UploadId=job["upload_id"],
            MultipartUpload={"Parts": [{"PartNumber": n, "ETag": etag} for n, etag in parts]},
        )
    except errors.InvalidParts as err:
        _give_up(job, settings, store=store, s3=s3, reason=err.message)
        raise
    except ClientError as err:
        code = err.response.get("Error", {}).get("Code", "")
        if code == "NoSuchUpload" and _object_exists(s3, settings, job["key"]):
            # A second call racing one that just succeeded: the upload is fine, leave the job be.
            raise errors.UploadNotPending("This job's upload was already completed.") from None
        if code not in ("InvalidPart", "InvalidPartOrder", "EntityTooSmall", "NoSuchUpload", "MalformedXML"):
            raise
        message = (
            f"S3 refused the parts list ({code}): every part must be uploaded to its URL, and each part's "
            "ETag sent exactly as S3 returned it."
        )
        _give_up(job, settings, store=store, s3=s3, reason=message)
        raise errors.InvalidParts(message) from None
    store.mark_queued(job_id)
    return jobs.public_view(store.get(job_id) or job)


def _parse_parts(parts: list, *, expected: int) -> list[tuple[int, str]]:
    if len(parts) != expected:
        raise errors.InvalidParts(
            f"The upload has {expected} parts; the list names {len(parts)}. Send every part, numbered 1 to {expected}."
        )
    parsed = []
    for index, part in enumerate(parts, start=1):
        if not isinstance(part, dict) or set(part) != {"part_number", "etag"}:
            raise errors.InvalidParts(
                f"Part {index} of the list must be an object with exactly part_number and etag. "
                f"Example: {COMPLETE_EXAMPLE}."
            )
        number, etag = whole_number(part["part_number"]), part["etag"]
        if number != index:
            raise errors.InvalidParts(
                f"The parts must be numbered 1 to {expected} in order; entry {index} has part_number "
                f"{part['part_number']!r}."
            )
        if not isinstance(etag, str) or not etag.strip('"') or len(etag) > MAX_ETAG_CHARS:
            raise errors.InvalidParts(f"Part {index} needs the ETag S3 returned when it was uploaded.")
        parsed.append((number, etag))
    return parsed


def _object_exists(s3, settings: Settings, key: str) -> bool:
    try:
        s3.head_object(Bucket=settings.bucket, Key=key)
    except ClientError:
        return False
    return True


def _give_up(job: dict, settings: Settings, *, store: JobStore, s3, reason: str) -> None:
    _abort_multipart(settings, s3, job)
    store.fail(job["job_id"], "upload_incomplete", f"The multipart upload was abandoned: {reason} "
               "Create a new job to upload the video again.", expected=(Status.AWAITING_UPLOAD,))


# -- canceling a job --------------------------------------------------------------------

def cancel_job(job_id: str, settings: Settings, *, store: JobStore, s3) -> dict:
    """Cancel the job; the ``200`` body of ``POST /v1/jobs/{id}/cancel`` (the job, canceled).

    Whatever it was doing stops: an upload still open is aborted (a pre-signed POST that lands
    later is deleted by the function), a queued job is dropped when its message arrives, a
    worker scoring it stops at its next progress write. The uploaded video is deleted.
    Canceling a canceled job changes nothing; one that succeeded or failed is refused."""
    try:
        before = store.cancel(job_id)
    except jobs.JobFinal as err:
        raise errors.JobAlreadyFinal(
            f"This job has already {err.status}; there is nothing to cancel. Its result stays readable."
        ) from None
    if before is None:
        raise errors.JobNotFound()
    if before["status"] != Status.CANCELED:
        if before["status"] == Status.AWAITING_UPLOAD and before.get("upload_id"):
            _abort_multipart(settings, s3, before)
        s3.delete_object(Bucket=settings.bucket, Key=before["key"])
    return jobs.public_view(store.get(job_id) or before)


def _abort_multipart(settings: Settings, s3, job: dict) -> None:
    try:
        s3.abort_multipart_upload(Bucket=settings.bucket, Key=job["key"], UploadId=job["upload_id"])
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") != "NoSuchUpload":
            raise

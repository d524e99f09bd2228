"""What the function does with an event: claim the job, check and fetch the upload, score it,
record the outcome.

- ``handle_event``: an SQS batch (each record holding an S3 notification) or a direct S3
  notification. SQS records that raise are reported in ``batchItemFailures``, so only they
  come back after the visibility timeout; for a direct event the exception propagates.
- ``process_upload``: one uploaded object. A bad upload (:mod:`inference.errors`) ends the job
  ``failed`` with its code and is acknowledged: retrying cannot fix the input. Anything else
  (storage or table unavailable, a bug) raises so the queue retries; on the last allowed
  receive the job is first marked ``failed`` (``processing_failed``), so it never stays
  ``processing`` after its message went to the dead-letter queue.
"""

from __future__ import annotations

import dataclasses
import enum
import tempfile
import time
from pathlib import Path
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from botocore.exceptions import ClientError

from divescore import aws
from divescore.events import Upload, is_sqs_event, uploads_in_s3_event, uploads_in_sqs_body
from divescore.jobs import JobStore, Stage
from divescore.settings import Settings
from inference import errors, filmstrip
from inference.scorer import Scorer, load_scorer
from inference.video import VideoLimits

logger = Logger(service="divescore-inference")

DOWNLOAD_SHARE = 0.1  # of the job's progress bar; decoding and scoring fill the rest
PROGRESS_INTERVAL_S = 0.5  # at most two progress writes a second


class Outcome(enum.StrEnum):
    IGNORED = "ignored"  # not an upload of ours
    DUPLICATE = "duplicate"  # the job is taken, finished or unknown: a repeated or late event
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # a bad upload, recorded as such
    LOST = "lost"  # our lease ran out and another worker took the job over


class ClaimLost(Exception):
    """The job's claim is no longer ours: stop, the worker that holds it finishes the job."""


@dataclasses.dataclass
class Services:
    """What processing needs, made once per runtime."""

    settings: Settings
    store: JobStore
    s3: Any
    scorer: Scorer
    tmp_dir: str | None = None  # where uploads are downloaded; None: the system's (/tmp on Lambda)

    @classmethod
    def create(cls, settings: Settings) -> Services:
        return cls(settings, JobStore.for_settings(settings), aws.client("s3", settings), load_scorer(settings))


# -- events -----------------------------------------------------------------------------

def handle_event(event: dict, services: Services, context=None) -> dict:
    if is_sqs_event(event):
        # Failures come back as batchItemFailures even when every record failed, so the
        # caller (Lambda's event source mapping or the local dispatcher) reads one shape.
        processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

        def record_handler(record):
            return process_record(record, services)

        return process_partial_response(event, record_handler=record_handler, processor=processor, context=context)
    uploads = uploads_in_s3_event(event)
    if not uploads:
        logger.info("no uploads in the event; nothing to do")
    return {"outcomes": [process_upload(upload, services) for upload in uploads]}


def process_record(record, services: Services) -> list[Outcome]:
    """One SQS message (Powertools ``SQSRecord``) holding an S3 notification."""
    receives = int(record.attributes.get("ApproximateReceiveCount") or 1)
    final_attempt = receives >= services.settings.max_receive_count
    return [process_upload(upload, services, final_attempt=final_attempt, receives=receives,
                           message_id=record.message_id)
            for upload in uploads_in_sqs_body(record.body)]


# -- one upload -------------------------------------------------------------------------

def process_upload(upload: Upload, services: Services, *, final_attempt: bool = False,
                   receives: int | None = None, message_id: str | None = None) -> Outcome:
    settings = services.settings
    job_id = settings.job_id_from_key(upload.key)
    if job_id is None or upload.bucket != settings.bucket:
        logger.info("ignoring s3://%s/%s: not an upload of this stack", upload.bucket, upload.key)
        return Outcome.IGNORED
    logger.append_keys(job_id=job_id)
    try:
        # The message's id lets its own redelivery take the job over (see JobStore.claim).
        job = services.store.claim(job_id, lease_seconds=settings.function_timeout_seconds,
                                   message_id=message_id, last_attempt=final_attempt)
        if job is None:
            logger.info("job is taken, finished or unknown: acknowledging a repeated or late event")
            return Outcome.DUPLICATE
        return _process_claimed(job, upload, services, final_attempt)
    except Exception:
        logger.exception("processing failed (receive %s)%s", receives or "?",
                         "; it was the last attempt" if final_attempt else "; the queue will retry it")
        raise
    finally:
        logger.remove_keys(["job_id"])


def _process_claimed(job: dict, upload: Upload, services: Services, final_attempt: bool) -> Outcome:
    job_id, claim = job["job_id"], job["claim"]
    logger.info("claimed (attempt %s)", job.get("attempts"))
    try:
        result = _score_upload(job, upload, services)
    except errors.BadInput as err:
        services.store.fail(job_id, err.code, err.message, claim=claim)
        logger.info("failed: %s: %s", err.code, err.message)
        return Outcome.FAILED
    except ClaimLost:
        logger.warning("lost the claim to another worker; stopping")
        return Outcome.LOST
    except Exception:
        if final_attempt:
            _give_up(job_id, claim, services)
        raise
    if not services.store.succeed(job_id, claim, result):
        logger.warning("lost the claim before recording the result; the worker holding it records its own")
        return Outcome.LOST
    logger.info("succeeded: score %.4f", result["score"], extra={"timings": result["timings"]})
    return Outcome.SUCCEEDED


def _score_upload(job: dict, upload: Upload, services: Services) -> dict:
    started = time.perf_counter()
    settings = services.settings
    progress = _ProgressWriter(services.store, job["job_id"], job["claim"])
    _check_object(upload, job, services)
    with tempfile.TemporaryDirectory(prefix="divescore-", dir=services.tmp_dir) as folder:
        path = Path(folder) / "video"
        t = time.perf_counter()
        services.s3.download_file(upload.bucket, upload.key, str(path))
        download_s = time.perf_counter() - t
        progress(Stage.DOWNLOADING, DOWNLOAD_SHARE)
        result = services.scorer.score(
            path, VideoLimits.from_settings(settings),
            on_progress=lambda stage, fraction: progress(stage, DOWNLOAD_SHARE + (1 - DOWNLOAD_SHARE) * fraction),
            entry_s=job.get("entry_s"),
        )
    record = {
        "score": result.score,
        "clip_scores": result.clip_scores,
        "frames": result.frames,
        "model": services.scorer.model_info,
        "video": result.video.as_dict(),
        "window": result.window.as_dict(),
        # Internal: score_service serves it as a short-lived pre-signed GET URL.
        "filmstrip_key": filmstrip.upload(services.s3, settings, job["job_id"], result.filmstrip),
    }
    if result.dive_probability is not None:
        record["dive_probability"] = result.dive_probability
    record["timings"] = {"download_s": round(download_s, 3), **result.timings,
                         "total_s": round(time.perf_counter() - started, 3)}
    return record


def _check_object(upload: Upload, job: dict, services: Services) -> None:
    """Turn away what cannot be scored before downloading it."""
    settings = services.settings
    try:
        head = services.s3.head_object(Bucket=upload.bucket, Key=upload.key)
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            raise errors.UploadMissing(
                "The uploaded video is no longer in storage (it expired or was removed). Create a new job."
            ) from None
        raise
    size = head["ContentLength"]
    if size > settings.max_upload_bytes:
        raise errors.FileTooLarge(
            f"The file is {size:,} bytes; the largest accepted upload is {settings.max_upload_bytes:,} bytes. "
            "Trim or compress the video and upload it again."
        )
    declared = job.get("size")
    if declared is not None and size > declared:
        raise errors.SizeMismatch(
            f"The uploaded file is {size:,} bytes but the job declared {declared:,}. Create a new job with the "
            "file's real size."
        )
    if size == 0:
        raise errors.NotAVideo("The uploaded file is empty. Upload the video again.")


def _give_up(job_id: str, claim: str, services: Services) -> None:
    try:
        services.store.fail(
            job_id, "processing_failed",
            f"Scoring failed {services.settings.max_receive_count} times because of an internal error, so the job "
            "was given up. Try again later; if it fails again, try another export of the video.",
            claim=claim,
        )
    except Exception:  # the original error matters more; the lease sweep will still catch the job
        logger.exception("could not record the failure")


class _ProgressWriter:
    """Writes stage and progress to the job, at most every ``PROGRESS_INTERVAL_S`` unless the
    stage changes; raises :class:`ClaimLost` when the job is no longer ours."""

    def __init__(self, store: JobStore, job_id: str, claim: str):
        self.store, self.job_id, self.claim = store, job_id, claim
        self.stage: Stage | None = Stage.DOWNLOADING  # what the claim wrote
        self.written_at = time.monotonic()

    def __call__(self, stage: Stage, progress: float) -> None:
        now = time.monotonic()
        if stage == self.stage and now - self.written_at < PROGRESS_INTERVAL_S:
            return
        if not self.store.progress(self.job_id, self.claim, stage=stage, progress=progress):
            raise ClaimLost()
        self.stage, self.written_at = stage, now

"""What the function does with an event: claim the job, check the upload, score it straight
from storage (ranged reads of only the parts the clips need), record the outcome.

- ``handle_event``: an SQS batch (each record holding an S3 notification) or a direct S3
  notification. An SQS record that raises first has its message's visibility set to a short
  retry delay (seconds, doubling per receive), then is reported in ``batchItemFailures``, so
  only it comes back, and soon; for a direct event the exception propagates.
- ``process_upload``: one uploaded object. A bad upload (:mod:`inference.errors`) ends the job
  ``failed`` with its code and is acknowledged: retrying cannot fix the input. Anything else
  (storage or table unavailable, a bug) raises so the queue retries; the job reads ``queued``
  with the retry's time and attempt meanwhile. On the last allowed receive the job is first
  marked ``failed`` (``processing_failed``), so it never stays ``processing`` after its
  message went to the dead-letter queue.
- A canceled job: its event is acknowledged and its upload deleted (an upload that landed
  after the cancel); a worker scoring it finds out at its next check (every half second while
  it decodes, and after each clip) and stops without writing a score.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import time
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from botocore.exceptions import ClientError

from divescore import aws
from divescore.events import Upload, is_sqs_event, uploads_in_s3_event, uploads_in_sqs_body
from divescore.jobs import JobStore, Stage, Status
from divescore.settings import Settings
from inference import errors, filmstrip
from inference.scorer import Scorer, load_scorer
from inference.storage import RangedObject
from inference.video import VideoLimits

logger = Logger(service="divescore-inference")

OPEN_SHARE = 0.1  # of the job's progress bar: checking and opening the upload; decoding and scoring fill the rest
PROGRESS_INTERVAL_S = 0.5  # at most two progress writes a second


class Outcome(enum.StrEnum):
    IGNORED = "ignored"  # not an upload of ours
    DUPLICATE = "duplicate"  # the job is taken, finished or unknown: a repeated or late event
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # a bad upload, recorded as such
    LOST = "lost"  # our lease ran out and another worker took the job over
    CANCELED = "canceled"  # the job was canceled: stopped, or never started


class ClaimLost(Exception):
    """The job's claim is no longer ours: stop, the worker that holds it finishes the job."""


@dataclasses.dataclass
class Services:
    """What processing needs, made once per runtime."""

    settings: Settings
    store: JobStore
    s3: Any
    scorer: Scorer
    sqs: Any = None  # None: the shared client, made when a retry first needs it

    @classmethod
    def create(cls, settings: Settings) -> Services:
        return cls(settings, JobStore.for_settings(settings), aws.client("s3", settings), load_scorer(settings))

    def queue_client(self):
        return self.sqs or aws.client("sqs", self.settings)


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
    try:
        return [process_upload(upload, services, final_attempt=final_attempt, receives=receives,
                               message_id=record.message_id)
                for upload in uploads_in_sqs_body(record.body)]
    except Exception:
        _retry_soon(record, receives, services)
        raise


def _retry_soon(record, receives: int, services: Services) -> None:
    """Make the failed message visible again after the retry delay instead of the whole
    visibility timeout (Lambda's event source mapping and the dispatcher leave a message
    reported in batchItemFailures as it is)."""
    delay = services.settings.retry_delay(receives)
    try:
        sqs = services.queue_client()
        _, _, _, _, account, name = record.event_source_arn.split(":", 5)
        url = sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=record.receipt_handle, VisibilityTimeout=delay)
    except Exception:  # the queue's own visibility timeout still brings the message back
        logger.exception("could not set the retry delay; the message comes back after the visibility timeout")
        return
    logger.info("message %s comes back in %d s (receive %d failed)", record.message_id, delay, receives)


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
                                   message_id=message_id, last_attempt=final_attempt,
                                   attempt=receives, max_attempts=settings.max_receive_count)
        if job is None:
            if _canceled(job_id, services):
                _delete_upload(upload, services)
                logger.info("job was canceled: acknowledging its event and deleting the upload")
                return Outcome.CANCELED
            logger.info("job is taken, finished or unknown: acknowledging a repeated or late event")
            return Outcome.DUPLICATE
        return _process_claimed(job, upload, services, final_attempt, receives)
    except Exception:
        logger.exception("processing failed (receive %s)%s", receives or "?",
                         "; it was the last attempt" if final_attempt else "; the queue will retry it")
        raise
    finally:
        logger.remove_keys(["job_id"])


def _process_claimed(job: dict, upload: Upload, services: Services, final_attempt: bool,
                     receives: int | None = None) -> Outcome:
    job_id, claim = job["job_id"], job["claim"]
    logger.info("claimed (attempt %s)", job.get("attempts"))
    progress = _ProgressWriter(services.store, job_id, claim)
    try:
        result = _score_upload(job, upload, services, progress)
    except errors.BadInput as err:
        services.store.fail(job_id, err.code, err.message, claim=claim)
        logger.info("failed: %s: %s", err.code, err.message)
        return Outcome.FAILED
    except ClaimLost:
        return _claim_lost(job_id, services, progress.fraction)
    except Exception as err:
        if final_attempt:
            _give_up(job_id, claim, services)
        elif receives is not None:
            _record_retry(job_id, claim, receives, err, services)
        raise
    if not services.store.succeed(job_id, claim, result):
        return _claim_lost(job_id, services, 1.0)
    logger.info("succeeded: score %.4f", result["score"], extra={"timings": result["timings"]})
    return Outcome.SUCCEEDED


def _claim_lost(job_id: str, services: Services, fraction: float) -> Outcome:
    if _canceled(job_id, services):
        logger.info("canceled at progress %.2f; stopped without a score", fraction,
                    extra={"canceled_at_progress": fraction})
        return Outcome.CANCELED
    logger.warning("lost the claim to another worker; stopping (the worker holding it records the result)")
    return Outcome.LOST


def _canceled(job_id: str, services: Services) -> bool:
    job = services.store.get(job_id)
    return job is not None and job.get("status") == Status.CANCELED


def _delete_upload(upload: Upload, services: Services) -> None:
    try:
        services.s3.delete_object(Bucket=upload.bucket, Key=upload.key)
    except ClientError:  # the upload expires with the bucket's lifecycle rule anyway
        logger.exception("could not delete the canceled job's upload")


def _record_retry(job_id: str, claim: str, receives: int, err: Exception, services: Services) -> None:
    """Show the person waiting that this attempt failed and when the next one comes."""
    settings = services.settings
    try:
        services.store.retry_later(
            job_id, claim, at=services.store.clock() + settings.retry_delay(receives), attempt=receives + 1,
            max_attempts=settings.max_receive_count, code="attempt_failed",
            message=f"Attempt {receives} of {settings.max_receive_count} failed ({err.__class__.__name__}); "
                    "it is retried shortly.",
        )
    except Exception:  # the table itself may be what failed; the retry comes all the same
        logger.exception("could not record the retry")


def _score_upload(job: dict, upload: Upload, services: Services, progress: _ProgressWriter) -> dict:
    started = time.perf_counter()
    settings = services.settings
    size = _check_object(upload, job, services)
    with contextlib.closing(RangedObject(services.s3, upload.bucket, upload.key, size)) as video:
        try:
            result = services.scorer.score(
                video, VideoLimits.from_settings(settings),
                on_progress=lambda stage, fraction: progress(stage, OPEN_SHARE + (1 - OPEN_SHARE) * fraction),
                entry_s=job.get("entry_s"),
            )
        except errors.BadInput:
            if video.failure is not None:  # storage failed under the decoder: not the file's fault
                raise video.failure from None
            raise
    record = {
        "score": result.score,
        "clip_scores": result.clip_scores,
        "frames": result.frames,
        "model": services.scorer.model_info,
        "video": result.video.as_dict(),
        "window": result.window.as_dict(),
        "entries": [found.as_dict() for found in result.entries],
        # Internal: services.status_api serves it as a short-lived pre-signed GET URL.
        "filmstrip_key": filmstrip.upload(services.s3, settings, job["job_id"], result.filmstrip),
    }
    if result.dive_probability is not None:
        record["dive_probability"] = result.dive_probability
    record["timings"] = {**result.timings, "total_s": round(time.perf_counter() - started, 3)}
    # Internal: how much of the object decoding read, and how.
    record["read"] = {"bytes": video.bytes_read, "requests": video.requests, "object_bytes": size,
                      **dataclasses.asdict(result.read), "detect_decoded": result.detect_read.decoded,
                      "detect_seeks": result.detect_read.seeks}
    return record


def _check_object(upload: Upload, job: dict, services: Services) -> int:
    """Turn away what cannot be scored before reading it; returns the object's size.
    (A HEAD needs only ``s3:GetObject``.)"""
    settings = services.settings
    try:
        head = services.s3.head_object(Bucket=upload.bucket, Key=upload.key)
    except ClientError as err:
        # Without s3:ListBucket (the role has none: it needs none), S3 answers 403, not 404, for
        # a key that does not exist; the role may read every upload, so 403 means missing too.
        if err.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound", "403", "AccessDenied"):
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
    return size


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
    stage changes; raises :class:`ClaimLost` when the job is no longer ours (canceled, or
    taken over). Called for every decoded frame too: when nothing changed since the last
    write it only reads the job, so a cancel is noticed within the interval without a write
    (which would wake every waiting client)."""

    def __init__(self, store: JobStore, job_id: str, claim: str):
        self.store, self.job_id, self.claim = store, job_id, claim
        self.stage: Stage | None = Stage.DOWNLOADING  # what the claim wrote
        self.written: tuple[Stage, float] | None = None
        self.checked_at = time.monotonic()
        self.fraction = 0.0  # the last progress reported

    def __call__(self, stage: Stage, progress: float) -> None:
        now = time.monotonic()
        self.fraction = progress
        if stage == self.stage and now - self.checked_at < PROGRESS_INTERVAL_S:
            return
        if self.written == (stage, progress):
            ours = self.store.holds(self.job_id, self.claim)
        else:
            ours = self.store.progress(self.job_id, self.claim, stage=stage, progress=progress)
            self.written = (stage, progress)
        if not ours:
            raise ClaimLost()
        self.stage, self.checked_at = stage, now

"""The job record and its lifecycle: the only module that writes ``status``.

Status moves only forward (``awaiting_upload → queued → processing → succeeded | failed``)
and every transition is a conditional write, so a duplicate or late event never overwrites a
finished job and two workers never both process one job.

A worker that claims a job gets a ``claim`` token and a lease as long as the function
timeout. Progress and the final result are written only while the token matches, so a worker
that lost its lease (killed, timed out) cannot overwrite the work of the one that took over.
"""

from __future__ import annotations

import enum
import secrets
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

JOB_ID_BYTES = 16  # 128 random bits
JOB_ID_CHARS = 32  # hex


class Status(enum.StrEnum):
    AWAITING_UPLOAD = "awaiting_upload"
    QUEUED = "queued"
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def final(self) -> bool:
        return self in (Status.SUCCEEDED, Status.FAILED)


class Stage(enum.StrEnum):
    DOWNLOADING = "downloading"
    DECODING = "decoding"
    SCORING = "scoring"


# What a client may see. Everything else (key, upload id, claim, lease, attempts) stays inside.
PUBLIC_FIELDS = (
    "job_id", "status", "stage", "progress", "score", "clip_scores", "frames", "error", "model",
    "filename", "size", "content_type", "created_at", "updated_at", "expires_at", "timings",
    "window", "entry_s", "rescore_of",
)


def new_job_id() -> str:
    return secrets.token_hex(JOB_ID_BYTES)


def is_job_id(value: str) -> bool:
    return len(value) == JOB_ID_CHARS and all(c in "0123456789abcdef" for c in value)


def now_iso(clock=time.time) -> str:
    return datetime.fromtimestamp(clock(), UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def to_dynamo(value: Any) -> Any:
    """floats → Decimal, recursively (DynamoDB has no float type)."""
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {k: to_dynamo(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_dynamo(v) for v in value]
    return value


def from_dynamo(value: Any) -> Any:
    """Decimal → int or float, recursively."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_dynamo(v) for v in value]
    return value


def public_view(job: dict) -> dict:
    return {k: job[k] for k in PUBLIC_FIELDS if k in job}


class JobStore:
    """Job records in one DynamoDB table, reached through a boto3 ``Table`` resource.

    ``table`` is a ``Table``, or a function returning one: boto3 resources are not thread
    safe, so a store shared by threads (gunicorn's gthread workers) takes
    ``lambda: aws.table(settings)``, which gives each thread its own (see ``for_settings``).
    """

    def __init__(self, table, *, clock=time.time):
        self._table = table
        self.clock = clock

    @classmethod
    def for_settings(cls, settings, **kwargs) -> JobStore:
        from divescore import aws

        return cls(lambda: aws.table(settings), **kwargs)

    @property
    def table(self):
        return self._table() if callable(self._table) else self._table

    # -- reads -------------------------------------------------------------------------

    def get(self, job_id: str) -> dict | None:
        """The job, or None when it does not exist or has expired (the TTL sweep is lazy)."""
        if not is_job_id(job_id):
            return None
        item = self.table.get_item(Key={"job_id": job_id}, ConsistentRead=True).get("Item")
        if item is None:
            return None
        job = from_dynamo(item)
        if job.get("expires_at", float("inf")) <= self.clock():
            return None
        return job

    # -- transitions -------------------------------------------------------------------

    def create(self, *, job_id: str, filename: str, content_type: str, size: int, key: str,
               ttl_seconds: int, upload_id: str | None = None, entry_s: float | None = None,
               rescore_of: str | None = None) -> dict:
        now = self.clock()
        job = {
            "job_id": job_id,
            "status": Status.AWAITING_UPLOAD.value,
            "filename": filename,
            "content_type": content_type,
            "size": size,
            "key": key,
            "attempts": 0,
            "created_at": now_iso(lambda: now),
            "updated_at": now_iso(lambda: now),
            "expires_at": int(now + ttl_seconds),
        }
        if upload_id:
            job["upload_id"] = upload_id
        if entry_s is not None:  # score the window ending there (see inference.window)
            job["entry_s"] = entry_s
        if rescore_of:  # a "score from here" job, reading a copy of that job's upload
            job["rescore_of"] = rescore_of
        self.table.put_item(Item=to_dynamo(job), ConditionExpression="attribute_not_exists(job_id)")
        return job

    def mark_queued(self, job_id: str) -> bool:
        """awaiting_upload → queued, once the upload has landed. False if it had moved on."""
        return self._update(
            job_id,
            set_={"status": Status.QUEUED.value},
            condition="#status = :from",
            values={":from": Status.AWAITING_UPLOAD.value},
        )

    def claim(self, job_id: str, *, lease_seconds: int, message_id: str | None = None,
              last_attempt: bool = False) -> dict | None:
        """→ processing, for one worker. Returns the job with its ``claim`` token, or None.

        A job can be claimed when it waits for a worker, or when the worker that held it
        stopped (its lease ran out: killed, timed out) so the queue's retry may take over.

        ``message_id``: the queue message being processed. The same message delivered again
        means its earlier invocation is over (the queue hands a message out again only once
        the consumer gave up on it), so it takes the job over even while that invocation's
        lease runs: a lease that started late (a slow cold start) must not make the retry
        look like a duplicate, which would be acknowledged and leave the job ``processing``.
        ``last_attempt``: no retry follows this one (see :meth:`fail_if_abandoned`).
        """
        now = self.clock()
        token = secrets.token_hex(8)
        values = {
            ":processing": Status.PROCESSING.value,
            ":awaiting": Status.AWAITING_UPLOAD.value,
            ":queued": Status.QUEUED.value,
            ":token": token,
            ":lease": now + lease_seconds,
            ":now": now_iso(lambda: now),
            ":now_epoch": now,
            ":zero": 0,
            ":one": 1,
            ":stage": Stage.DOWNLOADING.value,
            ":last": last_attempt,
        }
        if message_id:
            values[":message"] = message_id
            record_message, takeover, forget = ", claim_message = :message", " OR claim_message = :message", ""
        else:
            record_message, takeover, forget = "", "", ", claim_message"
        try:
            item = self.table.update_item(
                Key={"job_id": job_id},
                UpdateExpression=(
                    "SET #status = :processing, claim = :token, lease_expires_at = :lease, "
                    "updated_at = :now, attempts = if_not_exists(attempts, :zero) + :one, "
                    f"stage = :stage, progress = :zero, last_attempt = :last{record_message} "
                    f"REMOVE #error{forget}"
                ),
                ConditionExpression=(
                    "attribute_exists(job_id) AND expires_at > :now_epoch AND "
                    "(#status IN (:awaiting, :queued) OR (#status = :processing AND "
                    f"(lease_expires_at < :now_epoch{takeover})))"
                ),
                ExpressionAttributeNames={"#status": "status", "#error": "error"},
                ExpressionAttributeValues=to_dynamo(values),
                ReturnValues="ALL_NEW",
            )
        except ClientError as err:
            if _condition_failed(err):
                return None
            raise
        return from_dynamo(item["Attributes"])

    def progress(self, job_id: str, claim: str, *, stage: Stage, progress: float) -> bool:
        return self._update(
            job_id,
            set_={"stage": stage.value, "progress": round(min(max(progress, 0.0), 1.0), 4)},
            condition="#status = :processing AND claim = :claim",
            values={":processing": Status.PROCESSING.value, ":claim": claim},
        )

    def succeed(self, job_id: str, claim: str, result: dict) -> bool:
        """processing → succeeded with ``result`` (score, clip_scores, frames, model, timings...)."""
        fields = {**result, "status": Status.SUCCEEDED.value, "progress": 1.0}
        return self._update(
            job_id,
            set_=fields,
            remove=("stage", "lease_expires_at"),
            condition="#status = :processing AND claim = :claim",
            values={":processing": Status.PROCESSING.value, ":claim": claim},
        )

    def fail(self, job_id: str, code: str, message: str, *, claim: str | None = None) -> bool:
        """→ failed with an error a person can act on. With ``claim``, only for that worker's job;
        without it, from any status that is not final yet."""
        error = {"code": code, "message": message}
        if claim is not None:
            condition = "#status = :processing AND claim = :claim"
            values = {":processing": Status.PROCESSING.value, ":claim": claim}
        else:
            condition = "attribute_exists(job_id) AND NOT #status IN (:succeeded, :failed)"
            values = {":succeeded": Status.SUCCEEDED.value, ":failed": Status.FAILED.value}
        return self._update(
            job_id,
            set_={"status": Status.FAILED.value, "error": error},
            remove=("lease_expires_at",),
            condition=condition,
            values=values,
        )

    def fail_if_abandoned(self, job: dict, *, max_attempts: int) -> dict:
        """A job whose worker stopped on its last allowed attempt will never be retried (its
        message went to the dead-letter queue): record that, so it does not stay ``processing``.
        The last attempt is the ``max_attempts``-th claim, or one made on the message's last
        receive (earlier receives may have failed before they could claim)."""
        if (
            job.get("status") == Status.PROCESSING
            and (job.get("attempts", 0) >= max_attempts or job.get("last_attempt") is True)
            and job.get("lease_expires_at", float("inf")) < self.clock()
        ):
            self.fail(
                job["job_id"],
                "worker_lost",
                f"The scoring function stopped before finishing ({job['attempts']} attempt(s)); the job was "
                "given up. Try again with a shorter or smaller video.",
            )
            return self.get(job["job_id"]) or job
        return job

    # -- plumbing ----------------------------------------------------------------------

    def _update(self, job_id: str, *, set_: dict, condition: str, values: dict,
                remove: tuple[str, ...] = ()) -> bool:
        set_ = {**set_, "updated_at": now_iso(self.clock)}
        names = {"#status": "status"}
        assignments = []
        for i, (field, value) in enumerate(set_.items()):
            names[f"#f{i}"] = field
            values[f":v{i}"] = value
            assignments.append(f"#f{i} = :v{i}")
        expression = "SET " + ", ".join(assignments)
        if remove:
            for j, field in enumerate(remove):
                names[f"#r{j}"] = field
            expression += " REMOVE " + ", ".join(f"#r{j}" for j in range(len(remove)))
        try:
            self.table.update_item(
                Key={"job_id": job_id},
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=to_dynamo(values),
            )
        except ClientError as err:
            if _condition_failed(err):
                return False
            raise
        return True


def _condition_failed(err: ClientError) -> bool:
    return err.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"

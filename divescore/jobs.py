"""The job record and its lifecycle: the only module that writes ``status``.

Which status may follow which is one table, :data:`TRANSITIONS`; every change of status is a
conditional write (:meth:`JobStore._transition`) naming the status it expects, so a duplicate
or late event never overwrites a finished job and two workers never both process one job.
Reads never write.

A worker that claims a job gets a ``claim`` token and a lease as long as the function
timeout. Progress and the final result are written only while the token matches, so a worker
that lost its lease (killed, timed out) or whose job was canceled cannot overwrite anything.
"""

from __future__ import annotations

import enum
import json
import logging
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
    CANCELED = "canceled"

    @property
    def final(self) -> bool:
        return not TRANSITIONS[self]


# The lifecycle. awaiting_upload → processing: the function claims a job straight from its
# upload's event. processing → processing: a retry takes over a job whose worker stopped.
# processing → queued: a failed attempt waits for its retry.
TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.AWAITING_UPLOAD: frozenset({Status.QUEUED, Status.PROCESSING, Status.FAILED, Status.CANCELED}),
    Status.QUEUED: frozenset({Status.PROCESSING, Status.FAILED, Status.CANCELED}),
    Status.PROCESSING: frozenset({Status.PROCESSING, Status.QUEUED, Status.SUCCEEDED, Status.FAILED,
                                  Status.CANCELED}),
    Status.SUCCEEDED: frozenset(),
    Status.FAILED: frozenset(),
    Status.CANCELED: frozenset(),
}
FINAL = tuple(status for status in Status if not TRANSITIONS[status])


class JobFinal(Exception):
    """The job has already ended (``status``); it cannot be changed any more."""

    def __init__(self, status: Status):
        super().__init__(status)
        self.status = status


class Stage(enum.StrEnum):
    DOWNLOADING = "downloading"
    DECODING = "decoding"
    SCORING = "scoring"


# What a client may see. Everything else (key, upload id, claim, lease, attempts) stays inside.
PUBLIC_FIELDS = (
    "job_id", "status", "stage", "progress", "score", "clip_scores", "frames", "error", "model",
    "filename", "size", "content_type", "created_at", "updated_at", "expires_at", "timings",
    "window", "entries", "entry_s", "rescore_of", "attempt", "retry", "callback",
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

    def __init__(self, table, *, clock=time.time, on_final=None):
        self._table = table
        self.clock = clock
        # Called with the job id after a job with a callback ended (the webhook is sent from there).
        self.on_final = on_final

    @classmethod
    def for_settings(cls, settings, **kwargs) -> JobStore:
        from divescore import aws

        def queue_callback(job_id: str) -> None:
            sqs = aws.client("sqs", settings)
            url = aws.queue_url(settings, settings.callbacks_queue)
            sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"job_id": job_id}))

        return cls(lambda: aws.table(settings), on_final=queue_callback, **kwargs)

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

    def holds(self, job_id: str, claim: str) -> bool:
        """Whether the job is still ``processing`` under ``claim`` (not canceled, not taken over)."""
        item = self.table.get_item(Key={"job_id": job_id}, ConsistentRead=True,
                                   ProjectionExpression="#status, claim",
                                   ExpressionAttributeNames={"#status": "status"}).get("Item") or {}
        return item.get("status") == Status.PROCESSING and item.get("claim") == claim

    # -- transitions -------------------------------------------------------------------

    def create(self, *, job_id: str, filename: str, content_type: str, size: int, key: str,
               ttl_seconds: int, upload_id: str | None = None, entry_s: float | None = None,
               rescore_of: str | None = None, callback_url: str | None = None) -> dict:
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
        if callback_url:
            job["callback"] = {"url": callback_url, "state": "pending", "attempts": []}
        self.table.put_item(Item=to_dynamo(job), ConditionExpression="attribute_not_exists(job_id)")
        return job

    def mark_queued(self, job_id: str) -> bool:
        """awaiting_upload → queued, once the upload has landed. False if it had moved on."""
        return self._transition(job_id, Status.QUEUED, expected=(Status.AWAITING_UPLOAD,))

    def claim(self, job_id: str, *, lease_seconds: int, message_id: str | None = None,
              last_attempt: bool = False, attempt: int | None = None, max_attempts: int | None = None
              ) -> dict | None:
        """→ processing, for one worker. Returns the job with its ``claim`` token, or None.

        A job can be claimed when it waits for a worker, or when the worker that held it
        stopped (its lease ran out: killed, timed out) so the queue's retry may take over.

        ``message_id``: the queue message being processed. The same message delivered again
        means its earlier invocation is over (the queue hands a message out again only once
        the consumer gave up on it), so it takes the job over even while that invocation's
        lease runs: a lease that started late (a slow cold start) must not make the retry
        look like a duplicate, which would be acknowledged and leave the job ``processing``.
        ``last_attempt``: no retry follows this one (see :meth:`fail_abandoned`).
        ``attempt`` of ``max_attempts``: the message's receive, shown to the person waiting.
        """
        now = self.clock()
        token = secrets.token_hex(8)
        set_ = {
            "claim": token, "lease_expires_at": now + lease_seconds, "stage": Stage.DOWNLOADING.value,
            "progress": 0, "last_attempt": last_attempt,
        }
        if attempt is not None and max_attempts is not None:
            set_["attempt"] = {"number": attempt, "of": max_attempts}
        if message_id:
            set_["claim_message"] = message_id
            takeover, values = " OR claim_message = :message", {":message": message_id}
        else:
            takeover, values = "", {}
        values.update({":now_epoch": now, ":processing": Status.PROCESSING.value})
        return self._transition(
            job_id, Status.PROCESSING,
            expected=(Status.AWAITING_UPLOAD, Status.QUEUED, Status.PROCESSING),
            condition=("expires_at > :now_epoch AND (#status <> :processing OR "
                       f"lease_expires_at < :now_epoch{takeover})"),
            values=values, set_=set_, add={"attempts": 1},
            remove=("error", "retry") + (() if message_id else ("claim_message",)),
            returning=True,
        )

    def progress(self, job_id: str, claim: str, *, stage: Stage, progress: float) -> bool:
        """Not a change of status: written only while the job is ``processing`` under ``claim``
        (False: the claim is lost, or the job was canceled)."""
        return self._update(
            job_id,
            set_={"stage": stage.value, "progress": round(min(max(progress, 0.0), 1.0), 4)},
            condition="#status = :processing AND claim = :claim",
            values={":processing": Status.PROCESSING.value, ":claim": claim},
        )

    def succeed(self, job_id: str, claim: str, result: dict) -> bool:
        """processing → succeeded with ``result`` (score, clip_scores, frames, model, timings...)."""
        return self._transition(
            job_id, Status.SUCCEEDED, expected=(Status.PROCESSING,), claim=claim,
            set_={**result, "progress": 1.0}, remove=("stage", "lease_expires_at"),
        )

    def retry_later(self, job_id: str, claim: str, *, at: float, attempt: int, max_attempts: int,
                    code: str, message: str) -> bool:
        """processing → queued: this attempt failed and the queue brings the job back at ``at``
        (epoch seconds) for attempt ``attempt`` of ``max_attempts``."""
        retry = {"at": now_iso(lambda: at), "attempt": attempt, "of": max_attempts,
                 "error": {"code": code, "message": message}}
        return self._transition(
            job_id, Status.QUEUED, expected=(Status.PROCESSING,), claim=claim,
            set_={"retry": retry}, remove=("stage", "progress", "lease_expires_at"),
        )

    def fail(self, job_id: str, code: str, message: str, *, claim: str | None = None,
             expected: tuple[Status, ...] = (Status.AWAITING_UPLOAD,)) -> bool:
        """→ failed with an error a person can act on. With ``claim``, only for that worker's
        job (``processing``); without it, only from the ``expected`` statuses."""
        return self._transition(
            job_id, Status.FAILED, expected=(Status.PROCESSING,) if claim is not None else expected, claim=claim,
            set_={"error": {"code": code, "message": message}}, remove=("lease_expires_at", "retry"),
        )

    def cancel(self, job_id: str) -> dict | None:
        """→ canceled, from any status that is not final. Returns the job as it was just
        before (its status says what there was to stop), or None for no such job. Raises
        :class:`JobFinal` for a job that already succeeded or failed; canceling a canceled
        job changes nothing and returns it."""
        while True:
            job = self.get(job_id)
            if job is None:
                return None
            status = Status(job["status"])
            if status is Status.CANCELED:
                return job
            if status.final:
                raise JobFinal(status)
            # Expect exactly the status just read: if it moved on meanwhile, read again.
            if self._transition(job_id, Status.CANCELED, expected=(status,),
                                remove=("lease_expires_at", "stage", "retry")):
                return job

    def fail_abandoned(self, job_id: str, claim: str, *, attempts: int) -> bool:
        """processing → failed (``worker_lost``) for a job whose worker stopped on its last
        allowed attempt (its lease ran out): no retry will come, its message went to the
        dead-letter queue. Called by the sweep, for the claim it found."""
        return self._transition(
            job_id, Status.FAILED, expected=(Status.PROCESSING,), claim=claim,
            condition="lease_expires_at < :now_epoch", values={":now_epoch": self.clock()},
            set_={"error": {"code": "worker_lost", "message": (
                f"The scoring function stopped before finishing ({attempts} attempt(s)); the job was given up. "
                "Try again with a shorter or smaller video.")}},
            remove=("lease_expires_at", "stage"),
        )

    def unsent_callbacks(self, *, older_than_seconds: float) -> list[str]:
        """Ended jobs whose webhook was never queued (the queue was unreachable as they ended):
        still ``pending`` this long after their end."""
        finals = {f":final{i}": status.value for i, status in enumerate(FINAL)}
        return [item["job_id"] for item in self._scan(
            FilterExpression=(f"#cb.#state = :pending AND #status IN ({', '.join(finals)}) AND updated_at < :before"),
            ProjectionExpression="job_id",
            ExpressionAttributeNames={"#cb": "callback", "#state": "state", "#status": "status"},
            ExpressionAttributeValues={**finals, ":pending": "pending",
                                       ":before": now_iso(lambda: self.clock() - older_than_seconds)},
        )]

    def abandoned(self, *, max_attempts: int) -> list[dict]:
        """Jobs whose worker stopped on their last allowed attempt: ``processing``, lease run
        out, and the last claim was the ``max_attempts``-th or made on the message's last
        receive (earlier receives may have failed before they could claim). A scan: only
        jobs being processed hold a lease, and the sweep runs once a minute."""
        now = self.clock()
        kwargs = {
            "FilterExpression": ("#status = :processing AND lease_expires_at < :now AND "
                                 "(attempts >= :max OR last_attempt = :true)"),
            "ProjectionExpression": "job_id, claim, attempts",
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": to_dynamo({":processing": Status.PROCESSING.value, ":now": now,
                                                    ":max": max_attempts, ":true": True}),
            "ConsistentRead": True,
        }
        return self._scan(**kwargs)

    def _scan(self, **kwargs) -> list[dict]:
        found = []
        while True:
            page = self.table.scan(**kwargs)
            found += [from_dynamo(item) for item in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                return found
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def record_callback(self, job_id: str, attempt: dict, *, state: str) -> bool:
        """Not a change of status: one delivery attempt of an ended job's webhook, and the
        delivery's state (``retrying``, ``delivered``, ``failed``)."""
        finals = {f":final{i}": status.value for i, status in enumerate(FINAL)}
        try:
            self.table.update_item(
                Key={"job_id": job_id},
                UpdateExpression=("SET #cb.#attempts = list_append(if_not_exists(#cb.#attempts, :none), :attempt), "
                                  "#cb.#state = :state"),
                ConditionExpression=f"attribute_exists(#cb) AND #status IN ({', '.join(finals)})",
                ExpressionAttributeNames={"#cb": "callback", "#attempts": "attempts", "#state": "state",
                                          "#status": "status"},
                ExpressionAttributeValues=to_dynamo({**finals, ":attempt": [attempt], ":none": [], ":state": state}),
            )
        except ClientError as err:
            if _condition_failed(err):
                return False
            raise
        return True

    # -- plumbing ----------------------------------------------------------------------

    def _transition(self, job_id: str, to: Status, *, expected: tuple[Status, ...], claim: str | None = None,
                    condition: str = "", values: dict | None = None, set_: dict | None = None,
                    add: dict | None = None, remove: tuple[str, ...] = (), returning: bool = False):
        """The one write of ``status``: ``expected`` → ``to``, each move checked against
        :data:`TRANSITIONS`, as a conditional write (with ``claim``: only that worker's).
        Returns whether it happened (``returning``: the new job, or None)."""
        for status in expected:
            if to not in TRANSITIONS[status]:
                raise ValueError(f"a job cannot go from {status} to {to}")
        values = dict(values or {})
        names = [f":expected{i}" for i in range(len(expected))]
        values.update({name: status.value for name, status in zip(names, expected, strict=True)})
        conditions = ["attribute_exists(job_id)", f"#status IN ({', '.join(names)})"]
        if claim is not None:
            conditions.append("claim = :claim")
            values[":claim"] = claim
        if condition:
            conditions.append(f"({condition})")
        notify = to.final and self.on_final is not None
        job = self._update(job_id, set_={**(set_ or {}), "status": to.value}, add=add, remove=remove,
                           condition=" AND ".join(conditions), values=values, returning=returning or notify)
        if notify and job and job.get("callback"):
            try:
                self.on_final(job_id)
            except Exception:  # the job's end is recorded; the sweep queues its webhook again
                logging.getLogger("divescore.jobs").exception("could not queue the webhook of job %s", job_id)
        return job if returning else bool(job)

    def _update(self, job_id: str, *, set_: dict, condition: str, values: dict, add: dict | None = None,
                remove: tuple[str, ...] = (), returning: bool = False):
        set_ = {**set_, "updated_at": now_iso(self.clock)}
        names = {"#status": "status"}
        values = dict(values)
        assignments = []
        for i, (field, value) in enumerate(set_.items()):
            names[f"#f{i}"] = field
            values[f":v{i}"] = value
            assignments.append(f"#f{i} = :v{i}")
        for i, (field, amount) in enumerate((add or {}).items()):
            names[f"#a{i}"] = field
            values[f":a{i}"], values[":zero"] = amount, 0
            assignments.append(f"#a{i} = if_not_exists(#a{i}, :zero) + :a{i}")
        expression = "SET " + ", ".join(assignments)
        if remove:
            for j, field in enumerate(remove):
                names[f"#r{j}"] = field
            expression += " REMOVE " + ", ".join(f"#r{j}" for j in range(len(remove)))
        try:
            answer = self.table.update_item(
                Key={"job_id": job_id},
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=to_dynamo(values),
                ReturnValues="ALL_NEW" if returning else "NONE",
            )
        except ClientError as err:
            if _condition_failed(err):
                return None if returning else False
            raise
        return from_dynamo(answer["Attributes"]) if returning else True


def _condition_failed(err: ClientError) -> bool:
    return err.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"

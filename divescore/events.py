"""Reading the events that start a job: S3 notifications, direct or wrapped in SQS messages.

Read through Powertools' event classes. S3 sends keys URL-encoded (a space as ``+``); we decode
them with ``unquote_plus`` (Powertools' per-record ``key`` does not).
"""

from __future__ import annotations

import dataclasses
import json
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.data_classes import S3Event, SQSEvent

# Copy: a "score from here" job's video, copied from its first job's upload (services.jobs_api.uploads.rescore)
UPLOAD_EVENTS = ("ObjectCreated:Put", "ObjectCreated:Post", "ObjectCreated:CompleteMultipartUpload",
                 "ObjectCreated:Copy")


@dataclasses.dataclass(frozen=True)
class Upload:
    """One uploaded object that may start a job."""

    bucket: str
    key: str
    size: int | None
    event_name: str


def is_sqs_event(event: dict) -> bool:
    records = event.get("Records") or []
    return bool(records) and records[0].get("eventSource") == "aws:sqs"


def uploads_in_s3_event(event: dict) -> list[Upload]:
    """The object-created records of an S3 notification. A test event has none."""
    if event.get("Event") == "s3:TestEvent" or "Records" not in event:
        return []
    uploads = []
    for record in S3Event(event).records:
        name = record.event_name
        if name not in UPLOAD_EVENTS:
            continue
        obj = record.s3.get_object
        # Notifications carry keys URL-encoded ("uploads%2F..."); Powertools decodes only S3Event.object_key.
        key = unquote_plus(obj.key)
        uploads.append(Upload(bucket=record.s3.bucket.name, key=key, size=obj.get("size"), event_name=name))
    return uploads


def uploads_in_sqs_body(body: str) -> list[Upload]:
    """The uploads named by one SQS message body (an S3 notification as JSON)."""
    try:
        payload = json.loads(body)
    except (TypeError, ValueError):
        return []
    return uploads_in_s3_event(payload) if isinstance(payload, dict) else []


def sqs_records(event: dict):
    return SQSEvent(event).records

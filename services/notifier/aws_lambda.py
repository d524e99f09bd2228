"""AWS Lambda entry point: handler ``services.notifier.aws_lambda.handler``, the callbacks
queue's event source mapping."""

from __future__ import annotations

import json

from divescore import aws
from divescore.jobs import JobStore
from divescore.settings import load
from divescore.webhooks import load_secret, signer
from services.notifier.notify import notify


def handler(event, context) -> dict:
    """AWS: the callbacks queue's event source mapping. A retry sets its message's visibility
    to the backoff, then is reported in batchItemFailures."""
    settings = load()
    store, webhook, sqs = JobStore.for_settings(settings), signer(load_secret(settings)), aws.client("sqs", settings)
    failures = []
    for record in event.get("Records", []):
        receives = int(record.get("attributes", {}).get("ApproximateReceiveCount") or 1)
        delay = notify(json.loads(record["body"])["job_id"], store, webhook, settings, receives=receives)
        if delay is not None:
            _, _, _, _, account, name = record["eventSourceARN"].split(":", 5)
            url = sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
            sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=record["receiptHandle"], VisibilityTimeout=delay)
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}

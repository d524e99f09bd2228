"""The laptop stacks' notifier: ``python -m services.notifier``, polling the callbacks queue
itself and doing the same per-message work as the Lambda handler."""

from __future__ import annotations

import json
import logging
import sys
import threading

from divescore import aws, daemon
from divescore.jobs import JobStore
from divescore.settings import Settings
from divescore.webhooks import load_secret, signer
from services.notifier.notify import notify

log = logging.getLogger("divescore.notifier")


def run(settings: Settings, stop: threading.Event) -> None:
    """The native stack's notifier: the same per-message work, polling the queue itself."""
    sqs = aws.client("sqs", settings)
    while not stop.is_set():  # the stack bootstraps the queue and the secret while we start
        try:
            url = aws.queue_url(settings, settings.callbacks_queue)
            webhook = signer(load_secret(settings))
            break
        except Exception:
            stop.wait(0.5)
    store = JobStore.for_settings(settings)
    while not stop.is_set():
        try:
            answer = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=2,
                                         AttributeNames=["ApproximateReceiveCount"])
            for message in answer.get("Messages", []):
                receives = int(message["Attributes"].get("ApproximateReceiveCount", 1))
                delay = notify(json.loads(message["Body"])["job_id"], store, webhook, settings, receives=receives)
                if delay is None:
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
                else:
                    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"],
                                                  VisibilityTimeout=delay)
        except Exception:  # keep notifying whatever one poll did
            log.exception("callback delivery failed; trying again in 1 s")
            stop.wait(1)


if __name__ == "__main__":
    sys.exit(daemon.run("notifier", run))

"""The laptop stacks' notifier: ``python -m services.notifier``, polling the callbacks queue
itself and doing the same per-message work as the Lambda handler, several webhooks at once."""

from __future__ import annotations

import collections
import json
import logging
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

from divescore import aws, daemon
from divescore.jobs import JobStore
from divescore.settings import Settings
from divescore.webhooks import load_secret, signer
from services.notifier.notify import notify

log = logging.getLogger("divescore.notifier")


# Webhooks in flight at once, and at most this many to one receiver: a receiver that never
# answers holds its own jobs' deliveries (each up to callback_timeout_seconds), not the others'.
DELIVERIES = 8
PER_RECEIVER = 2


class Receivers:
    """Deliveries in flight per receiver (the callback URL's host and port)."""

    def __init__(self, limit: int):
        self.limit, self.lock, self.busy = limit, threading.Lock(), collections.Counter()

    def take(self, receiver: str) -> bool:
        with self.lock:
            if self.busy[receiver] >= self.limit:
                return False
            self.busy[receiver] += 1
            return True

    def give_back(self, receiver: str) -> None:
        with self.lock:
            self.busy[receiver] -= 1


def receiver_of(job: dict | None) -> str:
    url = ((job or {}).get("callback") or {}).get("url") or ""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}"


def run(settings: Settings, stop: threading.Event) -> None:
    """The laptop stacks' notifier: the Lambda handler's per-message work, polling the queue
    itself and delivering up to ``DELIVERIES`` webhooks at once (on AWS each message is an
    invocation of its own)."""
    sqs = aws.client("sqs", settings)
    while not stop.is_set():  # the stack bootstraps the queue and the secret while we start
        try:
            url = aws.queue_url(settings, settings.callbacks_queue)
            webhook = signer(load_secret(settings))
            break
        except Exception:
            stop.wait(0.5)
    store = JobStore.for_settings(settings)
    receivers = Receivers(PER_RECEIVER)
    slots = threading.BoundedSemaphore(DELIVERIES)

    def deliver(message: dict) -> None:
        try:
            job_id = json.loads(message["Body"])["job_id"]
            receiver = receiver_of(store.get(job_id))
            if not receivers.take(receiver):  # its receiver is busy: this one waits its turn in the queue
                sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"],
                                              VisibilityTimeout=settings.callback_timeout_seconds)
                return
            try:
                receives = int(message["Attributes"].get("ApproximateReceiveCount", 1))
                delay = notify(job_id, store, webhook, settings, receives=receives)
            finally:
                receivers.give_back(receiver)
            if delay is None:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            else:
                sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"],
                                              VisibilityTimeout=delay)
        except Exception:  # the message comes back after its visibility timeout
            if not stop.is_set():
                log.exception("callback delivery failed")
        finally:
            slots.release()

    with ThreadPoolExecutor(max_workers=DELIVERIES, thread_name_prefix="deliver") as pool:
        while not stop.is_set():
            free = 0
            while free < 10 and slots.acquire(blocking=False):
                free += 1
            if not free:
                stop.wait(0.1)
                continue
            try:
                answer = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=free, WaitTimeSeconds=2,
                                             AttributeNames=["ApproximateReceiveCount"])
                messages = answer.get("Messages", [])
            except Exception:  # keep polling whatever one poll did
                if stop.is_set():
                    break  # the stack is stopping: the emulator may be gone already
                log.exception("could not read the callbacks queue; trying again in 1 s")
                messages = []
                stop.wait(1)
            for message in messages:
                pool.submit(deliver, message)
            for _ in range(free - len(messages)):
                slots.release()


if __name__ == "__main__":
    sys.exit(daemon.run("notifier", run))

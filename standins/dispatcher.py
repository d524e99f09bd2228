"""The local stand-in for Lambda's SQS event source mapping.

One worker per function runtime (the RIE takes one invocation at a time). Each worker
long-polls the jobs queue for one message, invokes the function through the Lambda invoke URL
with the event Lambda would send and the stack's key (standins.dispatcher_key), deletes the
message only when the function succeeded for it, and otherwise leaves it in the queue as it
is, as AWS's mapping does: it comes back when it is visible again (after the short retry
delay the function set for a failed record, or the visibility timeout when the runtime died)
and, after ``max_receive_count`` receives, the queue's redrive policy moves it to the
dead-letter queue. Batch size is 1, as in the SAM template.

    python -m standins.dispatcher
"""

from __future__ import annotations

import enum
import hashlib
import json
import logging
import signal
import sys
import threading
import time

import requests
from botocore.exceptions import BotoCoreError, ClientError

from divescore import aws, daemon
from divescore.settings import Settings, load_or_exit
from standins import dispatcher_key

log = logging.getLogger("divescore.dispatcher")

WARMUP_EVENT = {"divescore": "warmup"}


class Outcome(enum.StrEnum):
    SUCCEEDED = "succeeded"  # delete the message
    FAILED = "failed"  # leave it: retried once visible again, then dead-lettered


def lambda_sqs_event(message: dict, queue_arn: str, region: str) -> dict:
    """The event Lambda's SQS event source mapping delivers for one message."""
    return {
        "Records": [{
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": message.get("MessageAttributes", {}),
            "md5OfBody": message.get("MD5OfBody") or hashlib.md5(message["Body"].encode()).hexdigest(),
            "eventSource": "aws:sqs",
            "eventSourceARN": queue_arn,
            "awsRegion": region,
        }]
    }


def invocation_outcome(status_code: int, body: bytes, message_id: str) -> tuple[Outcome, str]:
    """Read the RIE's answer. It answers 200 even for a handler error or a timeout, so the body
    decides: an ``errorType`` or non-JSON text (``Task timed out``) is a failure, as is a
    partial batch response naming this message."""
    if status_code != 200:
        return Outcome.FAILED, f"runtime answered HTTP {status_code}: {body[:200]!r}"
    try:
        payload = json.loads(body) if body else None
    except ValueError:
        return Outcome.FAILED, body[:200].decode(errors="replace")
    if isinstance(payload, dict):
        if "errorType" in payload or "errorMessage" in payload:
            return Outcome.FAILED, f"{payload.get('errorType')}: {payload.get('errorMessage')}"
        failures = payload.get("batchItemFailures") or []
        if any(f.get("itemIdentifier") == message_id for f in failures):
            return Outcome.FAILED, "function reported this message in batchItemFailures"
    return Outcome.SUCCEEDED, "ok"


class Worker(threading.Thread):
    """Feeds one function runtime, one message at a time."""

    def __init__(self, settings: Settings, invoke_url: str, queue_url: str, queue_arn: str,
                 stop: threading.Event, index: int):
        super().__init__(name=f"worker-{index}", daemon=True)
        self.settings = settings
        self.invoke_url = invoke_url
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self.stop = stop
        self.sqs = aws.client("sqs", settings)
        self.http = requests.Session()
        self.http.headers.update(dispatcher_key.invocation_headers(dispatcher_key.from_env()))
        # A little over the function timeout: the runtime itself enforces the timeout.
        self.invoke_timeout = settings.function_timeout_seconds + 10

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.poll_once(wait_seconds=5)
            except Exception:  # keep feeding the runtime whatever one poll did
                if self.stop.is_set():
                    break  # the stack is stopping: the emulator may be gone already
                log.exception("poll failed; retrying in 1 s")
                self.stop.wait(1)

    def poll_once(self, wait_seconds: int) -> Outcome | None:
        answer = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=1,
            WaitTimeSeconds=wait_seconds,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = answer.get("Messages", [])
        if not messages:
            return None
        return self.hand_off(messages[0])

    def hand_off(self, message: dict) -> Outcome:
        message_id = message["MessageId"]
        receives = message.get("Attributes", {}).get("ApproximateReceiveCount", "?")
        event = lambda_sqs_event(message, self.queue_arn, self.settings.region)
        started = time.monotonic()
        log.info("message %s (receive %s) → %s", message_id, receives, self.invoke_url)
        try:
            response = self.http.post(self.invoke_url, json=event, timeout=self.invoke_timeout)
            outcome, detail = invocation_outcome(response.status_code, response.content, message_id)
        except requests.RequestException as err:
            outcome, detail = Outcome.FAILED, f"runtime unreachable: {err.__class__.__name__}"
        elapsed = time.monotonic() - started
        if outcome is Outcome.SUCCEEDED:
            self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
            log.info("message %s succeeded in %.2f s; deleted", message_id, elapsed)
        else:
            log.warning(
                "message %s failed in %.2f s (%s); left in the queue for a retry once it is visible again",
                message_id, elapsed, detail,
            )
        return outcome


def warm_up(invoke_url: str, timeout: float) -> bool:
    """Start a runtime before the first job arrives (the RIE initialises on its first invoke)."""
    try:
        headers = dispatcher_key.invocation_headers(dispatcher_key.from_env())
        return requests.post(invoke_url, json=WARMUP_EVENT, headers=headers, timeout=timeout).status_code == 200
    except requests.RequestException:
        return False


def wait_out_a_predecessor(settings: Settings, stop: threading.Event, poll_seconds: float = 1.0) -> float:
    """Wait while a dispatcher that stopped before us may have left a runtime busy.

    A dispatcher killed while it waited for the runtime's answer leaves the invocation running,
    and the RIE takes one invocation at a time: invoked while busy, it crashes (a nil pointer
    panic after "ReserveFailed: AlreadyReserved"). Messages in flight when we start are the sign
    of that. Their invocations end within the function timeout (the runtime enforces it), and
    once they are visible again nothing of theirs runs. Returns the seconds waited.
    """
    started = time.monotonic()
    try:
        sqs = aws.client("sqs", settings)
        url, _ = jobs_queue(settings)
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    except (BotoCoreError, ClientError):  # no emulator or no queue yet: a first start
        return 0.0
    deadline = started + settings.function_timeout_seconds + 10
    logged = False
    while not stop.is_set() and time.monotonic() < deadline:
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"])
        if attrs["Attributes"]["ApproximateNumberOfMessagesNotVisible"] == "0":
            break
        if not logged:
            log.warning("messages are in flight from a previous dispatcher; waiting up to %d s for the runtimes "
                        "it may have left busy", round(deadline - started))
            logged = True
        stop.wait(poll_seconds)
    return time.monotonic() - started


def jobs_queue(settings: Settings) -> tuple[str, str]:
    """The jobs queue's URL and ARN. The event source mapping knows its queue by ARN and
    needs no ``sqs:GetQueueUrl``, so neither does the dispatcher: the ARN and the URL follow
    from the account (``sts:GetCallerIdentity`` needs no permission) and the queue's name."""
    account = aws.client("sts", settings).get_caller_identity()["Account"]
    sqs = aws.client("sqs", settings)
    return (f"{sqs.meta.endpoint_url}/{account}/{settings.queue}",
            f"arn:aws:sqs:{settings.region}:{account}:{settings.queue}")


def wait_for_queue(settings: Settings, stop: threading.Event, timeout: float = 120) -> tuple[str, str]:
    """The jobs queue's URL and ARN, once it exists (the stack bootstraps it while we start)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            url, arn = jobs_queue(settings)
            aws.client("sqs", settings).get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
            return url, arn
        except Exception as err:
            if time.monotonic() > deadline or stop.is_set():
                raise RuntimeError(f"the jobs queue {settings.queue} is not reachable: {err}") from err
            stop.wait(0.5)


def start(settings: Settings, stop: threading.Event) -> list[Worker]:
    queue_url, queue_arn = wait_for_queue(settings, stop)
    workers = [
        Worker(settings, url, queue_url, queue_arn, stop, i)
        for i, url in enumerate(settings.runtime_invoke_urls)
    ]
    for worker in workers:
        worker.start()
    log.info("dispatching %s to %d runtime(s)", settings.queue, len(workers))
    return workers


def main() -> int:
    settings = load_or_exit()
    logging.basicConfig(level=settings.log_level, format="%(name)s %(threadName)s: %(message)s")
    daemon.quiet_libraries(settings)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    wait_out_a_predecessor(settings, stop)  # before the warm-up: it is an invocation too
    for url in settings.runtime_invoke_urls:
        ok = warm_up(url, timeout=settings.function_timeout_seconds)
        log.info("runtime %s %s", url, "warm" if ok else "did not answer the warm-up; continuing")
    workers = start(settings, stop)
    daemon.announce_ready("dispatcher")
    stop.wait()
    log.info("stopping")
    for worker in workers:
        worker.join(timeout=4)  # a message still in flight just comes back after its visibility timeout
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The dispatcher, the local stand-in for Lambda's SQS event source mapping, against a real
emulator and a real Runtime Interface Emulator running awslambdaric."""

import dataclasses
import json
import threading
from pathlib import Path

import pytest

from divescore import aws
from standins import dispatcher
from tests.support.helpers import TESTS, Runtime, wait_until

FUNCTIONS = TESTS / "functions"


def recorded(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def queue_depth(settings, name):
    sqs = aws.client("sqs", settings)
    attrs = sqs.get_queue_attributes(
        QueueUrl=aws.queue_url(settings, name),
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


@pytest.fixture
def run_dispatcher():
    stops = []

    def run(settings, invoke_url):
        stop = threading.Event()
        stops.append(stop)
        settings = dataclasses.replace(settings, invoke_url=invoke_url)
        return dispatcher.start(settings, stop)

    yield run
    for stop in stops:
        stop.set()


@pytest.fixture
def recorder(tmp_path):
    runtimes = []

    def start(fail: bool = False):
        record = tmp_path / f"events-{len(runtimes)}.jsonl"
        env = {"RECORD_FILE": str(record), **({"FAIL": "1"} if fail else {})}
        runtime = Runtime("recorder.handler", FUNCTIONS, env, timeout_seconds=5)
        runtimes.append(runtime)
        return runtime, record

    yield start
    for runtime in runtimes:
        runtime.stop()


def test_an_upload_becomes_exactly_one_invocation_shaped_like_lambdas(settings, recorder, run_dispatcher):
    runtime, record = recorder()
    run_dispatcher(settings, runtime.invoke_url)
    key = "uploads/0123456789abcdef0123456789abcdef/video"

    aws.client("s3", settings).put_object(Bucket=settings.bucket, Key=key, Body=b"video bytes")

    # The bucket also sends an s3:TestEvent when notifications are configured: one invocation each.
    wait_until(lambda: any("Records" in json.loads(r["event"]["Records"][0]["body"])
                           for r in recorded(record)), 30, what="the upload's invocation")
    wait_until(lambda: queue_depth(settings, settings.queue) == 0, 30, what="the message to be deleted")
    uploads = [r for r in recorded(record) if "Records" in json.loads(r["event"]["Records"][0]["body"])]
    assert len(uploads) == 1
    [sqs_record] = uploads[0]["event"]["Records"]
    assert uploads[0]["function_name"] == "test-function"
    assert sqs_record["eventSource"] == "aws:sqs"
    assert sqs_record["eventSourceARN"].endswith(":" + settings.queue)
    assert sqs_record["awsRegion"] == settings.region
    assert set(sqs_record) >= {"messageId", "receiptHandle", "body", "attributes", "messageAttributes", "md5OfBody"}
    assert sqs_record["attributes"]["ApproximateReceiveCount"] == "1"
    s3_record = json.loads(sqs_record["body"])["Records"][0]
    assert s3_record["eventName"].startswith("ObjectCreated:")
    assert s3_record["s3"]["bucket"]["name"] == settings.bucket


def test_a_failing_invocation_is_retried_then_dead_lettered(settings, recorder, run_dispatcher):
    settings = dataclasses.replace(settings, function_timeout_seconds=1, visibility_timeout_seconds=2)
    from standins.bootstrap import ensure_queues
    ensure_queues(settings)  # the short visibility timeout reaches the queue
    runtime, record = recorder(fail=True)
    run_dispatcher(settings, runtime.invoke_url)
    sqs = aws.client("sqs", settings)
    sqs.purge_queue(QueueUrl=aws.queue_url(settings))

    sqs.send_message(QueueUrl=aws.queue_url(settings), MessageBody=json.dumps({"poison": True}))

    wait_until(lambda: queue_depth(settings, settings.dead_letter_queue) == 1, 60, what="the dead-letter queue")
    poison = [r for r in recorded(record) if json.loads(r["event"]["Records"][0]["body"]) == {"poison": True}]
    receives = [int(r["event"]["Records"][0]["attributes"]["ApproximateReceiveCount"]) for r in poison]
    assert receives == list(range(1, settings.max_receive_count + 1))
    assert queue_depth(settings, settings.queue) == 0


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, b'{"batchItemFailures": []}', dispatcher.Outcome.SUCCEEDED),
        (200, b"null", dispatcher.Outcome.SUCCEEDED),
        (200, b'{"batchItemFailures": [{"itemIdentifier": "m1"}]}', dispatcher.Outcome.FAILED),
        (200, b'{"batchItemFailures": [{"itemIdentifier": "other"}]}', dispatcher.Outcome.SUCCEEDED),
        (200, b'{"errorMessage": "boom", "errorType": "ValueError"}', dispatcher.Outcome.FAILED),
        (200, b"Task timed out after 3.00 seconds", dispatcher.Outcome.FAILED),
        (502, b'{"errorType":"Runtime.ExitError"}', dispatcher.Outcome.FAILED),
    ],
)
def test_reading_the_runtimes_answer(status, body, expected):
    assert dispatcher.invocation_outcome(status, body, "m1")[0] is expected


def test_the_ready_line_is_written_whole_in_one_write():
    """The stack and the tests wait for the exact line ``dispatcher ready``; a log line from a
    worker thread landed once between the text and its newline when they were two writes."""
    import io

    from divescore.daemon import announce_ready

    class Writes(io.StringIO):
        def __init__(self):
            super().__init__()
            self.calls = []

        def write(self, text):
            self.calls.append(text)
            return super().write(text)

    stream = Writes()
    announce_ready("dispatcher", stream)
    assert stream.calls == ["dispatcher ready\n"]

"""The function's event handling against a real moto server. The worker scores with the real
pipeline around a tiny network (conftest's ``fake_scorer``): its subject here is claiming,
acknowledging, retrying, canceling and failing; the Lambda entry point loads the real model."""

import contextlib
import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from botocore.exceptions import EndpointConnectionError

from divescore import aws
from divescore.events import Upload
from divescore.jobs import JobStore, Status, new_job_id
from divescore.settings import load
from inference import errors
from inference.worker import Outcome, Services, handle_event, process_upload
from standins.dispatcher import lambda_sqs_event
from tests.support import videos
from tests.support.helpers import ROOT, WEIGHTS_CACHE, isolated_settings


def make_services(settings, scorer) -> Services:
    return Services(settings, JobStore(aws.table(settings)), aws.client("s3", settings), scorer)


@pytest.fixture
def services(settings, fake_scorer):
    return make_services(settings, fake_scorer)


@pytest.fixture(scope="module")
def module_settings(emulator):
    """Resources shared by the many bad-input cases (bootstrapping per case takes seconds)."""
    return isolated_settings()


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """16 frames (one clip, one forward of the network), H.264 as a phone writes it."""
    return videos.make_video(tmp_path_factory.mktemp("videos") / "dive.mp4", seconds=16 / 25, size=(160, 120),
                             codec="h264")


def submit(services: Services, path: Path, declared_size: int | None = None, upload: bool = True,
           entry_s: float | None = None) -> str:
    """A job as services.jobs_api makes it, and its upload landing in the bucket."""
    settings, job_id = services.settings, new_job_id()
    size = path.stat().st_size if declared_size is None else declared_size
    services.store.create(job_id=job_id, filename=path.name, content_type="video/mp4", size=size,
                          key=settings.upload_key(job_id), ttl_seconds=3600, entry_s=entry_s)
    services.store.mark_queued(job_id)
    if upload:
        services.s3.upload_file(str(path), settings.bucket, settings.upload_key(job_id))
    return job_id


def queued_event(settings, job_id: str, timeout: float = 10) -> dict:
    """The SQS event Lambda would deliver for the notification the emulator queued for ``job_id``."""
    sqs = aws.client("sqs", settings)
    url = aws.queue_url(settings)
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                     AttributeNames=["All"], VisibilityTimeout=0)
        for message in answer.get("Messages", []):
            if job_id in message["Body"]:  # keys arrive URL-encoded
                sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"],
                                              VisibilityTimeout=30)
                return lambda_sqs_event(message, arn, settings.region)
    raise AssertionError(f"no notification for {job_id} within {timeout} s")


def direct_event(sqs_event: dict) -> dict:
    """The same S3 notification as Lambda gets it straight from S3: the message's body."""
    return json.loads(sqs_event["Records"][0]["body"])


def test_an_upload_delivered_through_the_queue_is_scored(services, clip):
    job_id = submit(services, clip)
    event = queued_event(services.settings, job_id)

    assert handle_event(event, services) == {"batchItemFailures": []}

    job = services.store.get(job_id)
    assert job["status"] == Status.SUCCEEDED and job["progress"] == 1 and "stage" not in job
    assert isinstance(job["score"], float) and job["score"] != int(job["score"])  # never truncated
    assert len(job["clip_scores"]) == 6 and len(job["frames"]) == 96
    assert job["model"] == {"name": "C3D-AVG (MTL-AQA)", "weights": services.scorer.weights.name,
                            "calibrated": False, "dtype": "float32"}
    assert set(job["timings"]) == {"probe_s", "detect_s", "decode_s", "inference_s", "pipeline_s", "total_s"}
    assert job["window"]["how"] == "whole"
    # Read straight from storage: the whole of this small file, in ranged GETs.
    assert job["read"]["bytes"] == job["read"]["object_bytes"] == clip.stat().st_size
    assert job["video"]["frames"] == 16 and job["attempts"] == 1
    strip = services.s3.head_object(Bucket=services.settings.bucket, Key=job["filmstrip_key"])
    assert job["filmstrip_key"] == services.settings.filmstrip_key(job_id)
    assert strip["ContentType"] == "image/jpeg" and strip["ContentLength"] > 1000


def test_a_direct_s3_event_is_scored_and_the_same_event_again_does_nothing(services, clip):
    job_id = submit(services, clip)
    event = direct_event(queued_event(services.settings, job_id))

    assert handle_event(event, services) == {"outcomes": [Outcome.SUCCEEDED]}
    first = services.store.get(job_id)
    assert handle_event(event, services) == {"outcomes": [Outcome.DUPLICATE]}
    assert services.store.get(job_id) == first  # not touched: same score, attempts, updated_at
    assert first["status"] == Status.SUCCEEDED and first["attempts"] == 1


BAD_UPLOADS = {
    "random_bytes": "not_a_video",
    "empty": "not_a_video",
    "png": "not_a_video",
    "truncated": "video_truncated",
    "moov_cut": "not_a_video",
    "header_only": "no_frames",
    "audio_only": "not_a_video",
    "one_frame": "video_too_short",
    "short_0.2s": "video_too_short",
    "tiny_1x1": "resolution_too_small",
    "8k": "resolution_too_large",
}


@pytest.mark.parametrize("name", sorted(BAD_UPLOADS))
def test_a_bad_upload_ends_failed_with_its_code(module_settings, fake_scorer, tmp_path, name):
    services = make_services(module_settings, fake_scorer)
    path = videos.BAD_INPUTS[name](tmp_path / "upload.mp4")
    job_id = submit(services, path)
    upload = Upload(services.settings.bucket, services.settings.upload_key(job_id), path.stat().st_size,
                    "ObjectCreated:Post")

    assert process_upload(upload, services) == Outcome.FAILED  # acknowledged: no retry loop

    job = services.store.get(job_id)
    assert job["status"] == Status.FAILED and job["error"]["code"] == BAD_UPLOADS[name]
    assert job["error"]["message"].endswith(".") and "score" not in job


def test_a_job_whose_entry_is_past_its_videos_end_fails_with_a_code(module_settings, fake_scorer, clip):
    # GIVEN a job of a 0.64 s video created with an entry at 9 s
    services = make_services(module_settings, fake_scorer)
    job_id = submit(services, clip, entry_s=9.0)
    upload = Upload(services.settings.bucket, services.settings.upload_key(job_id), clip.stat().st_size,
                    "ObjectCreated:Post")

    # WHEN its video is read, THEN it fails (no retry), with the code and the video's length
    assert process_upload(upload, services) == Outcome.FAILED
    job = services.store.get(job_id)
    assert job["status"] == Status.FAILED and job["error"]["code"] == "entry_after_end"
    assert "0.64 s" in job["error"]["message"] and "score" not in job
    assert job["entry_s"] == 9.0  # kept as given


def test_the_stored_object_is_checked_against_the_limits_and_the_declared_size(module_settings, fake_scorer, clip):
    services = make_services(module_settings, fake_scorer)
    settings = services.settings
    size = clip.stat().st_size

    def outcome_of(job_id, services=services):
        upload = Upload(settings.bucket, settings.upload_key(job_id), None, "ObjectCreated:Put")
        assert process_upload(upload, services) == Outcome.FAILED
        return services.store.get(job_id)["error"]["code"]

    assert outcome_of(submit(services, clip, declared_size=size - 1)) == "size_mismatch"
    assert outcome_of(submit(services, clip, upload=False)) == "upload_missing"
    small_limit = dataclasses.replace(services, settings=dataclasses.replace(settings, max_upload_bytes=size - 1))
    assert outcome_of(submit(services, clip), small_limit) == "file_too_large"


def test_a_transient_table_error_is_a_batch_item_failure_for_that_message_only(services, clip, settings):
    job_id = submit(services, clip)
    event = queued_event(settings, job_id)
    test_event = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": settings.bucket})
    ignored = lambda_sqs_event({"MessageId": "m-ignored", "ReceiptHandle": "r", "Body": test_event,
                                "Attributes": {"ApproximateReceiveCount": "1"}}, "arn", settings.region)
    event["Records"].append(ignored["Records"][0])
    unreachable_table = dataclasses.replace(
        services, store=JobStore(aws.table(dataclasses.replace(settings, table="no-such-table"))))

    response = handle_event(event, unreachable_table)

    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    assert services.store.get(job_id)["status"] == Status.QUEUED  # untouched: the queue will retry it


class _BrokenScorer:
    def score(self, *args, **kwargs):
        raise RuntimeError("a bug in the scorer")


def test_an_unexpected_error_is_retried_within_seconds_and_on_the_last_receive_recorded(services, clip):
    broken = dataclasses.replace(services, scorer=_BrokenScorer())  # a fault after the claim
    settings = services.settings

    early = submit(services, clip)
    event = queued_event(settings, early)  # received with a 30 s visibility timeout
    failed_at = time.time()
    assert handle_event(event, broken)["batchItemFailures"] == [{"itemIdentifier": event["Records"][0]["messageId"]}]
    job = services.store.get(early)
    # The person waiting sees the retry coming: attempt 2 of 3, and when.
    assert job["status"] == Status.QUEUED and "lease_expires_at" not in job
    assert job["retry"]["attempt"] == 2 and job["retry"]["of"] == settings.max_receive_count
    assert job["retry"]["error"]["code"] == "attempt_failed"
    assert "Attempt 1 of 3 failed" in job["retry"]["error"]["message"]
    # The message is back after the retry delay (2 s), not the 30 s it was received with.
    again = queued_event(settings, early, timeout=20)
    assert time.time() - failed_at < 20
    assert again["Records"][0]["attributes"]["ApproximateReceiveCount"] == "2"
    assert handle_event(again, services) == {"batchItemFailures": []}
    job = services.store.get(early)
    assert job["status"] == Status.SUCCEEDED and "retry" not in job
    assert job["attempt"] == {"number": 2, "of": settings.max_receive_count}

    last = submit(services, clip)
    event = queued_event(settings, last)
    event["Records"][0]["attributes"]["ApproximateReceiveCount"] = str(settings.max_receive_count)
    assert handle_event(event, broken)["batchItemFailures"] == [{"itemIdentifier": event["Records"][0]["messageId"]}]
    job = services.store.get(last)
    assert job["status"] == Status.FAILED and job["error"]["code"] == "processing_failed"


def test_the_retry_delay_doubles_with_each_receive():
    settings = load({}, retry_delay_seconds=2, function_timeout_seconds=10, visibility_timeout_seconds=60)
    assert [settings.retry_delay(n) for n in (1, 2, 3, 4, 5, 6)] == [2, 4, 8, 16, 32, 60]


class CancelingStore(JobStore):
    """The real store, whose job is canceled (as through the API) just before the worker's
    first progress write."""

    def progress(self, job_id, claim, **kwargs):
        if not getattr(self, "canceled", False):
            self.canceled = True
            assert self.cancel(job_id)["status"] == Status.PROCESSING
        return super().progress(job_id, claim, **kwargs)


def test_a_job_canceled_while_scored_stops_without_a_score(services, clip):
    job_id = submit(services, clip)
    canceling = dataclasses.replace(services, store=CancelingStore(services.store.table))
    event = queued_event(services.settings, job_id)

    assert handle_event(event, canceling) == {"batchItemFailures": []}  # acknowledged

    job = services.store.get(job_id)
    assert job["status"] == Status.CANCELED
    assert "score" not in job and "lease_expires_at" not in job
    # It stopped before finishing: no filmstrip was made.
    results = services.s3.list_objects_v2(Bucket=services.settings.bucket, Prefix=f"results/{job_id}/")
    assert results.get("KeyCount") == 0


def test_an_upload_landing_after_its_job_was_canceled_is_ignored_and_deleted(services, clip):
    settings = services.settings
    job_id = submit(services, clip)
    services.store.cancel(job_id)
    upload = Upload(settings.bucket, settings.upload_key(job_id), None, "ObjectCreated:Post")

    assert process_upload(upload, services) == Outcome.CANCELED

    assert services.store.get(job_id)["status"] == Status.CANCELED and services.store.get(job_id)["attempts"] == 0
    listed = services.s3.list_objects_v2(Bucket=settings.bucket, Prefix=settings.upload_key(job_id))
    assert listed.get("KeyCount") == 0


def test_test_events_and_other_keys_are_acknowledged_without_work(module_settings, fake_scorer):
    services = make_services(module_settings, fake_scorer)
    settings = services.settings
    assert handle_event({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": settings.bucket},
                        services) == {"outcomes": []}
    assert handle_event({"divescore": "warmup"}, services) == {"outcomes": []}
    for key in ("results/abc/filmstrip.jpg", "uploads/abc/other", "uploads/video"):
        upload = Upload(settings.bucket, key, 1, "ObjectCreated:Put")
        assert process_upload(upload, services) == Outcome.IGNORED
    assert process_upload(Upload("another-bucket", settings.upload_key(new_job_id()), 1, "ObjectCreated:Put"),
                          services) == Outcome.IGNORED
    assert process_upload(Upload(settings.bucket, settings.upload_key(new_job_id()), 1, "ObjectCreated:Put"),
                          services) == Outcome.DUPLICATE  # no such job: nothing to claim


def test_the_lambda_entry_point_sets_up_once_and_handles_events(settings, clip, emulator, tmp_path):
    store = JobStore(aws.table(settings))
    services = Services(settings, store, aws.client("s3", settings), scorer=None)
    job_id = submit(services, clip)
    event = direct_event(queued_event(settings, job_id))
    script = """
import json, sys, types
from inference import handler
context = types.SimpleNamespace(function_name="divescore-inference", memory_limit_in_mb=3008,
    invoked_function_arn="arn:aws:lambda:us-east-1:000000000000:function:divescore-inference", aws_request_id="r-1")
print(json.dumps({"warmup": handler.handler({"divescore": "warmup"}, context)}))
print(json.dumps({"event": handler.handler(json.load(sys.stdin), context)}))
"""
    env = {**os.environ, **emulator.env, **settings.to_env(), "DIVESCORE_CACHE_DIR": str(WEIGHTS_CACHE),
           "DIVESCORE_MODEL_DTYPE": "float32", "TMPDIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", script], input=json.dumps(event), env=env, capture_output=True,
                          text=True, timeout=240, cwd=ROOT / "lambda_image", check=False)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert {"warmup": {"outcomes": []}} in lines and {"event": {"outcomes": ["succeeded"]}} in lines
    job_logs = [line for line in lines if "level" in line and "no uploads" not in line["message"]]
    assert len(job_logs) >= 2 and all(line.get("job_id") == job_id for line in job_logs)
    assert store.get(job_id)["status"] == Status.SUCCEEDED
    assert list(tmp_path.iterdir()) == []


class _UnreachableGets:
    """The real client, except that every GET fails as if storage were unreachable."""

    def __init__(self, s3):
        self._s3 = s3

    def __getattr__(self, name):
        return getattr(self._s3, name)

    def get_object(self, **kwargs):
        raise EndpointConnectionError(endpoint_url="http://storage")


class _SwallowingScorer:
    """A scorer whose decoder swallows a read error and reports the file as truncated, as
    FFmpeg does when a read fails mid-file and the library hands back end-of-file instead of
    the error (PyAV 18 re-raises it; the worker must not depend on that)."""

    def __init__(self, scorer):
        self._scorer = scorer

    def __getattr__(self, name):
        return getattr(self._scorer, name)

    def score(self, video, limits, **kwargs):
        with contextlib.suppress(EndpointConnectionError):  # swallowed, as a decoder would
            video.read(1024)
        raise errors.VideoTruncated("The video stops after 3 of the 16 frames it announces.")


def test_a_bad_video_verdict_reached_while_storage_failed_is_a_storage_error(services, clip):
    # GIVEN storage that fails every read, under a decoder that turns the failure into "truncated"
    job_id = submit(services, clip)
    settings = services.settings
    upload = Upload(settings.bucket, settings.upload_key(job_id), clip.stat().st_size, "ObjectCreated:Post")
    broken = dataclasses.replace(services, s3=_UnreachableGets(services.s3), scorer=_SwallowingScorer(services.scorer))

    # THEN the storage error is raised (the queue retries the job), not the video blamed
    with pytest.raises(EndpointConnectionError):
        process_upload(upload, broken)
    assert services.store.get(job_id)["status"] == Status.PROCESSING


def test_storage_failing_under_the_decoder_is_retried_not_blamed_on_the_video(services, clip):
    job_id = submit(services, clip)
    settings = services.settings
    upload = Upload(settings.bucket, settings.upload_key(job_id), clip.stat().st_size, "ObjectCreated:Post")
    broken = dataclasses.replace(services, s3=_UnreachableGets(services.s3))

    with pytest.raises(EndpointConnectionError):
        process_upload(upload, broken)
    assert services.store.get(job_id)["status"] == Status.PROCESSING  # the queue retries it

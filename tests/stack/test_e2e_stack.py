"""End to end through the native stack: API → S3 → SQS → dispatcher → RIE → awslambdaric →
handler → DynamoDB → API, with the real C3D-AVG architecture (generated, untrained weights)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from divescore.jobs import PUBLIC_FIELDS
from tests.support.helpers import wait_until
from tests.support.stack_support import create_job, post_upload, queue_counts, scored_through, send, wait_final
from tests.support.videos import make_video

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return make_video(tmp_path_factory.mktemp("e2e") / "dive.mp4", seconds=2.0, size=(320, 240), codec="h264")


@pytest.fixture(scope="module")
def scored(stack, video):
    """One video scored through the stack, shared by the assertions below."""
    return scored_through(stack, video)


def test_an_uploaded_video_ends_succeeded_with_a_score(scored):
    _, final = scored
    assert final["status"] == "succeeded", final
    assert isinstance(final["score"], float)
    assert len(final["clip_scores"]) == 6
    assert len(final["frames"]) == 96
    assert final["model"]["calibrated"] is False
    assert final["progress"] == 1


def test_the_stack_gives_the_score_divescore_predict_gives_for_the_same_file(stack, scored, video):
    # The deployed path (S3, the RIE, the handler) and the local one must not drift apart.
    _, final = scored
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIVESCORE_")}
    env.update({k: v for k, v in stack.env.items() if k in ("DIVESCORE_CACHE_DIR", "DIVESCORE_MODEL_DIR")})
    predict = Path(sys.executable).with_name("divescore")
    done = subprocess.run([str(predict), "predict", str(video), "--json"], env=env, capture_output=True, text=True,
                          timeout=240, check=False)
    assert done.returncode == 0, done.stderr
    local = json.loads(done.stdout)
    assert local["model"] == final["model"]  # same weights, same dtype (both defaults)
    assert local["frames"] == final["frames"]
    assert local["score"] == pytest.approx(final["score"], abs=1e-3)
    assert local["clip_scores"] == pytest.approx(final["clip_scores"], abs=1e-3)


def test_the_result_carries_only_public_fields_and_a_filmstrip(scored):
    _, final = scored
    assert set(final) <= set(PUBLIC_FIELDS) | {"filmstrip_url"}
    image = requests.get(final["filmstrip_url"], timeout=10)
    assert image.status_code == 200
    assert image.content[:2] == b"\xff\xd8"  # a JPEG


def test_the_same_event_delivered_again_is_not_processed_twice(stack, scored):
    job, final = scored
    key = stack.settings.upload_key(job["job_id"])
    event = {"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": stack.settings.region,
        "eventName": "ObjectCreated:Post",
        "s3": {"bucket": {"name": stack.settings.bucket}, "object": {"key": key, "size": final["size"]}},
    }]}

    send(stack, event)

    wait_until(lambda: queue_counts(stack) == (0, 0), 60, what="the duplicate to be consumed")
    again = stack.store.get(job["job_id"])
    assert again["attempts"] == 1
    assert again["updated_at"] == final["updated_at"]
    assert again["score"] == final["score"]


def test_a_file_that_is_not_a_video_ends_failed_with_its_code(stack, tmp_path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(bytes(range(256)) * 400)
    job = create_job(stack, junk)
    post_upload(job, junk)
    final = wait_final(stack, job["job_id"])
    assert final["status"] == "failed"
    assert final["error"]["code"] == "not_a_video"
    assert final["error"]["message"]

"""The scored window through the running stack: a long generated dive is scored over the
window ending at its detected entry; ``entry_s`` at creation scores exactly the given window;
"score from here" makes a new job from the same upload, without uploading again."""

import pytest
import requests

from divescore import synthetic_dive
from tests.stack_support import create_job, post_upload, wait_final

pytestmark = pytest.mark.stack

SCENE = synthetic_dive.Scene(30.0, 30, 21.4, walker=True, lighting=True, seed=11)


@pytest.fixture(scope="module")
def dive(tmp_path_factory):
    return synthetic_dive.write(SCENE, tmp_path_factory.mktemp("window") / "dive.mp4")


@pytest.fixture(scope="module")
def detected(stack, dive):
    job = create_job(stack, dive)
    post_upload(job, dive)
    return job, wait_final(stack, job["job_id"])


def test_a_long_video_is_scored_over_the_window_ending_at_the_detected_entry(detected):
    _, final = detected
    assert final["status"] == "succeeded", final
    window = final["window"]
    assert window["how"] == "detected" and window["confidence"] >= 0.35
    assert abs(window["end_frame"] - SCENE.entry_frame) <= 5
    assert window["end_s"] - window["start_s"] == pytest.approx(4.08)
    assert window["fps"] == 25
    assert window["start_frame"] <= min(final["frames"]) <= max(final["frames"]) <= window["end_frame"]


def test_an_entry_given_at_creation_scores_exactly_that_window(stack, dive):
    response = requests.post(f"{stack.presign_url}/v1/jobs", json={
        "filename": dive.name, "content_type": "video/mp4", "size": dive.stat().st_size, "entry_s": 12.0}, timeout=30)
    assert response.status_code == 201, response.text
    job = response.json()
    post_upload(job, dive)
    final = wait_final(stack, job["job_id"])
    assert final["status"] == "succeeded", final
    assert final["entry_s"] == 12
    assert final["window"] == {"how": "given", "start_frame": 237, "end_frame": 360, "start_s": 7.92, "end_s": 12.0,
                               "fps": 25}

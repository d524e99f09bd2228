"""The scored window through the running stack: a long generated dive is scored over the
window ending at its detected entry; a video of three dives lists the three and scores the
most confident; ``entry_s`` at creation scores exactly the given window; "score from here"
makes a new job from the same upload, without uploading again."""

import pytest
import requests

from bench import synthetic_dive
from tests.support.stack_support import create_job, new_job, post_upload, scored_through, small_clip, wait_final

pytestmark = pytest.mark.stack

SCENE = synthetic_dive.Scene(30.0, 30, 21.4, walker=True, lighting=True, seed=11)


@pytest.fixture(scope="module")
def dive(tmp_path_factory):
    return synthetic_dive.write(SCENE, tmp_path_factory.mktemp("window") / "dive.mp4")


@pytest.fixture(scope="module")
def detected(stack, dive):
    return scored_through(stack, dive)


def test_a_long_video_is_scored_over_the_window_ending_at_the_detected_entry(detected):
    _, final = detected
    assert final["status"] == "succeeded", final
    window = final["window"]
    assert window["how"] == "detected" and window["confidence"] >= 0.35
    assert abs(window["end_frame"] - SCENE.entry_frame) <= 5
    assert window["end_s"] - window["start_s"] == pytest.approx(4.08)
    assert window["fps"] == 25
    assert window["start_frame"] <= min(final["frames"]) <= max(final["frames"]) <= window["end_frame"]


def test_a_video_of_three_dives_lists_each_entry_and_scores_the_most_confident(stack, tmp_path):
    scene = synthetic_dive.three_dives()
    _, final = scored_through(stack, synthetic_dive.write(scene, tmp_path / "three.mp4"))
    assert final["status"] == "succeeded", final
    entries = final["entries"]
    assert len(entries) == 3, entries
    for found, true in zip(entries, scene.entries_s, strict=True):
        assert abs(found["entry_s"] - true) <= 5 / scene.fps, entries
    best = max(entries, key=lambda e: e["confidence"])
    window = final["window"]
    assert (window["how"], window["entry_s"], window["confidence"]) == ("detected", best["entry_s"], best["confidence"])
    assert "reason" not in window


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
                               "fps": 25, "video_s": 30, "entry_s": 12}
    assert final["entries"] == []  # given: no search


def test_score_from_here_makes_a_new_job_from_the_same_upload(stack, detected):
    first, final = detected
    s3 = stack.client("s3")
    original = s3.head_object(Bucket=stack.settings.bucket, Key=stack.settings.upload_key(first["job_id"]))
    response = requests.post(f"{stack.presign_url}/v1/jobs/{first['job_id']}/rescore", json={"entry_s": 10.0},
                             timeout=30)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["job_id"] != first["job_id"] and created["rescore_of"] == first["job_id"]
    assert created["status"] in ("queued", "processing", "succeeded")
    again = wait_final(stack, created["job_id"])
    assert again["status"] == "succeeded", again
    assert again["window"]["how"] == "given" and again["window"]["end_s"] == 10.0
    assert again["score"] != final["score"]  # another stretch of the video
    assert (again["filename"], again["size"]) == (final["filename"], final["size"])
    # the new job's video is S3's copy of the first upload: the same bytes, never sent again
    copy = s3.head_object(Bucket=stack.settings.bucket, Key=stack.settings.upload_key(created["job_id"]))
    assert (copy["ETag"], copy["ContentLength"]) == (original["ETag"], original["ContentLength"])


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"entry_s": -3}, 400, "invalid_field"),
    ({"entry_s": 1, "key": "x"}, 400, "unknown_field"),
    ([], 400, "invalid_json"),
])
def test_score_from_here_refuses_what_it_cannot_do(stack, detected, body, status, code):
    first, _ = detected
    response = requests.post(f"{stack.presign_url}/v1/jobs/{first['job_id']}/rescore", json=body, timeout=30)
    assert (response.status_code, response.json()["error"]["code"]) == (status, code)


def test_score_from_here_needs_a_job_and_its_upload(stack):
    response = requests.post(f"{stack.presign_url}/v1/jobs/{'0' * 32}/rescore", json={"entry_s": 3}, timeout=30)
    assert (response.status_code, response.json()["error"]["code"]) == (404, "job_not_found")
    waiting = new_job(stack).json()  # created, never uploaded
    response = requests.post(f"{stack.presign_url}/v1/jobs/{waiting['job_id']}/rescore", json={}, timeout=30)
    assert (response.status_code, response.json()["error"]["code"]) == (409, "job_not_scored")


def test_a_canceled_job_is_never_scored_again_even_when_its_upload_lands_late(stack, tmp_path):
    path = small_clip(tmp_path / "late.mp4", offset=13)
    job = create_job(stack, path)
    assert requests.post(f"{stack.presign_url}/v1/jobs/{job['job_id']}/cancel", timeout=30).status_code == 200
    post_upload(job, path)  # its form is still valid: the video lands after the cancel
    response = requests.post(f"{stack.presign_url}/v1/jobs/{job['job_id']}/rescore", json={}, timeout=30)
    assert (response.status_code, response.json()["error"]["code"]) == (409, "job_not_scored"), response.text

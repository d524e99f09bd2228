"""services.status_api against a real moto server: public fields only, one 404 for every missing
job, reads that never write, filmstrip URLs, ETags, and the long-poll."""

from __future__ import annotations

import dataclasses
import threading
import time

import pytest
import requests

from divescore import aws, errors
from divescore.jobs import PUBLIC_FIELDS, JobStore, Stage, new_job_id
from services.status_api import create_app
from services.status_api.waiting import Snapshot, wait_for_change
from tests.support.api_support import ALLOWED_ORIGIN, serve_in_thread

INTERNAL_FIELDS = ("key", "upload_id", "claim", "lease_expires_at", "attempts", "filmstrip_key")


def make_job(store: JobStore, settings, *, ttl_seconds: int = 3600, **fields) -> str:
    job_id = new_job_id()
    store.create(job_id=job_id, filename="dive.mp4", content_type="video/mp4", size=1234,
                 key=settings.upload_key(job_id), ttl_seconds=ttl_seconds, **fields)
    return job_id


def get(score: str, job_id: str, **kwargs) -> requests.Response:
    return requests.get(f"{score}/v1/jobs/{job_id}", timeout=30, **kwargs)


def later(action, delay: float = 0.3) -> threading.Thread:
    """Run ``action`` on another thread after ``delay``, as the function would while a client waits."""
    def run():
        time.sleep(delay)
        action()
    thread = threading.Thread(target=run)
    thread.start()
    return thread


# -- reading a job --------------------------------------------------------------------------

def test_a_job_shows_its_public_fields_only(score, api_settings, store):
    job_id = make_job(store, api_settings, upload_id="secret-upload-id")

    response = get(score, job_id)

    assert response.status_code == 200
    body = response.json()
    assert body["job_id"] == job_id
    assert body["status"] == "awaiting_upload"
    assert set(body) <= set(PUBLIC_FIELDS)
    assert not [field for field in INTERNAL_FIELDS if field in body]
    assert "secret-upload-id" not in response.text
    assert response.headers["ETag"].startswith('W/"')
    assert response.headers["Cache-Control"] == "no-store"


def test_every_missing_job_gets_the_same_404(score, api_settings, store):
    past = JobStore(aws.table(api_settings), clock=lambda: time.time() - 3600)
    expired = make_job(past, api_settings, ttl_seconds=60)

    answers = [get(score, job_id) for job_id in
               (new_job_id(), expired, "not-a-job", "a" * 500, new_job_id().upper(), "..%2F..%2Fetc")]

    assert [a.status_code for a in answers] == [404] * len(answers)
    assert len({a.text for a in answers}) == 1
    assert answers[0].json()["error"]["code"] == "job_not_found"


class ReadOnlyTable:
    """The real table for reads; any write fails the test (a read must never write)."""

    def __init__(self, table):
        self.table, self.writes = table, []

    def get_item(self, **kwargs):
        return self.table.get_item(**kwargs)

    def __getattr__(self, name):
        self.writes.append(name)
        raise AssertionError(f"the score service called {name}")


def test_a_read_never_writes(api_settings, store, s3):
    # GIVEN a job whose upload landed, and one whose worker was lost on its last attempt
    landed = make_job(store, api_settings)
    s3.put_object(Bucket=api_settings.bucket, Key=api_settings.upload_key(landed), Body=b"video")
    lost = make_job(store, api_settings)
    for _ in range(api_settings.max_receive_count):
        assert store.claim(lost, lease_seconds=-60) is not None  # each worker "died" at once
    before = {job_id: store.get(job_id) for job_id in (landed, lost)}
    table = ReadOnlyTable(store.table)

    class NoS3:
        def __getattr__(self, name):
            raise AssertionError(f"the score service called s3.{name}")

    app = create_app(api_settings, store=JobStore(table), s3=NoS3())
    with serve_in_thread(app) as url:
        # WHEN they are read, long-polled too
        answers = [get(url, job_id, params={"wait": 1}) for job_id in (landed, lost)]

    # THEN they read as they are, and nothing was written
    assert [a.status_code for a in answers] == [200, 200]
    assert [a.json()["status"] for a in answers] == ["awaiting_upload", "processing"]
    assert table.writes == []
    assert {job_id: store.get(job_id) for job_id in (landed, lost)} == before


def test_an_object_under_another_key_does_not_count(score, api_settings, store, s3):
    job_id = make_job(store, api_settings)
    s3.put_object(Bucket=api_settings.bucket, Key=f"uploads/{job_id}/video.mp4", Body=b"video")
    s3.put_object(Bucket=api_settings.bucket, Key=f"uploads/{job_id}", Body=b"video")
    assert get(score, job_id).json()["status"] == "awaiting_upload"


def test_a_finished_job_links_its_filmstrip(score, api_settings, store, s3):
    job_id = make_job(store, api_settings)
    filmstrip_key = api_settings.filmstrip_key(job_id)
    s3.put_object(Bucket=api_settings.bucket, Key=filmstrip_key, Body=b"jpeg bytes", ContentType="image/jpeg")
    claim = store.claim(job_id, lease_seconds=60)["claim"]
    store.succeed(job_id, claim, {
        "score": 71.25, "filmstrip_key": filmstrip_key,
        "model": {"name": "C3D-AVG (MTL-AQA)", "weights": "untrained-seed1", "calibrated": False, "dtype": "float32"},
    })

    response = get(score, job_id)

    body = response.json()
    assert body["status"] == "succeeded"
    assert body["score"] == 71.25
    assert body["model"]["calibrated"] is False
    assert "filmstrip_key" not in body and "claim" not in body
    assert requests.get(body["filmstrip_url"], timeout=10).content == b"jpeg bytes"
    # The URL is signed anew on each read; the ETag stays as long as the job does not change.
    assert get(score, job_id).headers["ETag"] == response.headers["ETag"]


# -- ETags and the long-poll ------------------------------------------------------------------

def test_if_none_match_gives_304_until_the_job_changes(score, api_settings, store):
    job_id = make_job(store, api_settings)
    first = get(score, job_id)
    etag = first.headers["ETag"]

    same = get(score, job_id, headers={"If-None-Match": etag})
    assert same.status_code == 304
    assert same.content == b""
    assert same.headers["ETag"] == etag
    strong_form = get(score, job_id, headers={"If-None-Match": etag.removeprefix("W/")})
    assert strong_form.status_code == 304
    other = get(score, job_id, headers={"If-None-Match": 'W/"0123"'})
    assert other.status_code == 200

    store.mark_queued(job_id)
    changed = get(score, job_id, headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.json()["status"] == "queued"
    assert changed.headers["ETag"] != etag


def test_the_long_poll_returns_the_change(score, api_settings, store):
    job_id = make_job(store, api_settings)
    store.mark_queued(job_id)
    claim = store.claim(job_id, lease_seconds=60)["claim"]
    etag = get(score, job_id).headers["ETag"]

    writer = later(lambda: store.progress(job_id, claim, stage=Stage.DECODING, progress=0.25))
    response = get(score, job_id, params={"wait": api_settings.max_wait_seconds}, headers={"If-None-Match": etag})
    writer.join()

    assert response.status_code == 200
    assert response.json()["stage"] == "decoding"
    assert response.json()["progress"] == 0.25


def test_the_long_poll_without_an_etag_waits_for_a_change_from_the_first_read(score, api_settings, store):
    job_id = make_job(store, api_settings)

    writer = later(lambda: store.mark_queued(job_id))
    response = get(score, job_id, params={"wait": api_settings.max_wait_seconds})
    writer.join()

    assert response.status_code == 200
    assert response.json()["status"] == "queued"


def test_the_long_poll_ends_at_the_deadline_without_a_change(score, api_settings, store):
    job_id = make_job(store, api_settings)
    first = get(score, job_id)

    # A lower bound, not a speed: answering before the deadline would mean it did not wait.
    started = time.monotonic()
    unchanged = get(score, job_id, params={"wait": "1"}, headers={"If-None-Match": first.headers["ETag"]})
    assert time.monotonic() - started >= 1.0
    assert unchanged.status_code == 304
    assert unchanged.headers["ETag"] == first.headers["ETag"]

    started = time.monotonic()
    no_etag = get(score, job_id, params={"wait": "1"})
    assert time.monotonic() - started >= 1.0
    assert no_etag.status_code == 200
    assert no_etag.json() == first.json()


def test_a_finished_job_is_answered_without_waiting():
    # A job that can no longer change: no sleeping, whatever the wait asked for.
    slept = []
    result = wait_for_change(lambda: Snapshot({"status": "succeeded"}, "a"), seen=(), wait_seconds=25,
                             poll_interval_seconds=0.1, sleep=slept.append)
    assert result.etag == "a"
    assert slept == []


@pytest.mark.parametrize("wait", ["-1", "abc", "1.5", "", "6", "99999999", "0x1", " 1"])
def test_a_bad_wait_is_refused(score, api_settings, store, wait):
    assert api_settings.max_wait_seconds == 5
    response = get(score, make_job(store, api_settings), params={"wait": wait})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_wait"


def test_wait_zero_and_the_limit_are_accepted(score, api_settings, store):
    job_id = make_job(store, api_settings)
    store.fail(job_id, "x", "y")
    assert get(score, job_id, params={"wait": "0"}).status_code == 200
    assert get(score, job_id, params={"wait": str(api_settings.max_wait_seconds)}).status_code == 200


def test_wait_for_change_reads_until_the_etag_differs():
    reads = iter([Snapshot({"status": "queued"}, "a"), Snapshot({"status": "queued"}, "a"),
                  Snapshot({"status": "processing"}, "b")])
    now = [0.0]

    result = wait_for_change(lambda: next(reads), seen=(), wait_seconds=10, poll_interval_seconds=1,
                             sleep=lambda s: now.__setitem__(0, now[0] + s), clock=lambda: now[0])

    assert result.etag == "b"
    assert now[0] == 2.0


def test_wait_for_change_stops_at_the_deadline():
    now = [0.0]
    result = wait_for_change(lambda: Snapshot({"status": "queued"}, "a"), seen={"a"}, wait_seconds=1,
                             poll_interval_seconds=0.3, sleep=lambda s: now.__setitem__(0, now[0] + s),
                             clock=lambda: now[0])
    assert result.etag == "a"
    assert now[0] == pytest.approx(1.0)


# -- HTTP plumbing --------------------------------------------------------------------------

def test_a_failure_inside_answers_500_without_details(api_settings):
    broken = dataclasses.replace(api_settings, table="divescore-no-such-table")
    with serve_in_thread(create_app(broken)) as url:
        response = requests.get(f"{url}/v1/jobs/{new_job_id()}", headers={"X-Request-Id": "broken-1"})

    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert "broken-1" in response.json()["error"]["message"]
    assert "Traceback" not in response.text and "ResourceNotFound" not in response.text
    assert "divescore-no-such-table" not in response.text


def test_healthz_and_json_errors(score):
    assert requests.get(f"{score}/healthz").json() == {"status": "ok"}
    missing = requests.get(f"{score}/v1/jobs")
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "not_found")
    wrong_method = requests.post(f"{score}/v1/jobs/{new_job_id()}", json={})
    assert (wrong_method.status_code, wrong_method.json()["error"]["code"]) == (405, "method_not_allowed")


def test_cors_exposes_the_etag_to_the_allowed_origin_only(score, api_settings, store):
    job_id = make_job(store, api_settings)

    allowed = get(score, job_id, headers={"Origin": ALLOWED_ORIGIN})
    assert allowed.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    assert "ETag" in allowed.headers["Access-Control-Expose-Headers"]
    preflight = requests.options(f"{score}/v1/jobs/{job_id}", headers={
        "Origin": ALLOWED_ORIGIN, "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "if-none-match",
    })
    assert preflight.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    assert "if-none-match" in preflight.headers["Access-Control-Allow-Headers"].lower()

    refused = get(score, job_id, headers={"Origin": "http://evil.example"})
    assert "Access-Control-Allow-Origin" not in refused.headers


def test_a_wait_beyond_the_waiting_places_is_refused_at_once():
    from services.status_api.waiting import WaitingPlaces

    places = WaitingPlaces(2)
    with places.taken(), places.taken(), pytest.raises(errors.TooManyWaiting) as refused, places.taken():
        pass
    assert refused.value.status == 503 and refused.value.retry_after == 1
    with places.taken():  # the places are given back
        pass


def test_every_gunicorn_worker_keeps_threads_beyond_its_waiting_places():
    from services.status_api.app import WAITING_PLACES
    from standins.serving import SERVICES

    assert SERVICES["status_api"].threads >= WAITING_PLACES + 2

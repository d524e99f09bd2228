"""The job lifecycle (divescore.jobs) and the sweep, against a real moto server."""

from __future__ import annotations

import pytest

from divescore import aws
from divescore.jobs import TRANSITIONS, JobFinal, JobStore, Stage, Status, new_job_id
from services.sweep.sweep import sweep


@pytest.fixture
def store(settings):
    return JobStore(aws.table(settings))


def new(store: JobStore, settings) -> str:
    job_id = new_job_id()
    store.create(job_id=job_id, filename="dive.mp4", content_type="video/mp4", size=10,
                 key=settings.upload_key(job_id), ttl_seconds=3600)
    return job_id


def test_final_statuses_are_those_nothing_may_follow():
    assert {s for s in Status if s.final} == {Status.SUCCEEDED, Status.FAILED, Status.CANCELED}
    assert all(Status.CANCELED in TRANSITIONS[s] for s in Status if not s.final)


def test_a_move_outside_the_table_is_refused_before_anything_is_written(store, settings):
    job_id = new(store, settings)
    with pytest.raises(ValueError, match="from succeeded to queued"):
        store._transition(job_id, Status.QUEUED, expected=(Status.SUCCEEDED,))
    with pytest.raises(ValueError, match="from awaiting_upload to succeeded"):
        store._transition(job_id, Status.SUCCEEDED, expected=(Status.AWAITING_UPLOAD,))
    assert store.get(job_id)["status"] == Status.AWAITING_UPLOAD


def test_a_transition_names_the_status_it_expects(store, settings):
    job_id = new(store, settings)
    assert not store.fail(job_id, "x", "y", expected=(Status.QUEUED,))  # it is awaiting_upload
    assert store.get(job_id)["status"] == Status.AWAITING_UPLOAD
    assert store.fail(job_id, "x", "y", expected=(Status.AWAITING_UPLOAD,))
    assert store.get(job_id)["status"] == Status.FAILED


@pytest.mark.parametrize("status", [Status.AWAITING_UPLOAD, Status.QUEUED, Status.PROCESSING])
def test_a_job_can_be_canceled_until_it_ends(store, settings, status):
    job_id = new(store, settings)
    claim = None
    if status is not Status.AWAITING_UPLOAD:
        store.mark_queued(job_id)
    if status is Status.PROCESSING:
        claim = store.claim(job_id, lease_seconds=60)["claim"]

    before = store.cancel(job_id)

    assert before["status"] == status
    job = store.get(job_id)
    assert job["status"] == Status.CANCELED and "lease_expires_at" not in job
    assert store.cancel(job_id)["status"] == Status.CANCELED  # twice: no change, no error
    assert store.get(job_id)["updated_at"] == job["updated_at"]
    assert store.claim(job_id, lease_seconds=60) is None  # a late event finds nothing to do
    if claim:  # the worker that held it can write nothing more
        assert not store.progress(job_id, claim, stage=Stage.SCORING, progress=0.5)
        assert not store.succeed(job_id, claim, {"score": 1.0})
        assert not store.fail(job_id, "x", "y", claim=claim)
    assert store.get(job_id)["status"] == Status.CANCELED


def test_a_finished_job_cannot_be_canceled(store, settings):
    job_id = new(store, settings)
    claim = store.claim(job_id, lease_seconds=60)["claim"]
    store.succeed(job_id, claim, {"score": 1.0})
    with pytest.raises(JobFinal) as raised:
        store.cancel(job_id)
    assert raised.value.status is Status.SUCCEEDED
    assert store.cancel(new_job_id()) is None


def test_a_failed_attempt_waits_queued_for_its_retry_then_is_claimed_again(store, settings):
    job_id = new(store, settings)
    claim = store.claim(job_id, lease_seconds=60, attempt=1, max_attempts=3)["claim"]
    assert store.retry_later(job_id, claim, at=store.clock() + 2, attempt=2, max_attempts=3,
                             code="attempt_failed", message="Attempt 1 of 3 failed.")
    waiting = store.get(job_id)
    assert waiting["status"] == Status.QUEUED and waiting["retry"]["attempt"] == 2
    again = store.claim(job_id, lease_seconds=60, attempt=2, max_attempts=3)
    assert again["status"] == Status.PROCESSING and "retry" not in again and again["attempts"] == 2
    assert again["attempt"] == {"number": 2, "of": 3}


def test_the_sweep_fails_only_jobs_lost_on_their_last_attempt(store, settings):
    lost = new(store, settings)
    for _ in range(settings.max_receive_count):
        assert store.claim(lost, lease_seconds=-60) is not None  # each worker "died" at once
    lost_on_last_receive = new(store, settings)
    store.claim(lost_on_last_receive, lease_seconds=-60, last_attempt=True)
    will_be_retried = new(store, settings)
    store.claim(will_be_retried, lease_seconds=-60)
    still_working = new(store, settings)
    store.claim(still_working, lease_seconds=60, last_attempt=True)

    assert sorted(sweep(store, settings)) == sorted([lost, lost_on_last_receive])

    job = store.get(lost)
    assert job["status"] == Status.FAILED and job["error"]["code"] == "worker_lost"
    assert f"{settings.max_receive_count} attempt(s)" in job["error"]["message"]
    assert store.get(lost_on_last_receive)["status"] == Status.FAILED
    assert store.get(will_be_retried)["status"] == Status.PROCESSING
    assert store.get(still_working)["status"] == Status.PROCESSING
    assert sweep(store, settings) == []  # nothing left to do


def test_the_sweep_queues_again_a_webhook_that_could_not_be_queued(settings):
    queued = []

    def unreachable_queue(job_id):
        raise ConnectionError("the callbacks queue is unreachable")

    store = JobStore(aws.table(settings), on_final=unreachable_queue)
    job_id = new_job_id()
    store.create(job_id=job_id, filename="d.mp4", content_type="video/mp4", size=1, key="k", ttl_seconds=3600,
                 callback_url="https://example.org/hook")
    assert store.cancel(job_id)  # ended; queuing its webhook failed, the job is canceled all the same
    assert store.get(job_id)["status"] == Status.CANCELED

    later = JobStore(aws.table(settings), on_final=queued.append, clock=lambda: store.clock() + 600)
    sweep(later, settings)
    assert queued == [job_id]
    store.record_callback(job_id, {"at": "2025-06-01T12:00:00.000Z", "ok": True, "status": 204}, state="delivered")
    queued.clear()
    sweep(later, settings)
    assert queued == []

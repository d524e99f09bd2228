"""The holds that stop the function at a point of a job's work while a test acts
(devstack.holds): the function's side in a thread, the test's side here."""

from __future__ import annotations

import threading
import time

import pytest

from devstack.holds import NEXT_JOB, Holds


def reach_in_thread(holds: Holds, job_id: str, attempt: int, point: str, deadline: float) -> dict:
    outcome: dict = {}

    def run():
        outcome["held"] = holds.reach(job_id, attempt, point, deadline=deadline)
        outcome["ended"] = time.monotonic()

    thread = threading.Thread(target=run)
    thread.start()
    outcome["thread"] = thread
    return outcome


def test_an_armed_point_holds_until_released(tmp_path):
    holds = Holds(tmp_path)
    hold = holds.arm("job", "batch1")
    assert holds.armed_for("job") and not holds.armed_for("other")
    outcome = reach_in_thread(holds, "job", 1, "batch1", deadline=time.monotonic() + 60)
    marker = hold.reached(10)
    assert marker["job_id"] == "job" and marker["attempt"] == 1 and marker["point"] == "batch1"
    time.sleep(0.3)
    assert outcome["thread"].is_alive()  # still held
    released = time.monotonic()
    hold.release()
    outcome["thread"].join(10)
    assert outcome["held"] and outcome["ended"] >= released


def test_an_unarmed_point_or_another_attempt_passes_at_once(tmp_path):
    holds = Holds(tmp_path)
    holds.arm("job", "batch1", attempt=2)
    assert holds.reach("job", 1, "batch1", deadline=time.monotonic() + 60) is False
    assert holds.reach("job", 2, "start", deadline=time.monotonic() + 60) is False
    assert holds.reach("other", 2, "batch1", deadline=time.monotonic() + 60) is False


def test_a_forgotten_hold_ends_before_the_invocation_does(tmp_path):
    holds = Holds(tmp_path)
    hold = holds.arm("job", "start")
    started = time.monotonic()
    assert holds.reach("job", 1, "start", deadline=started + 3.5) is True  # 3.5 s left, 3 s margin
    assert 0.4 < time.monotonic() - started < 2.0
    assert hold.reached(0)["pid"]


def test_the_next_job_arm_is_taken_by_one_job_only(tmp_path):
    holds = Holds(tmp_path)
    hold = holds.arm(NEXT_JOB, "start")
    first = reach_in_thread(holds, "a", 1, "start", deadline=time.monotonic() + 60)
    assert hold.reached(10)["job_id"] == "a"
    assert holds.reach("b", 1, "start", deadline=time.monotonic() + 60) is False
    hold.release()
    first["thread"].join(10)
    assert first["held"]


def test_a_hold_lasts_at_least_what_the_function_asks(tmp_path):
    holds = Holds(tmp_path)
    hold = holds.arm("job", "start")
    outcome: dict = {}

    def run():
        started = time.monotonic()
        holds.reach("job", 1, "start", deadline=started + 60, at_least=0.5)
        outcome["held_s"] = time.monotonic() - started

    thread = threading.Thread(target=run)
    thread.start()
    hold.reached(10)
    hold.release()  # at once
    thread.join(10)
    assert outcome["held_s"] >= 0.5


def test_stopping_a_stack_releases_what_it_holds(tmp_path):
    holds = Holds(tmp_path)
    hold = holds.arm("job", "start")
    holds.arm("later", "start")
    outcome = reach_in_thread(holds, "job", 1, "start", deadline=time.monotonic() + 60)
    hold.reached(10)
    holds.release_all()
    outcome["thread"].join(10)
    assert not outcome["thread"].is_alive()
    assert holds.reach("later", 1, "start", deadline=time.monotonic() + 60) is False  # disarmed


def test_waiting_for_a_point_never_reached_fails_in_its_time(tmp_path):
    hold = Holds(tmp_path).arm("job", "start")
    with pytest.raises(TimeoutError, match=r"job\.any\.start"):
        hold.reached(0.2)

"""Load: 50 jobs submitted at once through the API to a native stack with two function
runtimes. All finish, each with its own score, none is worked on twice, the queue ends empty,
and no runtime is ever given two invocations at once. Prints the wall time and jobs/minute
(a measurement, not an assertion: the machine may be busy)."""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.support.helpers import wait_until
from tests.support.stack_support import (
    claims_of,
    create_job,
    dead_letters,
    function_records,
    log_lines,
    post_upload,
    queue_counts,
    small_clip,
)

pytestmark = pytest.mark.stack

JOBS = 50
RUNTIMES = 2


def invocations(lines: list[str]) -> list[str]:
    """The request ids of the invocations the RIE's log shows, in order. AssertionError if one
    starts before the previous one ended, or one never ends."""
    done: list[str] = []
    open_request = None
    for line in lines:
        if started := re.match(r"START RequestId: (\S+)", line):
            assert open_request is None, f"{started.group(1)} started while {open_request} was running"
            open_request = started.group(1)
        elif ended := re.match(r"END RequestId: (\S+)", line):
            assert ended.group(1) == open_request, f"{ended.group(1)} ended while {open_request} was running"
            done.append(open_request)
            open_request = None
    assert open_request is None, f"{open_request} never ended"
    return done


def test_invocations_are_read_from_the_log_and_an_overlap_is_caught():
    one_at_a_time = ["START RequestId: a Version: $LATEST", "END RequestId: a", "REPORT RequestId: a",
                     "START RequestId: b Version: $LATEST", "{}", "END RequestId: b"]
    assert invocations(one_at_a_time) == ["a", "b"]
    assert invocations(["no invocation logged"]) == []
    with pytest.raises(AssertionError, match="b started while a was running"):
        invocations(["START RequestId: a", "START RequestId: b", "END RequestId: a", "END RequestId: b"])
    with pytest.raises(AssertionError, match="never ended"):
        invocations(["START RequestId: a"])


def most_at_once(stack, runtimes: int) -> int:
    """The most jobs being worked on at the same moment (claim to result, from the logs)."""
    events = []
    for i in range(runtimes):
        for record in function_records(stack, f"function-{i}"):
            message = str(record.get("message", ""))
            if record.get("job_id") and message.startswith("claimed"):
                events.append((record["timestamp"], 1))
            elif record.get("job_id") and message.startswith(("succeeded", "failed")):
                events.append((record["timestamp"], -1))
    running = peak = 0
    for _, change in sorted(events):  # an end sorts before a start at the same instant
        running += change
        peak = max(peak, running)
    return peak


def test_fifty_concurrent_jobs_all_finish_once_each(make_stack, tmp_path):
    stack = make_stack(runtimes=RUNTIMES)
    clips = [small_clip(tmp_path / f"clip-{i}.mp4", offset=7 * i) for i in range(JOBS)]

    def submit(path):
        job = create_job(stack, path)
        post_upload(job, path)
        return job["job_id"]

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=JOBS) as pool:
        job_ids = list(pool.map(submit, clips))

    def finished():
        jobs = [stack.store.get(job_id) for job_id in job_ids]
        return jobs if all(job["status"] in ("succeeded", "failed") for job in jobs) else None

    wait_until(finished, 900, interval=1, what=f"{JOBS} jobs to finish")
    wall = time.monotonic() - started
    print(f"\n{JOBS} jobs on {RUNTIMES} runtimes: {wall:.1f} s wall, {JOBS / wall * 60:.1f} jobs/min")

    finals = [requests.get(f"{stack.score_url}/v1/jobs/{job_id}", timeout=30).json() for job_id in job_ids]
    assert [f["status"] for f in finals] == ["succeeded"] * JOBS, [f.get("error") for f in finals]
    assert len({f["score"] for f in finals}) == JOBS  # fifty different clips, fifty different scores
    assert [f["filename"] for f in finals] == [clip.name for clip in clips]
    assert [f["size"] for f in finals] == [clip.stat().st_size for clip in clips]
    assert [stack.store.get(job_id)["attempts"] for job_id in job_ids] == [1] * JOBS
    assert [len(claims_of(stack, job_id, RUNTIMES)) for job_id in job_ids] == [1] * JOBS
    wait_until(lambda: queue_counts(stack) == (0, 0), 60, what="the jobs queue to drain")
    assert dead_letters(stack) == []
    assert most_at_once(stack, RUNTIMES) <= RUNTIMES
    served = [sum(1 for job_id in job_ids if claims_of(stack, job_id, RUNTIMES) == [f"function-{i}"])
              for i in range(RUNTIMES)]
    print(f"jobs per runtime: {served}")
    assert sum(served) == JOBS
    for i in range(RUNTIMES):
        # One after another (an overlap fails inside), and at least one invocation per job it
        # scored: a log without them would prove nothing.
        assert len(invocations(log_lines(stack, f"function-{i}"))) >= served[i], f"function-{i}"

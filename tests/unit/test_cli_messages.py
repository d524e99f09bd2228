"""What the command line says in its own terms: the next step when the API cannot be reached,
and the window a job scored."""

from __future__ import annotations

import json

from client.cli import main
from client.report import describe_job
from tests.support.helpers import free_port


def test_an_unreachable_api_says_to_start_the_stack_or_point_at_another(capsys):
    # GIVEN an address nothing listens on
    url = f"http://127.0.0.1:{free_port()}"

    # THEN status says so, and what to do; the exit status stays 1 (docs/client.md)
    assert main(["status", "0" * 32, "--api-url", url]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"divescore status: Could not reach {url}/v1/jobs/")
    assert "Is the stack running (`make run`)? Or point at another with `--api-url URL`." in err

    assert main(["status", "0" * 32, "--api-url", url, "--json"]) == 1
    error = json.loads(capsys.readouterr().out)["error"]
    assert error["code"] == "unreachable" and "`make run`" in error["message"]


def test_a_job_shows_the_window_it_scored():
    job = {"job_id": "a", "filename": "dive.mp4", "status": "succeeded", "score": 71.5, "entry_s": 1.0,
           "window": {"how": "given", "start_frame": 0, "end_frame": 101, "start_s": 0.0, "end_s": 4.08,
                      "fps": 25.0, "video_s": 10.0, "shifted": "the entry at 1.00 s is earlier"}}
    assert "  window: given: 0.00-4.08 s of 10.00 s, frames 0-101 (shifted: the entry at 1.00 s is earlier)" \
        in describe_job(job).splitlines()
    detected = {**job, "window": {**job["window"], "how": "detected", "confidence": 0.8, "shifted": None}}
    assert "  window: detected, confidence 0.80: 0.00-4.08 s of 10.00 s, frames 0-101" in describe_job(detected)
    whole = {**job, "window": {"how": "whole", "start_s": 0.0, "end_s": 10.0, "video_s": 10.0}}
    assert "  window: whole video (0-10.00 s): no entry given or found with confidence" in describe_job(whole)
    queued = {"job_id": "b", "filename": "dive.mp4", "status": "queued", "entry_s": 12.4}
    assert "  entry: 12.4 s (the window ends there)" in describe_job(queued)


def test_a_job_in_which_no_dive_was_found_says_so_beside_its_number():
    job = {"job_id": "a", "filename": "still.mp4", "status": "succeeded", "score": 31.5, "entries": [],
           "window": {"how": "whole", "start_s": 0.0, "end_s": 10.0, "video_s": 10.0, "reason": "no_dive_found"}}
    lines = describe_job(job).splitlines()
    assert lines[0] == "still.mp4: score 31.50 (no dive found in this video: not a dive's score)"
    assert "  window: whole video (0-10.00 s): no dive found in this video" in lines
    short = {**job, "window": {**job["window"], "end_s": 3.2, "video_s": 3.2, "reason": "too_short"}}
    lines = describe_job(short).splitlines()
    assert lines[0] == "still.mp4: score 31.50"  # a short video is usually one dive
    assert ("  window: whole video (0-3.20 s): the video is no longer than the 4.08 s window, about one dive; "
            "no entry was looked for") in lines


def test_a_job_lists_every_entry_its_search_found():
    job = {"job_id": "a", "filename": "three.mp4", "status": "succeeded", "score": 40.0,
           "entries": [{"entry_s": 6.04, "confidence": 0.71}, {"entry_s": 13.0, "confidence": 0.92}],
           "window": {"how": "detected", "start_frame": 223, "end_frame": 325, "start_s": 8.92, "end_s": 13.0,
                      "fps": 25.0, "video_s": 20.0, "confidence": 0.92, "entry_s": 13.0}}
    assert ("  entries found: 6.04 s (0.71), 13.00 s (0.92) (score another: "
            "`divescore rescore a --entry SECONDS`)") in describe_job(job).splitlines()

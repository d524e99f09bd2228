"""``divescore submit`` and ``divescore status`` as a person runs them, against the native stack."""

from __future__ import annotations

import csv
import json
import os
import re
import secrets
import subprocess
import sys

import pytest

from client.api import ApiClient
from client.report import UNTRAINED_NOTE
from tests.support.stack_support import small_clip
from tests.support.videos import files_to_submit

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def videos(tmp_path_factory, stack):
    return files_to_submit(tmp_path_factory.mktemp("videos"), stack.settings.multipart_threshold_bytes)


def divescore(stack, *args: str, settings_from_env: bool = False) -> subprocess.CompletedProcess:
    """Run the command in a child process. The API's address comes from flags, or from the
    stack's DIVESCORE_* variables with ``settings_from_env``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DIVESCORE_", "AWS_"))}
    if settings_from_env:
        env.update({k: v for k, v in stack.env.items() if k.startswith("DIVESCORE_")})
        flags = []
    else:
        flags = ["--presign-url", stack.presign_url, "--score-url", stack.score_url]
    return subprocess.run([sys.executable, "-m", "client.cli", *args, *flags], env=env, capture_output=True,
                          text=True, timeout=600, check=False)


def job_id_in(text: str) -> str:
    return re.search(r"job: ([0-9a-f]{32})", text).group(1)


def test_submit_uploads_follows_the_job_and_prints_its_score(stack, videos):
    result = divescore(stack, "submit", str(videos["small"]))

    assert result.returncode == 0, result.stderr
    job = stack.store.get(job_id_in(result.stdout))
    assert job["status"] == "succeeded"
    assert f"{videos['small']}: score {job['score']:.2f}" in result.stdout
    assert job["model"]["name"] in result.stdout
    assert (UNTRAINED_NOTE in result.stdout) == (job["model"]["calibrated"] is False)


def test_json_prints_one_object_per_video_and_a_failed_job_exits_1(stack, videos):
    # GIVEN a video the function can score and a file it cannot decode, named like a video
    result = divescore(stack, "submit", "--json", str(videos["small"]), str(videos["broken"]),
                       settings_from_env=True)

    # THEN stdout is exactly one JSON object per video, in order, and the exit status says one failed
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    scored, failed = (json.loads(line) for line in lines)
    assert scored["file"] == str(videos["small"])
    assert scored["status"] == "succeeded"
    assert scored["score"] == pytest.approx(stack.store.get(scored["job_id"])["score"])
    assert failed["file"] == str(videos["broken"])
    assert failed["status"] == "failed"
    assert failed["error"] == stack.store.get(failed["job_id"])["error"]


def test_a_failed_job_prints_its_error_and_exits_1(stack, videos):
    result = divescore(stack, "submit", str(videos["broken"]))

    assert result.returncode == 1
    job = stack.store.get(job_id_in(result.stdout))
    assert job["status"] == "failed"
    assert job["error"]["message"] in result.stdout


def test_a_file_the_api_refuses_exits_2_with_the_api_message(stack, videos):
    result = divescore(stack, "submit", str(videos["text"]))

    assert result.returncode == 2
    assert result.stdout == ""
    assert "is not a supported video type" in result.stderr


def test_a_missing_file_exits_2_before_anything_is_sent(stack, videos, tmp_path):
    result = divescore(stack, "submit", str(videos["small"]), str(tmp_path / "missing.mp4"), "--json")

    assert result.returncode == 2
    assert json.loads(result.stdout) == {
        "file": str(tmp_path / "missing.mp4"), "job_id": None, "status": "refused",
        "error": {"code": "no_such_file", "message": "no such file"},
    }


def test_a_large_file_is_uploaded_in_parts(stack, videos):
    size = videos["large"].stat().st_size
    result = divescore(stack, "submit", "--no-wait", "--json", str(videos["large"]))

    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    job = stack.store.get(answer["job_id"])
    assert job.get("upload_id"), "a file over the threshold goes up in parts"
    assert job["status"] != "awaiting_upload"  # the upload was completed
    stored = stack.client("s3").head_object(Bucket=stack.settings.bucket, Key=stack.settings.upload_key(job["job_id"]))
    assert stored["ContentLength"] == size


def test_status_shows_one_job(stack):
    api = ApiClient(stack.presign_url, stack.score_url)
    created = api.create_job(filename="later.mp4", content_type="video/mp4", size=1000)

    text = divescore(stack, "status", created["job_id"])
    as_json = divescore(stack, "status", created["job_id"], "--json")

    assert text.returncode == 0
    assert f"later.mp4: awaiting_upload\n  job: {created['job_id']}" in text.stdout
    assert as_json.returncode == 0
    assert json.loads(as_json.stdout) == api.get_job(created["job_id"]).job


def test_status_of_an_unknown_job_exits_2(stack):
    job_id = secrets.token_hex(16)
    result = divescore(stack, "status", job_id)

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == (f"divescore status: no job {job_id} here: check the id, or submit the video again "
                             f"with `divescore submit`.\n")


def test_submit_without_waiting_says_how_to_follow_the_job(stack, videos):
    result = divescore(stack, "submit", "--no-wait", str(videos["small"]))

    assert result.returncode == 0, result.stderr
    job_id = re.search(r"uploaded as job ([0-9a-f]{32})", result.stdout).group(1)
    assert f"follow it with `divescore status {job_id} --wait`" in result.stdout
    assert "awaiting_upload" not in result.stdout


def test_submit_with_an_entry_scores_the_window_ending_there_and_shows_it(stack, videos, tmp_path):
    # GIVEN a 2 s video and its entry at 1.5 s (earlier than the window's 4.08 s)
    table = tmp_path / "ranking.csv"
    result = divescore(stack, "submit", str(videos["small"]), "--entry", "1.5", "--csv", str(table))

    # THEN the job was created with it, and the window it scored is shown, shifted to the start
    assert result.returncode == 0, result.stderr
    job = stack.store.get(job_id_in(result.stdout))
    assert job["entry_s"] == 1.5 and job["window"]["how"] == "given"
    assert (job["window"]["start_s"], job["window"]["end_s"]) == (0.0, 2.0)  # never past the video's end
    assert "shifted" in job["window"]
    assert "  window: given: 0.00-2.00 s of 2.00 s, frames 0-49 (shifted: " in result.stdout
    [row] = csv.DictReader(table.open(encoding="utf-8"))
    assert (row["window"], row["calibrated"]) == ("given 0-2", str(job["model"]["calibrated"]).lower())
    assert row["model"] == f"{job['model']['name']}, {job['model']['weights']}, {job['model']['dtype']}"


def test_an_entry_past_the_videos_end_fails_the_job_with_a_code(stack, videos):
    result = divescore(stack, "submit", "--json", str(videos["small"]), "--entry", "9")

    assert result.returncode == 1, result.stderr
    job = json.loads(result.stdout)
    assert (job["status"], job["error"]["code"], job["entry_s"]) == ("failed", "entry_after_end", 9)
    assert "2.00 s" in job["error"]["message"]


def test_rescore_scores_the_video_again_over_the_window_ending_at_the_entry(stack, videos):
    first = json.loads(divescore(stack, "submit", "--json", str(videos["small"])).stdout)

    waited = divescore(stack, "rescore", first["job_id"], "--entry", "1.9", "--wait", "--json")
    queued = divescore(stack, "rescore", first["job_id"])

    assert waited.returncode == 0, waited.stderr
    again = json.loads(waited.stdout)
    assert (again["status"], again["rescore_of"], again["entry_s"]) == ("succeeded", first["job_id"], 1.9)
    assert again["window"]["how"] == "given" and again["job_id"] != first["job_id"]
    assert queued.returncode == 0, queued.stderr
    new_id = re.search(r"as job ([0-9a-f]{32})", queued.stdout).group(1)
    assert f"follow it with `divescore status {new_id} --wait`" in queued.stdout
    unknown = divescore(stack, "rescore", secrets.token_hex(16))
    assert unknown.returncode == 2 and "no job" in unknown.stderr


def test_cancel_cancels_once_and_refuses_a_finished_job(stack, videos):
    api = ApiClient(stack.presign_url, stack.score_url)
    created = api.create_job(filename="unwanted.mp4", content_type="video/mp4", size=1000)

    first = divescore(stack, "cancel", created["job_id"])
    again = divescore(stack, "cancel", created["job_id"], "--json")

    assert first.returncode == 0, first.stderr
    assert f"unwanted.mp4: canceled\n  job: {created['job_id']}" in first.stdout
    assert again.returncode == 0 and json.loads(again.stdout)["status"] == "canceled"
    scored = divescore(stack, "submit", "--json", str(videos["small"]))
    finished = divescore(stack, "cancel", json.loads(scored.stdout)["job_id"])
    assert finished.returncode == 1 and "already succeeded" in finished.stderr
    assert divescore(stack, "cancel", secrets.token_hex(16)).returncode == 2


# -- several videos: followed together, ranked ----------------------------------------------

def test_several_videos_are_followed_together_and_ranked_with_a_csv(stack, videos, tmp_path):
    # GIVEN three videos the function can score (different content, so different scores)
    clips = [small_clip(tmp_path / f"dive-{n}.mp4", offset=7 * n) for n in range(3)]
    table = tmp_path / "ranking.csv"

    result = divescore(stack, "submit", *map(str, clips), "--csv", str(table))

    # THEN every job succeeded, the table ranks them by the scores the API gives, and so does the CSV
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(table.open(encoding="utf-8")))
    assert [r["file"] for r in rows] != [] and sorted(r["file"] for r in rows) == sorted(map(str, clips))
    api = ApiClient(stack.presign_url, stack.score_url)
    scores = {r["file"]: api.get_job(r["job_id"]).job["score"] for r in rows}
    assert [float(r["score"]) for r in rows] == [scores[r["file"]] for r in rows]  # exactly the API's numbers
    assert [float(r["score"]) for r in rows] == sorted(scores.values(), reverse=True)
    assert [r["rank"] for r in rows] == ["1", "2", "3"]
    assert {r["status"] for r in rows} == {"succeeded"}
    printed = result.stdout.split("\n\n")[-1].splitlines()
    assert printed[0].split() == ["rank", "score", "video"]
    assert [line.split()[2] for line in printed[1:]] == [r["file"] for r in rows]
    assert [line.split()[1] for line in printed[1:]] == [f"{float(r['score']):.2f}" for r in rows]


def test_a_batch_with_a_failed_job_exits_1_and_ranks_it_last(stack, videos, tmp_path):
    table = tmp_path / "ranking.csv"

    result = divescore(stack, "submit", str(videos["broken"]), str(videos["small"]), "--csv", str(table))

    assert result.returncode == 1, result.stderr
    rows = list(csv.DictReader(table.open(encoding="utf-8")))
    assert [(r["file"], r["rank"], r["status"]) for r in rows] == [
        (str(videos["small"]), "1", "succeeded"), (str(videos["broken"]), "", "failed"),
    ]
    assert rows[1]["error_code"] == stack.store.get(rows[1]["job_id"])["error"]["code"]
    table_lines = [line.split() for line in result.stdout.split("\n\n")[-1].splitlines()]
    assert table_lines[-1] == ["-", "-", str(videos["broken"]), "failed:", rows[1]["error_code"]]


def test_a_refused_file_in_a_batch_exits_2_and_the_others_are_still_scored(stack, videos, tmp_path):
    table = tmp_path / "ranking.csv"

    result = divescore(stack, "submit", "--json", str(videos["small"]), str(videos["text"]), "--csv", str(table))

    assert result.returncode == 2, result.stderr
    scored, refused = (json.loads(line) for line in result.stdout.splitlines())
    assert scored["status"] == "succeeded"
    assert (refused["status"], refused["error"]["code"]) == ("refused", "unsupported_media_type")
    rows = list(csv.DictReader(table.open(encoding="utf-8")))
    assert [(r["file"], r["status"], r["error_code"]) for r in rows] == [
        (str(videos["small"]), "succeeded", ""), (str(videos["text"]), "refused", "unsupported_media_type"),
    ]

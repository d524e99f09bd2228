"""Property-based fuzzing of both services of the running native stack from docs/openapi.yaml
(schemathesis): no 5xx, every response as documented, a bounded number of cases per operation.

tests/service/test_api_contract.py fuzzes the services alone, where every job id is unknown. Here the
ids are drawn, most of the time, from jobs that exist in the stack in every state (waiting
for their upload, scored, failed, a multipart upload still open), so the fuzzed ``wait``,
``If-None-Match`` and parts lists reach the code paths of real jobs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.support import openapi_contract
from tests.support.helpers import TESTS
from tests.support.stack_support import create_job, log_lines, new_job, padded, post_upload, small_clip, wait_final

pytestmark = pytest.mark.stack

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
MAX_EXAMPLES = 40  # per operation and phase


@pytest.fixture(scope="module")
def known_jobs(stack, tmp_path_factory):
    """Job ids of every kind: (all of them, those with a multipart upload still open)."""
    folder = tmp_path_factory.mktemp("fuzz")
    waiting = [new_job(stack).json()["job_id"] for _ in range(2)]
    clip = small_clip(folder / "clip.mp4", offset=11)
    scored = create_job(stack, clip)
    post_upload(scored, clip)
    junk = folder / "junk.mp4"
    junk.write_bytes(b"\x00" * 5000)
    failed = create_job(stack, junk)
    post_upload(failed, junk)
    big = padded(small_clip(folder / "big.mp4"), 7 * 1024 * 1024)
    multipart = [create_job(stack, big)["job_id"] for _ in range(3)]
    for job in (scored, failed):
        wait_final(stack, job["job_id"])
    return [*waiting, scored["job_id"], failed["job_id"], *multipart], multipart


def fuzz_config(path: Path, known: list[str], open_uploads: list[str]) -> Path:
    """tests/schemathesis.toml plus dictionaries of real job ids, drawn 80% of the time."""
    base = (TESTS / "schemathesis.toml").read_text()
    path.write_text(base + f"""
[dictionaries]
known-jobs = {{ values = {json.dumps(known)} }}
open-uploads = {{ values = {json.dumps(open_uploads)} }}

short-waits = {{ values = [0, 1, 2] }}

[[operations]]
include-operation-id = "getJob"
[operations.parameters]
"path.job_id" = {{ dictionary = "known-jobs", probability = 0.8 }}
# A long poll on a job that does not change holds for the whole wait: mostly short ones.
"query.wait" = {{ dictionary = "short-waits", probability = 0.8 }}

[[operations]]
include-operation-id = "uploadParts"
[operations.parameters]
"path.job_id" = {{ dictionary = "open-uploads", probability = 0.8 }}

[[operations]]
include-operation-id = "completeUpload"
# A parts list can fit the schema and still not fit the upload (a part missing): that is
# the documented 400 invalid_parts, not a valid request refused.
checks.positive_data_acceptance.expected-statuses = ["200", "400", "404", "409"]
[operations.parameters]
"path.job_id" = {{ dictionary = "open-uploads", probability = 0.8 }}

[[operations]]
include-operation-id = "cancelJob"
# A job that already ended answers the documented 409 job_already_final.
checks.positive_data_acceptance.expected-statuses = ["200", "404", "409"]
[operations.parameters]
"path.job_id" = {{ dictionary = "known-jobs", probability = 0.8 }}
""")
    return path


@pytest.mark.parametrize("tag", ["presign", "score"])
def test_fuzzing_finds_no_server_error_and_no_difference_from_the_document(stack, known_jobs, tag, tmp_path):
    config = fuzz_config(tmp_path / "schemathesis.toml", *known_jobs)
    base = stack.presign_url if tag == "presign" else stack.score_url
    result = subprocess.run(
        [str(SCHEMATHESIS), "--config-file", str(config), "run", str(openapi_contract.SPEC_PATH),
         "--url", base, "--include-tag", tag, "--checks", "all", "--phases", "examples,coverage,fuzzing",
         "--max-examples", str(MAX_EXAMPLES), "--seed", "8", "--no-shrink",
         # One worker: Python 3.11.7's ast.parse is not thread safe (CPython gh-106905) and
         # hypothesis parses lambdas in each worker thread ("AST constructor recursion depth mismatch").
         "--workers", "1",
         "--request-timeout", "40", "--max-response-time", "35"],  # the longest long poll is 25 s
        capture_output=True, text=True, cwd=tmp_path, timeout=420, check=False,
    )
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]
    # The fuzzing reached real jobs, not only unknown ids:
    known, _ = known_jobs
    reached = [r for r in requests_logged(stack, tag) if r.get("job_id") in known and r["status"] != 404]
    assert len(reached) >= 3, f"{len(reached)} requests reached a real job"


def requests_logged(stack, service: str) -> list[dict]:
    records = []
    for line in log_lines(stack, service):
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("message") == "request":
                records.append(record)
    return records


def test_the_jobs_fuzzed_through_stay_consistent(stack, known_jobs):
    """After the fuzzing, every job still reads as a documented job: fuzzed parts lists may
    have failed the open uploads, never broken them."""
    known, _ = known_jobs
    for job_id in known:
        response = requests.get(f"{stack.score_url}/v1/jobs/{job_id}", timeout=30)
        openapi_contract.check("GET", "/v1/jobs/{job_id}", response)
        assert response.status_code == 200
        body = response.json()
        if body["status"] == "canceled":  # fuzzed cancels
            continue
        if body["status"] == "failed":
            assert body["error"]["code"] in ("not_a_video", "upload_incomplete"), body["error"]

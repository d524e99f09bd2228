"""Both services under gunicorn (the command line the stack uses) against a real moto server,
checked against docs/openapi.yaml: real flows, every kind of error, schemathesis, and logs."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from jsonschema.exceptions import ValidationError
from openapi_spec_validator import validate

from divescore.jobs import Stage
from divescore.settings import MB, MIB
from services.jobs_api import create_app as create_presign_app
from services.status_api import create_app as create_score_app
from tests.support import openapi_contract
from tests.support.api_support import ALLOWED_ORIGIN, serve_with_gunicorn
from tests.support.helpers import ROOT, TESTS

JOBS = "/v1/jobs"
COMPLETE = "/v1/jobs/{job_id}/upload/complete"
CANCEL = "/v1/jobs/{job_id}/cancel"
PARTS = "/v1/jobs/{job_id}/upload/parts"
JOB = "/v1/jobs/{job_id}"
LARGE = 11 * MIB


@dataclasses.dataclass(frozen=True)
class Services:
    presign: str
    score: str
    logs: list


# conftest's api_settings for this module: the limits docs/openapi.yaml states (the defaults),
# with small multipart parts.
API_SETTINGS = {"max_upload_bytes": 200 * MB, "max_wait_seconds": 25, "log_level": "INFO"}


@pytest.fixture(scope="module")
def services(api_settings, emulator, tmp_path_factory):
    logs = tmp_path_factory.mktemp("service-logs")
    with serve_with_gunicorn("jobs_api", api_settings, emulator.env, logs) as presign, \
            serve_with_gunicorn("status_api", api_settings, emulator.env, logs) as score:
        yield Services(presign=presign.url, score=score.url, logs=[presign.log, score.log])


def create(services, size: int = 1000, **fields) -> requests.Response:
    body = {"filename": "dive.mp4", "content_type": "video/mp4", "size": size, **fields}
    response = requests.post(services.presign + JOBS, json=body)
    openapi_contract.check("POST", JOBS, response)
    return response


def get_job(services, job_id: str, **kwargs) -> requests.Response:
    response = requests.get(f"{services.score}/v1/jobs/{job_id}", timeout=40, **kwargs)
    openapi_contract.check("GET", JOB, response)
    return response


# -- the document itself --------------------------------------------------------------------

def test_the_document_is_valid_openapi():
    validate(openapi_contract.spec())


def test_the_documented_file_name_pattern_refuses_what_the_service_refuses():
    """Every code point the service refuses in a file name (control and format characters,
    as this Python's Unicode data has them) and no other is outside the document's pattern."""
    import re
    import unicodedata

    from services.jobs_api.uploads import FORBIDDEN_CATEGORIES

    pattern = re.compile(openapi_contract.spec()["components"]["schemas"]["NewJob"]["properties"]["filename"]
                         ["pattern"])
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        category = unicodedata.category(char)
        if category == "Cs":
            continue  # lone surrogates cannot be written in JSON text the schema sees
        refused = pattern.search(f"a{char}b.mp4") is None  # JSON Schema patterns search
        assert refused == (category in FORBIDDEN_CATEGORIES), f"U+{code:04X} {category}"


def test_every_route_is_documented_and_every_documented_route_exists(api_settings):
    routes = set()
    for app in (create_presign_app(api_settings), create_score_app(api_settings)):
        for rule in app.url_map.iter_rules():
            path = rule.rule.replace("<path:", "{").replace("<", "{").replace(">", "}")
            routes |= {(path, method.lower()) for method in rule.methods - {"HEAD", "OPTIONS"}}
    documented = {(path, method) for path, item in openapi_contract.spec()["paths"].items()
                  for method in item if method in ("get", "post", "put", "delete", "patch")}
    assert routes == documented


# -- flows, under gunicorn ------------------------------------------------------------------

def test_a_presigned_post_upload_lands_and_a_read_leaves_the_job_as_it_is(services):
    created = create(services)
    assert created.status_code == 201
    job = created.json()
    upload = job["upload"]

    landed = requests.post(upload["url"], data=upload["fields"],
                           files={"file": ("dive.mp4", b"\x00" * 1000, "video/mp4")})
    assert landed.status_code == 204, landed.text

    seen = get_job(services, job["job_id"])
    assert seen.json()["status"] == "awaiting_upload"  # the function's claim moves it on, not a read
    unchanged = get_job(services, job["job_id"], headers={"If-None-Match": seen.headers["ETag"]})
    assert unchanged.status_code == 304


def test_a_multipart_upload_is_completed_and_queued(services):
    created = create(services, size=LARGE)
    job = created.json()
    upload = job["upload"]
    assert upload["method"] == "MULTIPART" and len(upload["parts"]) == 3
    data = b"\x01" * LARGE
    parts = []
    for part in upload["parts"]:
        start = (part["part_number"] - 1) * upload["part_size"]
        put = requests.put(part["url"], data=data[start:start + upload["part_size"]])
        assert put.status_code == 200
        parts.append({"part_number": part["part_number"], "etag": put.headers["ETag"]})

    listed = requests.get(upload["complete_url"].replace("/complete", "/parts"))
    openapi_contract.check("GET", PARTS, listed)
    assert [p["etag"] for p in listed.json()["uploaded"]] == [p["etag"] for p in parts]
    assert listed.json()["missing"] == []

    completed = requests.post(upload["complete_url"], json={"parts": parts})
    openapi_contract.check("POST", COMPLETE, completed)
    assert completed.status_code == 200
    assert completed.json()["status"] == "queued"
    assert get_job(services, job["job_id"]).json()["status"] == "queued"


def test_a_job_canceled(services):
    job_id = create(services).json()["job_id"]
    canceled = requests.post(f"{services.presign}/v1/jobs/{job_id}/cancel", timeout=30)
    openapi_contract.check("POST", CANCEL, canceled)
    assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"
    assert get_job(services, job_id).json()["status"] == "canceled"
    missing = requests.post(f"{services.presign}/v1/jobs/{'0' * 32}/cancel", timeout=30)
    openapi_contract.check("POST", CANCEL, missing)
    assert missing.status_code == 404


def test_the_long_poll_under_gunicorn(services, store):
    job_id = create(services).json()["job_id"]
    store.mark_queued(job_id)
    claim = store.claim(job_id, lease_seconds=60)["claim"]
    etag = get_job(services, job_id).headers["ETag"]

    unchanged = get_job(services, job_id, params={"wait": 1}, headers={"If-None-Match": etag})
    assert unchanged.status_code == 304

    def progress_soon():
        time.sleep(0.3)
        store.progress(job_id, claim, stage=Stage.SCORING, progress=0.5)

    writer = threading.Thread(target=progress_soon)
    writer.start()
    changed = get_job(services, job_id, params={"wait": 20}, headers={"If-None-Match": etag})
    writer.join()
    assert changed.status_code == 200
    assert (changed.json()["stage"], changed.json()["progress"]) == ("scoring", 0.5)


SCORED = {"score": 71.5, "clip_scores": [70.0] * 6, "frames": list(range(96)),
          "model": {"name": "C3D-AVG", "weights": "untrained-seed20190616", "calibrated": False, "dtype": "float32"}}
WINDOW = {"start_frame": 326, "end_frame": 428, "start_s": 13.04, "end_s": 17.12, "fps": 25.0, "video_s": 60.0}
WINDOWS = {
    "detected": ({**WINDOW, "how": "detected", "confidence": 0.82, "entry_s": 17.12},
                 [{"entry_s": 5.2, "confidence": 0.4}, {"entry_s": 17.12, "confidence": 0.82}]),
    "given_shifted": ({**WINDOW, "how": "given", "start_s": 0.0, "end_s": 4.08, "entry_s": 1.5,
                       "shifted": "the entry at 1.50 s is earlier than the window's length (4.08 s)"}, []),
    "no_dive_found": ({**WINDOW, "how": "whole", "start_s": 0.0, "end_s": 60.0, "reason": "no_dive_found"}, []),
    "too_short": ({**WINDOW, "how": "whole", "start_s": 0.0, "end_s": 3.5, "video_s": 3.5, "reason": "too_short"},
                  []),
}
BROKEN = {
    "whole_with_an_entry": ({**WINDOW, "how": "whole", "reason": "no_dive_found", "entry_s": 3.0}, []),
    "whole_without_a_reason": ({**WINDOW, "how": "whole"}, []),
    "detected_without_its_entry": ({**WINDOW, "how": "detected", "confidence": 0.8}, []),
    "an_unknown_reason": ({**WINDOW, "how": "whole", "reason": "dark"}, []),
    "an_entry_below_the_listing_confidence": (WINDOWS["detected"][0], [{"entry_s": 5.2, "confidence": 0.2}]),
    "no_entries": (WINDOWS["detected"][0], None),
}


def succeeded_job(services, store, window: dict, entries: list | None) -> requests.Response:
    job_id = create(services).json()["job_id"]
    store.mark_queued(job_id)
    claim = store.claim(job_id, lease_seconds=60)["claim"]
    result = {**SCORED, "window": window, **({"entries": entries} if entries is not None else {})}
    assert store.succeed(job_id, claim, result)
    return requests.get(f"{services.score}/v1/jobs/{job_id}", timeout=40)


@pytest.mark.parametrize("kind", WINDOWS)
def test_a_scored_job_lists_its_entries_and_says_what_its_window_is_built_on(services, store, kind):
    window, entries = WINDOWS[kind]
    response = succeeded_job(services, store, window, entries)
    openapi_contract.check("GET", JOB, response)
    assert (response.json()["window"], response.json()["entries"]) == (window, entries)


@pytest.mark.parametrize("kind", BROKEN)
def test_the_document_refuses_a_scored_job_that_breaks_the_window_and_entries_rules(services, store, kind):
    response = succeeded_job(services, store, *BROKEN[kind])
    with pytest.raises(ValidationError):
        openapi_contract.check("GET", JOB, response)


# -- errors ---------------------------------------------------------------------------------

ERRORS = [
    # (method, documented path, concrete path, request kwargs, status, code)
    ("POST", JOBS, JOBS, {"data": "{"}, 400, "invalid_json"),
    ("POST", JOBS, JOBS, {"json": {"filename": "a.mp4", "size": 1}}, 400, "missing_field"),
    ("POST", JOBS, JOBS, {"json": {"filename": "a.mp4", "content_type": "video/mp4", "size": True}}, 400,
     "invalid_field"),
    ("POST", JOBS, JOBS, {"json": {"filename": "a.mp4", "content_type": "video/mp4", "size": 1, "key": "x"}},
     400, "unknown_field"),
    ("POST", JOBS, JOBS, {"json": {"filename": "a\tb", "content_type": "video/mp4", "size": 1}}, 400,
     "invalid_filename"),
    ("POST", JOBS, JOBS, {"json": {"filename": "a.mp4", "content_type": "video/mp4", "size": 0}}, 400,
     "invalid_size"),
    ("POST", JOBS, JOBS, {"json": {"filename": "a.mp4", "content_type": "video/mp4", "size": 200 * MB + 1}},
     413, "file_too_large"),
    ("POST", JOBS, JOBS, {"data": "x" * 20000}, 413, "request_too_large"),
    ("POST", JOBS, JOBS, {"json": {"filename": "a.mp4", "content_type": "text/html", "size": 1}}, 415,
     "unsupported_media_type"),
    ("GET", JOBS, JOBS, {}, 405, "method_not_allowed"),
    ("POST", COMPLETE, f"/v1/jobs/{'f' * 32}/upload/complete", {"json": {"parts": []}}, 404, "job_not_found"),
    ("GET", PARTS, f"/v1/jobs/{'f' * 32}/upload/parts", {}, 404, "job_not_found"),
    ("POST", PARTS, f"/v1/jobs/{'f' * 32}/upload/parts", {}, 405, "method_not_allowed"),
    ("POST", JOBS, JOBS, {"json": {"filename": "evil\u202egnp.mp4", "content_type": "video/mp4", "size": 1}},
     400, "invalid_filename"),
    ("GET", JOB, f"/v1/jobs/{'f' * 32}", {}, 404, "job_not_found"),
    ("GET", JOB, "/v1/jobs/..%2F..%2Fetc%2Fpasswd", {}, 404, "job_not_found"),
    ("GET", JOB, f"/v1/jobs/{'f' * 32}", {"params": {"wait": "30"}}, 400, "invalid_wait"),
    ("POST", JOB, f"/v1/jobs/{'f' * 32}", {}, 405, "method_not_allowed"),
]


@pytest.mark.parametrize(("method", "documented", "path", "kwargs", "status", "code"), ERRORS)
def test_errors_follow_the_document(services, method, documented, path, kwargs, status, code):
    base = services.score if documented == JOB else services.presign
    response = requests.request(method, base + path, **kwargs)

    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    openapi_contract.check(method, documented, response)


def test_conflicting_completes_follow_the_document(services):
    single = create(services).json()
    conflict = requests.post(f"{services.presign}/v1/jobs/{single['job_id']}/upload/complete",
                             json={"parts": [{"part_number": 1, "etag": "x"}]})
    assert conflict.status_code == 409
    openapi_contract.check("POST", COMPLETE, conflict)

    multipart = create(services, size=LARGE).json()
    bad = requests.post(multipart["upload"]["complete_url"], json={"parts": [{"part_number": 1, "etag": "x"}]})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_parts"
    openapi_contract.check("POST", COMPLETE, bad)


def test_unknown_routes_answer_json_never_html(services):
    for base in (services.presign, services.score):
        response = requests.get(base + "/admin")
        assert response.status_code == 404
        assert response.headers["Content-Type"].startswith("application/json")
        assert response.json()["error"]["code"] == "not_found"


def test_cors_under_gunicorn(services):
    job_id = create(services).json()["job_id"]
    allowed = get_job(services, job_id, headers={"Origin": ALLOWED_ORIGIN})
    assert allowed.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    refused = get_job(services, job_id, headers={"Origin": "http://127.0.0.1:1"})
    assert "Access-Control-Allow-Origin" not in refused.headers


# -- schemathesis ---------------------------------------------------------------------------

@pytest.mark.parametrize("tag", ["presign", "score"])
def test_schemathesis_finds_no_difference_from_the_document(services, tag):
    base = services.presign if tag == "presign" else services.score
    result = subprocess.run(
        [str(Path(sys.executable).parent / "schemathesis"), "--config-file", str(TESTS / "schemathesis.toml"),
         "run", str(openapi_contract.SPEC_PATH), "--url", base, "--include-tag", tag, "--checks", "all",
         "--max-examples", "25", "--seed", "20250601", "--workers", "1", "--no-shrink",
         "--request-timeout", "30"],
        capture_output=True, text=True, cwd=ROOT, timeout=240, check=False,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]


# -- logs -----------------------------------------------------------------------------------

def test_logs_are_json_with_request_ids_and_never_hold_signed_urls(services):
    created = create(services, size=LARGE, filename="logged.mp4")
    job = created.json()
    signature = job["upload"]["parts"][0]["url"].split("X-Amz-Signature=")[1]
    polled = get_job(services, job["job_id"], headers={"X-Request-Id": "contract-test-42"})
    assert polled.headers["X-Request-Id"] == "contract-test-42"

    text = "".join(log.read_text() for log in services.logs)
    records = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    requests_logged = [r for r in records if r.get("message") == "request"]
    assert requests_logged and all(r["request_id"] and r["status"] for r in requests_logged)
    assert any(r["request_id"] == "contract-test-42" and r["job_id"] == job["job_id"] for r in requests_logged)
    assert any(r.get("message") == "job created" and r["job_id"] == job["job_id"] for r in records)
    assert signature not in text
    assert "X-Amz-Signature" not in text and "x-amz-signature" not in text
    assert "Traceback" not in text

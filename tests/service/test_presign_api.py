"""services.jobs_api against a real moto server: jobs, pre-signed POST and multipart uploads,
validation, the key that no client input can move, CORS, JSON errors, the Lambda adapter."""

from __future__ import annotations

import base64
import dataclasses
import json
import time

import pytest
import requests

from divescore import aws, errors
from divescore.jobs import is_job_id, new_job_id
from divescore.settings import MIB
from services.jobs_api import create_app
from services.jobs_api.uploads import part_count
from services.lambda_adapter import wrap
from tests.support.api_support import ALLOWED_ORIGIN, http_api_event, serve_in_thread

VIDEO = "video/mp4"
SMALL = 1000
LARGE = 11 * MIB  # over the tests' 6 MiB threshold: 3 parts of 5 MiB


def new_job(presign: str, *, filename: str = "dive.mp4", content_type: str = VIDEO, size: int = SMALL) -> dict:
    response = requests.post(f"{presign}/v1/jobs", json={"filename": filename, "content_type": content_type,
                                                         "size": size})
    assert response.status_code == 201, response.text
    return response.json()


def policy_of(upload: dict) -> dict:
    return json.loads(base64.b64decode(upload["fields"]["policy"]))


def post_file(upload: dict, data: bytes, *, filename: str = "dive.mp4") -> requests.Response:
    return requests.post(upload["url"], data=upload["fields"], files={"file": (filename, data, VIDEO)})


def put_parts(upload: dict, data: bytes) -> list[dict]:
    size = upload["part_size"]
    parts = []
    for part in upload["parts"]:
        start = (part["part_number"] - 1) * size
        response = requests.put(part["url"], data=data[start:start + size])
        assert response.status_code == 200, response.text
        parts.append({"part_number": part["part_number"], "etag": response.headers["ETag"]})
    return parts


def keys_in(s3, settings, prefix: str = "") -> list[str]:
    listing = s3.list_objects_v2(Bucket=settings.bucket, Prefix=prefix)
    return [item["Key"] for item in listing.get("Contents", [])]


def error_of(response: requests.Response) -> str:
    assert response.headers["Content-Type"].startswith("application/json"), response.text
    return response.json()["error"]["code"]


# -- creating jobs --------------------------------------------------------------------------

def test_healthz(presign):
    response = requests.get(f"{presign}/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_small_file_gets_a_presigned_post_pinned_to_its_job(presign, api_settings, store):
    body = new_job(presign)

    assert is_job_id(body["job_id"])
    assert body["status"] == "awaiting_upload"
    assert body["expires_at"] > time.time()
    upload = body["upload"]
    assert upload["method"] == "POST"
    key = api_settings.upload_key(body["job_id"])
    assert upload["fields"]["key"] == key
    assert upload["fields"]["Content-Type"] == VIDEO
    conditions = policy_of(upload)["conditions"]
    assert {"key": key} in conditions
    assert {"bucket": api_settings.bucket} in conditions
    assert {"Content-Type": VIDEO} in conditions
    assert ["content-length-range", 1, api_settings.max_upload_bytes] in conditions
    assert not [c for c in conditions if isinstance(c, list) and c[0].lower() == "starts-with"]

    record = store.get(body["job_id"])
    assert record["status"] == "awaiting_upload"
    assert record["key"] == key
    assert record["expires_at"] == body["expires_at"]
    assert "upload_id" not in record


def test_one_jobs_upload_fields_only_fit_its_own_key(presign, api_settings):
    first, second = new_job(presign), new_job(presign)

    assert first["job_id"] != second["job_id"]
    first_conditions = policy_of(first["upload"])["conditions"]
    assert {"key": api_settings.upload_key(first["job_id"])} in first_conditions
    assert {"key": api_settings.upload_key(second["job_id"])} not in first_conditions
    assert first["upload"]["fields"]["x-amz-signature"] != second["upload"]["fields"]["x-amz-signature"]


@pytest.mark.parametrize("filename", [
    "../../etc/passwd", "my dive.mp4", "plongée 🏊 finale.mp4", "a+b%2F..mp4", "uploads/other/video", "..",
])
def test_the_file_name_never_moves_the_object(presign, api_settings, s3, store, filename):
    body = new_job(presign, filename=filename)
    job_id = body["job_id"]

    response = post_file(body["upload"], b"v" * SMALL, filename=filename)

    assert response.status_code in (200, 201, 204), response.text
    assert keys_in(s3, api_settings, f"uploads/{job_id}") == [f"uploads/{job_id}/video"]
    assert store.get(job_id)["filename"] == filename
    assert not [key for key in keys_in(s3, api_settings) if not key.startswith("uploads/") or "passwd" in key]


def test_content_type_is_kept_as_declared(presign, store):
    body = new_job(presign, content_type="video/webm")
    assert store.get(body["job_id"])["content_type"] == "video/webm"
    assert {"Content-Type": "video/webm"} in policy_of(body["upload"])["conditions"]


def test_urls_are_signed_for_the_address_the_browser_uses(api_settings, s3):
    browser_settings = dataclasses.replace(api_settings, public_s3_url="http://s3.browser.example:4566")
    with serve_in_thread(create_app(browser_settings)) as presign:
        small = new_job(presign)
        large = new_job(presign, size=LARGE)

    assert small["upload"]["url"].startswith("http://s3.browser.example:4566/")
    assert all(p["url"].startswith("http://s3.browser.example:4566/") for p in large["upload"]["parts"])
    # ... while the service created the multipart upload through its own address.
    uploads = s3.list_multipart_uploads(Bucket=api_settings.bucket).get("Uploads", [])
    assert api_settings.upload_key(large["job_id"]) in [u["Key"] for u in uploads]


# -- multipart ------------------------------------------------------------------------------

def test_large_file_uploads_in_parts_then_is_queued(presign, api_settings, s3, store):
    body = new_job(presign, size=LARGE)
    upload = body["upload"]
    assert upload["method"] == "MULTIPART"
    assert upload["part_size"] == 5 * MIB
    expected = list(range(1, part_count(LARGE, api_settings) + 1))
    assert [p["part_number"] for p in upload["parts"]] == [1, 2, 3] == expected
    assert store.get(body["job_id"])["upload_id"]
    data = bytes(range(256)) * (LARGE // 256)

    parts = put_parts(upload, data)
    response = requests.post(upload["complete_url"], json={"parts": parts})

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "queued"
    assert set(response.json()) <= {"job_id", "status", "filename", "size", "content_type", "created_at",
                                    "updated_at", "expires_at"}
    head = s3.head_object(Bucket=api_settings.bucket, Key=api_settings.upload_key(body["job_id"]))
    assert head["ContentLength"] == LARGE
    assert head["ContentType"] == VIDEO
    assert store.get(body["job_id"])["status"] == "queued"
    # Completing twice is refused: the upload is no longer open.
    again = requests.post(upload["complete_url"], json={"parts": parts})
    assert (again.status_code, error_of(again)) == (409, "upload_not_pending")


def test_a_complete_that_lost_a_race_to_another_leaves_the_job_alone(presign, api_settings, s3, store):
    # GIVEN an upload that another call completed just before this one reached S3
    body = new_job(presign, size=LARGE)
    parts = put_parts(body["upload"], b"r" * LARGE)
    record = store.get(body["job_id"])
    s3.complete_multipart_upload(
        Bucket=api_settings.bucket, Key=record["key"], UploadId=record["upload_id"],
        MultipartUpload={"Parts": [{"PartNumber": p["part_number"], "ETag": p["etag"]} for p in parts]},
    )

    # WHEN this one completes with the same parts (S3 repeats a recent completion's answer)
    response = requests.post(body["upload"]["complete_url"], json={"parts": parts})

    # THEN the job goes on, never failed by the duplicate
    assert response.status_code == 200, response.text
    assert store.get(body["job_id"])["status"] == "queued"
    assert keys_in(s3, api_settings, f"uploads/{body['job_id']}") == [record["key"]]


def test_complete_url_is_this_services_route(presign):
    body = new_job(presign, size=LARGE)
    assert body["upload"]["complete_url"] == f"{presign}/v1/jobs/{body['job_id']}/upload/complete"


def test_a_bad_parts_list_aborts_the_upload_and_fails_the_job(presign, api_settings, s3, store):
    body = new_job(presign, size=LARGE)
    parts = put_parts(body["upload"], b"x" * LARGE)

    response = requests.post(body["upload"]["complete_url"], json={"parts": parts[:2]})

    assert (response.status_code, error_of(response)) == (400, "invalid_parts")
    assert "3 parts" in response.json()["error"]["message"]
    uploads = s3.list_multipart_uploads(Bucket=api_settings.bucket).get("Uploads", [])
    assert api_settings.upload_key(body["job_id"]) not in [u["Key"] for u in uploads]
    job = store.get(body["job_id"])
    assert job["status"] == "failed"
    assert job["error"]["code"] == "upload_incomplete"
    assert keys_in(s3, api_settings, f"uploads/{body['job_id']}") == []


def test_etags_s3_does_not_know_are_invalid_parts(presign, store):
    body = new_job(presign, size=LARGE)
    put_parts(body["upload"], b"x" * LARGE)
    wrong = [{"part_number": n, "etag": '"0123456789abcdef0123456789abcdef"'} for n in (1, 2, 3)]

    response = requests.post(body["upload"]["complete_url"], json={"parts": wrong})

    assert (response.status_code, error_of(response)) == (400, "invalid_parts")
    assert store.get(body["job_id"])["status"] == "failed"


def test_one_jobs_parts_cannot_complete_another_job(presign, api_settings, s3):
    mine, theirs = new_job(presign, size=LARGE), new_job(presign, size=LARGE)
    my_parts = put_parts(mine["upload"], b"m" * LARGE)

    stolen = requests.post(theirs["upload"]["complete_url"], json={"parts": my_parts})
    assert (stolen.status_code, error_of(stolen)) == (400, "invalid_parts")
    assert keys_in(s3, api_settings, f"uploads/{theirs['job_id']}") == []

    mine_done = requests.post(mine["upload"]["complete_url"], json={"parts": my_parts})
    assert mine_done.status_code == 200, mine_done.text


@pytest.mark.parametrize(("body", "code"), [
    ("not json", "invalid_json"),
    ("[]", "invalid_json"),
    ("{}", "missing_field"),
    ('{"parts": "1"}', "invalid_field"),
    ('{"parts": [], "extra": 1}', "unknown_field"),
])
def test_a_malformed_complete_request_leaves_the_upload_open(presign, store, body, code):
    job = new_job(presign, size=LARGE)
    response = requests.post(job["upload"]["complete_url"], data=body)
    assert (response.status_code, error_of(response)) == (400, code)
    assert store.get(job["job_id"])["status"] == "awaiting_upload"


@pytest.mark.parametrize("parts", [
    [],
    [{"part_number": 1, "etag": "a"}, {"part_number": 3, "etag": "b"}, {"part_number": 2, "etag": "c"}],
    [{"part_number": True, "etag": "a"}, {"part_number": 2, "etag": "b"}, {"part_number": 3, "etag": "c"}],
    [{"part_number": 1, "etag": ""}, {"part_number": 2, "etag": "b"}, {"part_number": 3, "etag": "c"}],
    [{"part_number": 1}, {"part_number": 2, "etag": "b"}, {"part_number": 3, "etag": "c"}],
    ["1", "2", "3"],
])
def test_parts_lists_that_cannot_be_right(presign, store, parts):
    job = new_job(presign, size=LARGE)
    response = requests.post(job["upload"]["complete_url"], json={"parts": parts})
    assert (response.status_code, error_of(response)) == (400, "invalid_parts")
    assert store.get(job["job_id"])["status"] == "failed"


def parts_of(job: dict) -> requests.Response:
    return requests.get(job["upload"]["complete_url"].replace("/complete", "/parts"))


def test_the_parts_list_names_what_s3_holds_and_signs_the_rest_anew(presign, api_settings):
    # GIVEN a 3-part upload of which parts 1 and 3 reached S3
    data = bytes(range(256)) * (LARGE // 256)
    body = new_job(presign, size=LARGE)
    upload = body["upload"]
    sent = put_parts({**upload, "parts": [upload["parts"][0], upload["parts"][2]]}, data)

    # WHEN the client asks what is missing
    response = parts_of(body)

    # THEN the held parts come with their ETags, the missing one with a fresh URL that works
    assert response.status_code == 200, response.text
    listing = response.json()
    assert listing["job_id"] == body["job_id"]
    assert (listing["part_size"], listing["part_count"]) == (upload["part_size"], 3)
    assert listing["complete_url"] == upload["complete_url"]
    assert listing["uploaded"] == [
        {"part_number": 1, "etag": sent[0]["etag"], "size": upload["part_size"]},
        {"part_number": 3, "etag": sent[1]["etag"], "size": LARGE - 2 * upload["part_size"]},
    ]
    assert [p["part_number"] for p in listing["missing"]] == [2]
    resent = put_parts({**upload, "parts": listing["missing"]}, data)
    parts = sorted(sent + resent, key=lambda p: p["part_number"])
    done = requests.post(listing["complete_url"], json={"parts": parts})
    assert done.status_code == 200, done.text
    assert (parts_of(body).status_code, error_of(parts_of(body))) == (409, "upload_not_pending")


def test_a_part_of_the_wrong_size_counts_as_missing(presign):
    body = new_job(presign, size=LARGE)
    first = body["upload"]["parts"][0]
    assert requests.put(first["url"], data=b"short").status_code == 200

    listing = parts_of(body).json()

    assert listing["uploaded"] == []
    assert [p["part_number"] for p in listing["missing"]] == [1, 2, 3]


def test_the_parts_of_unknown_single_post_and_abandoned_jobs(presign, api_settings, s3, store):
    unknown = requests.get(f"{presign}/v1/jobs/{'0' * 32}/upload/parts")
    assert (unknown.status_code, error_of(unknown)) == (404, "job_not_found")
    single = requests.get(f"{presign}/v1/jobs/{new_job(presign)['job_id']}/upload/parts")
    assert (single.status_code, error_of(single)) == (409, "not_multipart_upload")

    # An upload aborted behind the job's back (the bucket's lifecycle rule) is no longer open.
    job = new_job(presign, size=LARGE)
    record = store.get(job["job_id"])
    s3.abort_multipart_upload(Bucket=api_settings.bucket, Key=record["key"], UploadId=record["upload_id"])
    aborted = parts_of(job)
    assert (aborted.status_code, error_of(aborted)) == (409, "upload_not_pending")
    assert "Create a new job" in aborted.json()["error"]["message"]


def test_complete_for_unknown_or_single_post_jobs(presign):
    unknown = requests.post(f"{presign}/v1/jobs/{'0' * 32}/upload/complete", json={"parts": []})
    assert (unknown.status_code, error_of(unknown)) == (404, "job_not_found")
    malformed = requests.post(f"{presign}/v1/jobs/..%2F..%2Fx/upload/complete", json={"parts": []})
    assert malformed.status_code == 404

    single = new_job(presign)
    response = requests.post(f"{presign}/v1/jobs/{single['job_id']}/upload/complete", json={"parts": []})
    assert (response.status_code, error_of(response)) == (409, "not_multipart_upload")


# -- validation -----------------------------------------------------------------------------

GOOD = {"filename": "dive.mp4", "content_type": VIDEO, "size": SMALL}


# -- canceling jobs -------------------------------------------------------------------------

def cancel(presign: str, job_id: str) -> requests.Response:
    return requests.post(f"{presign}/v1/jobs/{job_id}/cancel", timeout=30)


def test_canceling_a_multipart_upload_aborts_it_and_its_parts_cannot_be_completed(presign, api_settings, s3, store):
    body = new_job(presign, size=LARGE)
    upload = body["upload"]
    parts = put_parts(upload, b"\x02" * LARGE)

    canceled = cancel(presign, body["job_id"])

    assert canceled.status_code == 200, canceled.text
    assert canceled.json()["status"] == "canceled"
    uploads = s3.list_multipart_uploads(Bucket=api_settings.bucket, Prefix=api_settings.upload_key(body["job_id"]))
    assert uploads.get("Uploads", []) == []  # aborted: its parts are gone
    late = requests.post(upload["complete_url"], json={"parts": parts})
    assert (late.status_code, error_of(late)) == (409, "upload_not_pending")
    assert keys_in(s3, api_settings, api_settings.upload_key(body["job_id"])) == []
    assert store.get(body["job_id"])["status"] == "canceled"


def test_canceling_deletes_an_upload_that_landed(presign, api_settings, s3, store):
    body = new_job(presign)
    assert post_file(body["upload"], b"\x00" * SMALL).status_code == 204
    store.mark_queued(body["job_id"])

    assert cancel(presign, body["job_id"]).json()["status"] == "canceled"

    assert keys_in(s3, api_settings, api_settings.upload_key(body["job_id"])) == []


def test_canceling_twice_is_not_an_error_but_a_finished_job_cannot_be_canceled(presign, store):
    job_id = new_job(presign)["job_id"]
    first, second = cancel(presign, job_id), cancel(presign, job_id)
    assert (first.status_code, second.status_code) == (200, 200)
    assert first.json()["updated_at"] == second.json()["updated_at"]  # the second changed nothing

    done = new_job(presign)["job_id"]
    claim = store.claim(done, lease_seconds=60)["claim"]
    store.succeed(done, claim, {"score": 50.0})
    refused = cancel(presign, done)
    assert (refused.status_code, error_of(refused)) == (409, "job_already_final")
    assert "succeeded" in refused.json()["error"]["message"]
    assert store.get(done)["status"] == "succeeded"


def test_canceling_an_unknown_job_is_404(presign):
    for job_id in (new_job_id(), "not-an-id"):
        response = cancel(presign, job_id)
        assert (response.status_code, error_of(response)) == (404, "job_not_found")


def without(field: str) -> dict:
    return {k: v for k, v in GOOD.items() if k != field}


@pytest.mark.parametrize(("body", "status", "code"), [
    ("{", 400, "invalid_json"),
    ("", 400, "invalid_json"),
    (b"\xff\xfe\x00", 400, "invalid_json"),
    ("[]", 400, "invalid_json"),
    ("null", 400, "invalid_json"),
    ({}, 400, "missing_field"),
    (without("size"), 400, "missing_field"),
    (without("filename"), 400, "missing_field"),
    (without("content_type"), 400, "missing_field"),
    ({**GOOD, "filename": 5}, 400, "invalid_field"),
    ({**GOOD, "content_type": None}, 400, "invalid_field"),
    ({**GOOD, "size": "1000"}, 400, "invalid_field"),
    ({**GOOD, "size": True}, 400, "invalid_field"),
    ({**GOOD, "size": 1000.5}, 400, "invalid_field"),
    ('{"filename": "dive.mp4", "content_type": "video/mp4", "size": NaN}', 400, "invalid_field"),
    ({**GOOD, "size": [1000]}, 400, "invalid_field"),
    ({**GOOD, "key": "uploads/other/video"}, 400, "unknown_field"),
    ({**GOOD, "entry_s": -1}, 400, "invalid_field"),
    ({**GOOD, "entry_s": "12"}, 400, "invalid_field"),
    ({**GOOD, "entry_s": True}, 400, "invalid_field"),
    ({**GOOD, "entry_s": 601}, 400, "invalid_field"),
    ('{"filename": "dive.mp4", "content_type": "video/mp4", "size": 1000, "entry_s": Infinity}', 400,
     "invalid_field"),
    ({**GOOD, "size": 0}, 400, "invalid_size"),
    ({**GOOD, "size": -5}, 400, "invalid_size"),
    ({**GOOD, "size": 10**30}, 413, "file_too_large"),
    ({**GOOD, "content_type": "text/plain"}, 415, "unsupported_media_type"),
    ({**GOOD, "content_type": ""}, 415, "unsupported_media_type"),
    ({**GOOD, "content_type": "video/mp4; codecs=avc1"}, 415, "unsupported_media_type"),
    ({**GOOD, "content_type": "image/svg+xml"}, 415, "unsupported_media_type"),
    ({**GOOD, "filename": ""}, 400, "invalid_filename"),
    ({**GOOD, "filename": "a" * 252 + ".mp4"}, 400, "invalid_filename"),
    ({**GOOD, "filename": "dive\n.mp4"}, 400, "invalid_filename"),
    ({**GOOD, "filename": "dive\x00.mp4"}, 400, "invalid_filename"),
    ({**GOOD, "filename": "dive\x7f.mp4"}, 400, "invalid_filename"),
    # Format characters (Unicode Cf): bidirectional overrides and isolates, invisible ones.
    ({**GOOD, "filename": "evil\u202egnp.mp4"}, 400, "invalid_filename"),
    ({**GOOD, "filename": "dive\u200b.mp4"}, 400, "invalid_filename"),
    ({**GOOD, "filename": "dive\u200f.mp4"}, 400, "invalid_filename"),
    ({**GOOD, "filename": "\u2066dive.mp4\u2069"}, 400, "invalid_filename"),
    ({**GOOD, "filename": "dive\ufeff.mp4"}, 400, "invalid_filename"),
    ({**GOOD, "filename": "dive\U000e0041.mp4"}, 400, "invalid_filename"),
    ('{"filename": "\\ud800.mp4", "content_type": "video/mp4", "size": 1000}', 400, "invalid_filename"),
])
def test_bad_new_job_requests(presign, api_settings, body, status, code):
    table = aws.table(api_settings)
    before = table.scan(Select="COUNT")["Count"]
    if isinstance(body, dict):
        response = requests.post(f"{presign}/v1/jobs", json=body)
    else:
        response = requests.post(f"{presign}/v1/jobs", data=body, headers={"Content-Type": "application/json"})

    assert (response.status_code, error_of(response)) == (status, code)
    assert response.json()["error"]["message"]
    assert table.scan(Select="COUNT")["Count"] == before


@pytest.mark.parametrize(("entry_s", "stored"), [(12.4, 12.4), (0, 0), (600, 600), (None, None)])
def test_an_entry_time_is_kept_on_the_job(presign, store, entry_s, stored):
    response = requests.post(f"{presign}/v1/jobs", json={**GOOD, "entry_s": entry_s})
    assert response.status_code == 201
    assert store.get(response.json()["job_id"]).get("entry_s") == stored


def test_the_size_limit_is_named_in_megabytes(presign, api_settings):
    response = requests.post(f"{presign}/v1/jobs", json={**GOOD, "size": api_settings.max_upload_bytes + 1})
    assert response.status_code == 413
    assert f"{api_settings.max_upload_bytes / 1e6:g} MB" in response.json()["error"]["message"]


def test_limits_are_inclusive(presign, api_settings):
    longest_name = new_job(presign, filename="a" * 251 + ".mp4", size=api_settings.max_upload_bytes)
    assert longest_name["upload"]["method"] == "MULTIPART"
    at_threshold = new_job(presign, size=api_settings.multipart_threshold_bytes)
    assert at_threshold["upload"]["method"] == "POST"


def test_an_oversized_request_body_is_refused(presign, api_settings):
    body = json.dumps({**GOOD, "filename": "a" * api_settings.max_request_bytes})
    response = requests.post(f"{presign}/v1/jobs", data=body)
    assert (response.status_code, error_of(response)) == (413, "request_too_large")


# -- HTTP plumbing --------------------------------------------------------------------------

def test_unknown_routes_and_methods_answer_json(presign):
    missing = requests.get(f"{presign}/nowhere")
    assert (missing.status_code, error_of(missing)) == (404, "not_found")
    wrong_method = requests.get(f"{presign}/v1/jobs")
    assert (wrong_method.status_code, error_of(wrong_method)) == (405, "method_not_allowed")
    assert "POST" in wrong_method.headers["Allow"]
    delete = requests.delete(f"{presign}/v1/jobs/{'0' * 32}/upload/complete")
    assert (delete.status_code, error_of(delete)) == (405, "method_not_allowed")


def test_responses_carry_a_request_id_and_are_not_cached(presign):
    chosen = requests.get(f"{presign}/healthz", headers={"X-Request-Id": "trace-123"})
    assert chosen.headers["X-Request-Id"] == "trace-123"
    replaced = requests.get(f"{presign}/healthz", headers={"X-Request-Id": "bad id\twith spaces"})
    assert replaced.headers["X-Request-Id"] not in ("", "bad id\twith spaces")
    created = requests.post(f"{presign}/v1/jobs", json=GOOD)
    assert created.headers["Cache-Control"] == "no-store"


def test_cors_allows_only_the_configured_origin(presign):
    allowed = requests.post(f"{presign}/v1/jobs", json=GOOD, headers={"Origin": ALLOWED_ORIGIN})
    assert allowed.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    assert "Origin" in allowed.headers["Vary"]

    refused = requests.post(f"{presign}/v1/jobs", json=GOOD, headers={"Origin": "http://evil.example"})
    assert "Access-Control-Allow-Origin" not in refused.headers


def test_cors_preflight(presign):
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    allowed = requests.options(f"{presign}/v1/jobs", headers={"Origin": ALLOWED_ORIGIN, **preflight})
    assert allowed.status_code == 200
    assert allowed.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    assert "POST" in allowed.headers["Access-Control-Allow-Methods"]
    assert "content-type" in allowed.headers["Access-Control-Allow-Headers"].lower()

    refused = requests.options(f"{presign}/v1/jobs", headers={"Origin": "http://evil.example", **preflight})
    assert "Access-Control-Allow-Origin" not in refused.headers
    assert "*" not in refused.headers.get("Access-Control-Allow-Origin", "")


# -- AWS Lambda (API Gateway HTTP API, payload v2) ------------------------------------------

def test_the_same_app_answers_api_gateway_events(api_settings):
    handler = wrap(create_app(api_settings))

    created = handler(http_api_event("POST", "/v1/jobs", body=json.dumps({**GOOD, "size": LARGE})), None)
    assert created["statusCode"] == 201
    assert created["headers"]["x-request-id"] == "apigw-req-1"
    assert created["headers"]["access-control-allow-origin"] == ALLOWED_ORIGIN
    body = json.loads(created["body"])
    assert body["upload"]["complete_url"] == f"https://api.example.com/v1/jobs/{body['job_id']}/upload/complete"

    invalid = handler(http_api_event("POST", "/v1/jobs", body="{"), None)
    assert invalid["statusCode"] == 400
    assert json.loads(invalid["body"])["error"]["code"] == "invalid_json"

    health = handler(http_api_event("GET", "/healthz"), None)
    assert (health["statusCode"], json.loads(health["body"])) == (200, {"status": "ok"})


def test_a_video_deleted_between_its_check_and_its_copy_ends_the_rescore_409_with_no_job_left_waiting(
        api_settings, store, s3):
    from botocore.exceptions import ClientError

    from services.jobs_api.uploads import rescore

    # GIVEN a scored job whose video S3 deletes right after the check (retention, a cancel)
    source = new_job_id()
    key = api_settings.upload_key(source)
    store.create(job_id=source, filename="dive.mp4", content_type=VIDEO, size=SMALL, key=key, ttl_seconds=3600)
    s3.put_object(Bucket=api_settings.bucket, Key=key, Body=b"v" * SMALL)
    store.mark_queued(source)
    claimed = store.claim(source, lease_seconds=60)
    assert store.succeed(source, claimed["claim"], {"score": 1.0})

    class DeletedAfterTheCheck:
        def __getattr__(self, name):
            return getattr(s3, name)

        def copy_object(self, **kwargs):
            raise ClientError({"Error": {"Code": "NoSuchKey", "Message": "gone"}}, "CopyObject")

    # WHEN it is scored again
    with pytest.raises(errors.UploadNotAvailable):
        rescore(source, {}, api_settings, store=store, s3=DeletedAfterTheCheck())

    # THEN the job the rescore had begun ended failed, saying why: none is left waiting
    [begun] = [job for job in store._scan() if job.get("rescore_of") == source]
    assert begun["status"] == "failed" and begun["error"]["code"] == "upload_not_available"

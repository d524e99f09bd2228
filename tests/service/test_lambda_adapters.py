"""Both services as AWS Lambda runs them behind an API Gateway HTTP API (payload format 2.0):
the handler each function names in template.yaml, fed events of the documented shape."""

from __future__ import annotations

import json
import threading
import time

import pytest

from divescore.jobs import Stage, new_job_id
from services.jobs_api import create_app as create_presign
from services.lambda_adapter import wrap
from services.status_api import create_app as create_score
from tests.support.api_support import ALLOWED_ORIGIN, http_api_event


@pytest.fixture(scope="module")
def score_lambda(api_settings):
    """services.status_api as its Lambda function runs it (conftest's ``score`` serves it over HTTP)."""
    return wrap(create_score(api_settings))


@pytest.fixture(scope="module")
def presign_lambda(api_settings):
    """services.jobs_api as its Lambda function runs it."""
    return wrap(create_presign(api_settings))


def new_job(store, settings) -> str:
    job_id = new_job_id()
    store.create(job_id=job_id, filename="dive.mp4", content_type="video/mp4", size=1234,
                 key=settings.upload_key(job_id), ttl_seconds=3600)
    return job_id


def body_of(response: dict) -> dict:
    assert response.get("isBase64Encoded") in (None, False)
    return json.loads(response["body"])


def test_the_handlers_the_template_names_are_these_adapters():
    from tests.support.static_support import load_template

    resources = load_template()["Resources"]
    assert resources["PresignFunction"]["Properties"]["Handler"] == "services.jobs_api.aws_lambda.handler"
    assert resources["ScoreFunction"]["Properties"]["Handler"] == "services.status_api.aws_lambda.handler"


def test_score_answers_a_job_with_its_etag_and_the_gateways_request_id(score_lambda, store, api_settings):
    job_id = new_job(store, api_settings)

    answer = score_lambda(http_api_event("GET", f"/v1/jobs/{job_id}", request_id="gw-abc-1"), None)

    assert answer["statusCode"] == 200
    assert body_of(answer)["job_id"] == job_id
    assert answer["headers"]["x-request-id"] == "gw-abc-1"
    assert answer["headers"]["etag"].startswith('W/"')
    assert answer["headers"]["access-control-allow-origin"] == ALLOWED_ORIGIN


def test_score_answers_304_when_the_job_has_not_changed(score_lambda, store, api_settings):
    job_id = new_job(store, api_settings)
    etag = score_lambda(http_api_event("GET", f"/v1/jobs/{job_id}"), None)["headers"]["etag"]

    unchanged = score_lambda(http_api_event("GET", f"/v1/jobs/{job_id}", headers={"If-None-Match": etag}), None)

    assert unchanged["statusCode"] == 304
    assert unchanged["body"] == ""
    assert unchanged["headers"]["etag"] == etag


def test_score_long_polls_until_the_job_changes(score_lambda, store, api_settings):
    job_id = new_job(store, api_settings)
    etag = score_lambda(http_api_event("GET", f"/v1/jobs/{job_id}"), None)["headers"]["etag"]
    claimed = {}

    def work():
        time.sleep(0.5)
        claimed.update(store.claim(job_id, lease_seconds=60))
        store.progress(job_id, claimed["claim"], stage=Stage.DECODING, progress=0.5)

    worker = threading.Thread(target=work)
    worker.start()
    answer = score_lambda(http_api_event("GET", f"/v1/jobs/{job_id}", query="wait=5", headers={"If-None-Match": etag}),
                          None)
    worker.join()

    assert answer["statusCode"] == 200
    assert body_of(answer)["status"] == "processing"
    assert answer["headers"]["etag"] != etag


def test_score_errors_are_json_bodies_with_codes(score_lambda):
    missing = score_lambda(http_api_event("GET", f"/v1/jobs/{new_job_id()}"), None)
    assert missing["statusCode"] == 404
    assert body_of(missing)["error"]["code"] == "job_not_found"
    bad_wait = score_lambda(http_api_event("GET", f"/v1/jobs/{new_job_id()}", query="wait=abc"), None)
    assert bad_wait["statusCode"] == 400
    assert body_of(bad_wait)["error"]["code"] == "invalid_wait"
    assert missing["headers"]["content-type"] == "application/json"


@pytest.mark.parametrize("service, path, method", [("score", "/v1/jobs/x", "GET"), ("presign", "/v1/jobs", "POST")])
def test_cors_preflight_through_the_adapter(request, service, path, method):
    handler = request.getfixturevalue(f"{service}_lambda")
    preflight = {"Access-Control-Request-Method": method, "Access-Control-Request-Headers": "content-type"}

    allowed = handler(http_api_event("OPTIONS", path, headers=preflight), None)
    refused = handler(http_api_event("OPTIONS", path, headers={**preflight, "Origin": "http://evil.example"}), None)

    assert allowed["statusCode"] == 200
    assert allowed["headers"]["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert method in allowed["headers"]["access-control-allow-methods"]
    assert "access-control-allow-origin" not in refused["headers"]


def test_presign_errors_and_request_ids_through_the_adapter(presign_lambda):
    too_big = presign_lambda(http_api_event("POST", "/v1/jobs", request_id="gw-xyz-9", body=json.dumps(
        {"filename": "dive.mp4", "content_type": "video/mp4", "size": 10**12})), None)

    assert too_big["statusCode"] == 413
    assert body_of(too_big)["error"]["code"] == "file_too_large"
    assert too_big["headers"]["x-request-id"] == "gw-xyz-9"
    unknown = presign_lambda(http_api_event("POST", f"/v1/jobs/{new_job_id()}/upload/complete", body="{}"), None)
    assert unknown["statusCode"] == 404
    assert body_of(unknown)["error"]["code"] == "job_not_found"

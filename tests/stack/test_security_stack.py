"""Security of the running native stack, as an attacker would probe it: guessable ids, upload
forms reused for something else, URLs that never expire, other origins, internal fields or
stack traces in answers, oversized bodies, secrets in logs.

What each function may do in AWS (least privilege in the SAM template) is checked by
``tests/static/test_static_template.py`` (``test_each_function_gets_only_named_actions_on_named_resources``
and ``test_what_each_function_may_do``), not repeated here.
"""

from __future__ import annotations

import base64
import calendar
import hashlib
import hmac
import json
import re
import socket
import threading
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from divescore.jobs import PUBLIC_FIELDS
from tests.support.helpers import wait_until
from tests.support.stack_support import (
    create_job,
    forged_upload_event,
    new_job,
    padded,
    post_upload,
    read_job,
    runtime_idle,
    small_clip,
    wait_final,
)

pytestmark = pytest.mark.stack

INTERNAL = ("attempts", "claim", "claim_message", "last_attempt", "lease_expires_at", "upload_id", "filmstrip_key")
FORM_FIELDS = {"key", "Content-Type", "policy", "x-amz-algorithm", "x-amz-credential", "x-amz-date", "x-amz-signature"}
TRACE_MARKERS = ("Traceback", 'File "', "botocore", "ClientError", "Exception")


# -- job ids ------------------------------------------------------------------------------------

def test_job_ids_carry_128_random_bits(stack):
    ids = [new_job(stack).json()["job_id"] for _ in range(48)]

    assert all(re.fullmatch(r"[0-9a-f]{32}", job_id) for job_id in ids)  # 32 hex digits: 128 bits
    assert len(set(ids)) == len(ids)
    bits = [int(job_id, 16) for job_id in ids]
    # No bit is the same in every id: a counter or a timestamp keeps its high bits (p ≈ 128 / 2^47 if random).
    constant = [b for b in range(128) if len({(value >> b) & 1 for value in bits}) == 1]
    assert constant == []
    ones = sum(value.bit_count() for value in bits) / (128 * len(bits))
    assert 0.45 < ones < 0.55


def test_an_id_next_to_a_real_one_tells_nothing(stack):
    job_id = new_job(stack).json()["job_id"]
    assert read_job(stack, job_id).status_code == 200
    neighbours = [job_id[:-1] + format((int(job_id[-1], 16) + 1) % 16, "x"), job_id[1:] + job_id[0], job_id.upper()]
    answers = {read_job(stack, other).text for other in [*neighbours, "0" * 32]}
    assert len(answers) == 1 and '"job_not_found"' in answers.pop()


# -- the pre-signed POST ------------------------------------------------------------------------

def policy_of(fields: dict) -> dict:
    return json.loads(base64.b64decode(fields["policy"]))


def sigv4_signature(secret: str, date: str, region: str, string_to_sign: str) -> str:
    key = ("AWS4" + secret).encode()
    for part in (date, region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def test_the_upload_form_is_pinned_to_its_key_type_and_size_and_signed(stack):
    """The policy pins the exact key, the content type and the size range, and the signature
    covers that policy, so no field can be changed without S3 (and the emulator) refusing the
    form. The function checks the stored object's size against the declared one itself (see
    test_reliability_inputs: larger_than_declared)."""
    before = time.time()
    job = new_job(stack, content_type="video/quicktime", size=1234).json()
    fields = job["upload"]["fields"]
    policy = policy_of(fields)
    key = stack.settings.upload_key(job["job_id"])

    assert fields["key"] == key and fields["Content-Type"] == "video/quicktime"
    conditions = policy["conditions"]
    assert {"bucket": stack.settings.bucket} in conditions
    assert {"key": key} in conditions  # exact: no ["starts-with", "$key", ...]
    assert {"Content-Type": "video/quicktime"} in conditions
    assert ["content-length-range", 1, stack.settings.max_upload_bytes] in conditions
    assert not [c for c in conditions if isinstance(c, list) and c[0] == "starts-with"]
    expires = calendar.timegm(time.strptime(policy["expiration"], "%Y-%m-%dT%H:%M:%SZ"))  # the policy says UTC
    assert before + stack.settings.url_ttl_seconds - 120 <= expires <= time.time() + stack.settings.url_ttl_seconds + 5

    credential = fields["x-amz-credential"].split("/")
    assert fields["x-amz-algorithm"] == "AWS4-HMAC-SHA256"
    # Signed with the presign role's key (the stack enforces IAM), so S3 authorises the upload by its policy.
    assert credential[0] == stack.key("presign")["AccessKeyId"]
    expected = sigv4_signature(stack.key("presign")["SecretAccessKey"], credential[1], credential[2], fields["policy"])
    assert hmac.compare_digest(fields["x-amz-signature"], expected)


def test_one_jobs_form_does_not_fit_another_job(stack):
    first, second = new_job(stack).json(), new_job(stack).json()
    assert policy_of(first["upload"]["fields"]) != policy_of(second["upload"]["fields"])
    conditions = policy_of(first["upload"]["fields"])["conditions"]
    assert {"key": stack.settings.upload_key(second["job_id"])} not in conditions


def post_form(job: dict, fields: dict, body: bytes, content_type: str = "video/mp4") -> requests.Response:
    return requests.post(job["upload"]["url"], data=fields, files={"file": ("video", body, content_type)}, timeout=60)


def stored_keys(stack, job_id: str) -> list[str]:
    listing = stack.client("s3").list_objects_v2(Bucket=stack.settings.bucket, Prefix=f"uploads/{job_id}/")
    return [item["Key"] for item in listing.get("Contents", [])]


def test_the_emulator_refuses_a_form_that_breaks_its_policy_as_s3_does(stack):
    job, other = new_job(stack, content_type="video/mp4", size=1000).json(), new_job(stack).json()
    fields = job["upload"]["fields"]
    refusals = {
        "another job's key": ({**fields, "key": stack.settings.upload_key(other["job_id"])}, b"v" * 1000, 403,
                              "AccessDenied"),
        "a made-up key": ({**fields, "key": "uploads/made-up/video"}, b"v" * 1000, 403, "AccessDenied"),
        "another content type": ({**fields, "Content-Type": "text/html"}, b"<script></script>", 403, "AccessDenied"),
        "a field the policy does not name": ({**fields, "acl": "public-read"}, b"v" * 1000, 403, "AccessDenied"),
        "an empty file": (fields, b"", 400, "EntityTooSmall"),
        "a file over the size limit": (fields, b"v" * (stack.settings.max_upload_bytes + 1), 400, "EntityTooLarge"),
    }
    for what, (form, body, status, code) in refusals.items():
        answer = post_form(job, form, body)
        assert (answer.status_code, f"<Code>{code}</Code>" in answer.text) == (status, True), (what, answer.text)
    assert stored_keys(stack, job["job_id"]) == [] and stored_keys(stack, other["job_id"]) == []
    assert stack.store.get(other["job_id"])["status"] == "awaiting_upload"

    assert post_form(job, fields, b"v" * 1000).status_code == 204  # the form as signed
    assert stored_keys(stack, job["job_id"]) == [stack.settings.upload_key(job["job_id"])]


@pytest.fixture(scope="module")
def multipart_job(stack, tmp_path_factory):
    """A multipart upload through the API, scored: its part URLs and its filmstrip URL."""
    path = padded(small_clip(tmp_path_factory.mktemp("mp") / "big.mp4", offset=5), 7 * 1024 * 1024)
    job = create_job(stack, path)
    upload = job["upload"]
    assert upload["method"] == "MULTIPART"
    data = path.read_bytes()
    parts = []
    for part in upload["parts"]:
        start = (part["part_number"] - 1) * upload["part_size"]
        put = requests.put(part["url"], data=data[start:start + upload["part_size"]], timeout=60)
        assert put.status_code == 200
        parts.append({"part_number": part["part_number"], "etag": put.headers["ETag"]})
    completed = requests.post(upload["complete_url"], json={"parts": parts}, timeout=60)
    assert completed.status_code == 200
    final = wait_final(stack, job["job_id"])
    assert final["status"] == "succeeded", final
    assert requests.get(final["filmstrip_url"], timeout=30).status_code == 200
    return job, completed.json(), final


def test_every_presigned_url_expires(stack, multipart_job):
    job, _, final = multipart_job
    urls = [part["url"] for part in job["upload"]["parts"]] + [final["filmstrip_url"]]
    for url in urls:
        query = parse_qs(urlsplit(url).query)
        assert query["X-Amz-Expires"] == [str(stack.settings.url_ttl_seconds)], url
        assert query["X-Amz-Signature"][0]
    assert stack.settings.url_ttl_seconds <= 3600


# -- CORS ----------------------------------------------------------------------------------------

def test_cors_answers_only_the_configured_origins(stack):
    allowed = stack.settings.cors_origins[0]
    job_id = new_job(stack).json()["job_id"]
    for url, method in ((f"{stack.presign_url}/v1/jobs", "POST"), (f"{stack.score_url}/v1/jobs/{job_id}", "GET")):
        for origin in (allowed, "http://evil.example", "null", allowed + ".evil.example"):
            preflight = requests.options(url, headers={
                "Origin": origin, "Access-Control-Request-Method": method,
                "Access-Control-Request-Headers": "content-type"}, timeout=30)
            answered = preflight.headers.get("Access-Control-Allow-Origin")
            assert answered == (allowed if origin == allowed else None), (url, origin, answered)
            actual = requests.request(method, url, headers={"Origin": origin},
                                      json={"filename": "a.mp4", "content_type": "video/mp4", "size": 1}, timeout=30)
            assert actual.headers.get("Access-Control-Allow-Origin") == (allowed if origin == allowed else None)
            assert actual.headers.get("Access-Control-Allow-Credentials") is None


def test_the_buckets_cors_is_the_configured_origins_only(stack):
    rules = stack.client("s3").get_bucket_cors(Bucket=stack.settings.bucket)["CORSRules"]
    origins = {origin for rule in rules for origin in rule["AllowedOrigins"]}
    assert origins == set(stack.settings.cors_origins) and "*" not in origins


# -- what answers may hold ----------------------------------------------------------------------

def answers_of_a_whole_lifecycle(stack, multipart_job, tmp_path) -> list[requests.Response]:
    """Every kind of answer the API gives: created, each status, succeeded, failed, errors."""
    answers = []
    created = new_job(stack)
    answers += [created, read_job(stack, created.json()["job_id"])]
    path = small_clip(tmp_path / "life.mp4", offset=9)
    job = create_job(stack, path)
    post_upload(job, path)
    answers.append(read_job(stack, job["job_id"]))
    answers.append(read_job(stack, job["job_id"], wait=5))
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00not a video" * 100)
    failed = create_job(stack, junk)
    post_upload(failed, junk)
    wait_final(stack, failed["job_id"])
    wait_final(stack, job["job_id"])
    answers += [read_job(stack, job["job_id"]), read_job(stack, failed["job_id"])]
    answers.append(requests.get(f"{stack.score_url}/v1/jobs/{multipart_job[0]['job_id']}", timeout=30))
    presign, score = stack.presign_url, stack.score_url
    answers += [
        requests.post(f"{presign}/v1/jobs", data="{", timeout=30),
        requests.post(f"{presign}/v1/jobs", json={"filename": "a", "content_type": "text/html", "size": 1}, timeout=30),
        requests.post(f"{presign}/v1/jobs", json={"filename": "a", "content_type": "video/mp4", "size": 10**12},
                      timeout=30),
        requests.post(f"{presign}/v1/jobs", data="x" * 100_000, timeout=30),
        requests.get(f"{presign}/v1/jobs", timeout=30),
        requests.get(f"{presign}/admin", timeout=30),
        requests.post(f"{presign}/v1/jobs/{job['job_id']}/upload/complete", json={"parts": []}, timeout=30),
        requests.post(multipart_job[0]["upload"]["complete_url"], json={"parts": []}, timeout=30),
        requests.post(f"{presign}/v1/jobs/{failed['job_id']}/rescore", json={}, timeout=30),  # fails fast again
        requests.get(f"{score}/v1/jobs/{'0' * 32}", timeout=30),
        requests.get(f"{score}/v1/jobs/{job['job_id']}", params={"wait": "abc"}, timeout=30),
        requests.delete(f"{score}/v1/jobs/{job['job_id']}", timeout=30),
        requests.get(f"{score}/healthz", timeout=30),
    ]
    return answers


def test_no_answer_holds_an_internal_field_a_stack_trace_or_a_wildcard_origin(stack, multipart_job, tmp_path):
    answers = answers_of_a_whole_lifecycle(stack, multipart_job, tmp_path)
    statuses = set()
    for response in answers:
        statuses.add(response.status_code)
        body = response.json()
        text = response.text
        assert not any(marker in text for marker in TRACE_MARKERS), text
        assert response.headers.get("Access-Control-Allow-Origin") != "*"
        assert response.headers.get("Server", "").lower().find("werkzeug") < 0
        if response.status_code >= 400:
            assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
            continue
        assert not any(f'"{name}"' in text for name in INTERNAL), text
        if "job_id" in body and "upload" in body:  # created: the upload form names its key, by necessity
            assert set(body) == {"job_id", "status", "upload", "expires_at"}
            assert set(body["upload"]) == {"method", "url", "fields"}
            assert set(body["upload"]["fields"]) == FORM_FIELDS
            continue
        if "job_id" in body:
            assert set(body) <= set(PUBLIC_FIELDS) | {"filmstrip_url"}, set(body) - set(PUBLIC_FIELDS)
            text = text.replace(body.get("filmstrip_url", "") or "\0", "")
        assert '"key"' not in text and stack.settings.upload_prefix not in text, text
    assert {200, 201, 400, 404, 405, 409, 413, 415} <= statuses


def test_a_body_over_the_limit_is_refused_before_it_is_read(stack):
    """The server answers 413 from the Content-Length alone: a client that announces 100 MB
    and sends one byte gets its answer at once (a server that read first would wait)."""
    host, port = urlsplit(stack.presign_url).hostname, urlsplit(stack.presign_url).port
    with socket.create_connection((host, port), timeout=30) as sock:
        sock.sendall(b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100000000\r\n\r\n{")
        answer = b""
        while b"}}" not in answer:  # the JSON error body, after the headers
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    answer = answer.decode(errors="replace")
    assert answer.startswith("HTTP/1.1 413"), answer[:200]
    assert '"request_too_large"' in answer


@pytest.mark.parametrize("padding", [16 * 1024, 1_000_000])
def test_a_chunked_body_over_the_limit_is_refused_not_cut_short(stack, padding):
    """Without a Content-Length the server reads a chunked body up to the limit; what is over
    it is refused, never parsed cut short (here a valid job followed by spaces)."""
    body = json.dumps({"filename": "a.mp4", "content_type": "video/mp4", "size": 1}).encode()

    def chunks(data):
        yield data

    response = requests.post(f"{stack.presign_url}/v1/jobs", data=chunks(body + b" " * padding),
                             headers={"Content-Type": "application/json"}, timeout=60)
    assert response.status_code == 413, response.text
    assert response.json()["error"]["code"] == "request_too_large"
    small = requests.post(f"{stack.presign_url}/v1/jobs", data=chunks(body), timeout=60)
    assert small.status_code == 201, small.text


# -- the function runtime ----------------------------------------------------------------------

def test_only_the_dispatcher_may_invoke_the_function(stack, tmp_path):
    """Anyone on the machine can reach a runtime's invoke URL: a forged upload event sent there
    gets a refusal and changes nothing, and the dispatcher's own invocations still score."""
    path = small_clip(tmp_path / "forged.mp4", offset=43)
    job = create_job(stack, path)
    before = stack.store.get(job["job_id"])
    wait_until(lambda: runtime_idle(stack), 120, what="the dispatcher to have nothing in flight")

    answer = requests.post(stack.settings.runtime_invoke_urls[0], json=forged_upload_event(stack, job), timeout=120)

    # The runtime answers once the invocation has ended: nothing of it can come later.
    assert answer.json().get("errorType") == "InvocationRefused", answer.text
    assert job["job_id"] not in answer.text
    assert stack.store.get(job["job_id"]) == before
    post_upload(job, path)
    final = wait_final(stack, job["job_id"])
    assert final["status"] == "succeeded", final
    assert stack.store.get(job["job_id"])["attempts"] == 1


# -- logs ----------------------------------------------------------------------------------------

def test_the_stacks_logs_hold_no_signature_and_no_secret(stack, multipart_job):
    job, _, final = multipart_job
    post = new_job(stack).json()["upload"]["fields"]
    signatures = [parse_qs(urlsplit(part["url"]).query)["X-Amz-Signature"][0] for part in job["upload"]["parts"]]
    signatures += [parse_qs(urlsplit(final["filmstrip_url"]).query)["X-Amz-Signature"][0], post["x-amz-signature"]]
    logs = stack.output()
    assert f"/v1/jobs/{job['job_id']}" in logs  # the requests were logged, without their secrets:

    for signature in signatures:
        assert signature not in logs
    assert post["policy"] not in logs
    unredacted = re.findall(r"(?i)(?:x-amz-signature|signature)=(?!REDACTED)[0-9a-f]{16,}", logs)
    assert unredacted == []
    assert "AWS_SECRET_ACCESS_KEY" not in logs and "aws_secret_access_key" not in logs.lower()
    assert stack.dispatcher_key not in logs
    assert "Authorization: AWS4" not in logs and "AWS4-HMAC-SHA256 Credential" not in logs


def test_two_hundred_waiting_clients_cannot_starve_the_status_api(stack):
    """Each long poll holds a thread; once a process's waiting places are taken, more polls are
    refused at once with Retry-After, so reads and /healthz still find a thread."""
    job = new_job(stack).json()  # awaiting its upload: it does not change while the polls wait
    url = f"{stack.score_url}/v1/jobs/{job['job_id']}"
    etag = requests.get(url, timeout=30).headers["ETag"]
    answers: list[tuple[int, str | None]] = []

    def poll():
        try:
            answer = requests.get(url, params={"wait": 20}, headers={"If-None-Match": etag}, timeout=120)
            answers.append((answer.status_code, answer.headers.get("Retry-After")))
        except requests.RequestException as err:
            answers.append((0, repr(err)))

    polls = [threading.Thread(target=poll) for _ in range(200)]
    for thread in polls:
        thread.start()
    try:
        wait_until(lambda: any(status == 503 for status, _ in answers), 60, what="a poll refused: every place taken")
        started = time.monotonic()
        assert requests.get(f"{stack.score_url}/healthz", timeout=30).status_code == 200
        assert requests.get(url, timeout=30).status_code == 200
        answered_in = time.monotonic() - started
    finally:
        for thread in polls:
            thread.join(120)
    # Behind 16 busy threads they would wait for a poll to end (20 s).
    assert answered_in < 10, f"a read and /healthz took {answered_in:.1f} s behind the polls"
    assert {status for status, _ in answers} <= {304, 503}, answers
    assert all(retry == "1" for status, retry in answers if status == 503)
    assert sum(status == 304 for status, _ in answers) <= 2 * 12  # two workers, twelve places each


def test_the_urls_an_answer_carries_name_the_configured_address_whatever_host_a_request_claims(stack):
    body = {"filename": "big.mp4", "content_type": "video/mp4", "size": 7 * 1024 * 1024}  # multipart
    answer = requests.post(f"{stack.presign_url}/v1/jobs", json=body, timeout=30,
                           headers={"Host": "evil.example", "X-Forwarded-Proto": "https",
                                    "X-Forwarded-Host": "evil.example"})
    assert answer.status_code == 201, answer.text
    job = answer.json()
    assert job["upload"]["complete_url"] == f"{stack.presign_url}/v1/jobs/{job['job_id']}/upload/complete"
    parts = requests.get(f"{stack.presign_url}/v1/jobs/{job['job_id']}/upload/parts", timeout=30,
                         headers={"Host": "evil.example", "X-Forwarded-Proto": "https"}).json()
    assert parts["complete_url"] == job["upload"]["complete_url"]


@pytest.mark.parametrize(("name", "request_bytes", "status", "code"), [
    ("a request line over the limit", b"GET /v1/jobs/" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414,
     "request_too_large"),
    ("a header over the limit", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", 431,
     "request_too_large"),
    ("an obsolete folded header", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\n\r\n", 400,
     "bad_request"),
    ("a request line that is no HTTP", b"NOT HTTP AT ALL\r\n\r\n", 400, "bad_request"),
])
@pytest.mark.parametrize("service", ["presign", "score"])
def test_what_the_http_server_refuses_is_answered_in_the_apis_json_error_form(stack, service, name, request_bytes,
                                                                               status, code):
    url = urlsplit(stack.presign_url if service == "presign" else stack.score_url)
    with socket.create_connection((url.hostname, url.port), timeout=30) as connection:
        connection.sendall(request_bytes)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.split(b" ", 2)[1] == str(status).encode(), (name, head)
    assert b"content-type: application/json" in head.lower(), (name, head)
    assert json.loads(body)["error"]["code"] == code, (name, body)

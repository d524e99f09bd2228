"""Bad inputs through the running native stack, as users send them: each one ends as a 4xx with
its code from the API, or as a ``failed`` job with its code. None stays ``queued`` or
``processing``, none is retried in a loop, and the stack keeps scoring good videos after them."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import requests

from divescore.jobs import new_job_id
from tests.support import videos
from tests.support.helpers import wait_until
from tests.support.stack_support import (
    create_job,
    dead_letters,
    new_job,
    post_upload,
    queue_counts,
    read_job,
    small_clip,
    submit,
    wait_final,
)

pytestmark = pytest.mark.stack


def make_long(path: Path) -> Path:
    """Ten minutes and one second at one frame a second: longer than the 600 s limit, and
    small (601 tiny frames)."""
    subprocess.run([videos.FFMPEG, "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc=size=64x64:rate=1:duration=601", "-c:v", "libx264", "-preset", "ultrafast",
                    "-pix_fmt", "yuv420p", "-f", "mp4", str(path)], check=True)
    return path


# name → (make the file, what the job declares, the code the job must end with)
UPLOADS = {
    "random_bytes": (videos.make_random_bytes, {}, "not_a_video"),
    # The API refuses size 0 and the form's policy a 0-byte file: stored directly (STORED_DIRECTLY).
    "zero_bytes": (videos.make_empty, {"size": 1}, "not_a_video"),
    "png_as_mp4": (videos.make_png, {}, "not_a_video"),
    "pdf_as_mp4": (videos.make_pdf, {}, "not_a_video"),
    "truncated": (videos.make_truncated, {}, "video_truncated"),
    "moov_cut": (videos.make_moov_cut, {}, "not_a_video"),
    "header_only": (videos.make_header_only, {}, "no_frames"),
    "audio_only": (videos.make_audio_only, {}, "not_a_video"),
    "one_frame": (videos.make_one_frame, {}, "video_too_short"),
    "short_0.2s": (videos.make_short, {}, "video_too_short"),
    "tiny_1x1": (videos.make_tiny, {}, "resolution_too_small"),
    "8k": (videos.make_8k, {}, "resolution_too_large"),
    "over_10_minutes": (make_long, {}, "video_too_long"),
    # Within the policy's size range, so S3 stores it: the function checks the declared size.
    "larger_than_declared": (lambda p: small_clip(p), {"size": 100}, "size_mismatch"),
}
# What no upload form lets through, put in the bucket as an object that got there another way.
STORED_DIRECTLY = {"zero_bytes"}


@pytest.fixture(scope="module")
def bad_uploads(stack, tmp_path_factory):
    """Every bad upload submitted at once, then each job as it ended."""
    folder = tmp_path_factory.mktemp("bad-uploads")
    jobs = {}
    for name, (make, declared, _) in UPLOADS.items():
        path = make(folder / f"{name}.mp4")
        job = create_job(stack, path, size=declared.get("size"))
        if name in STORED_DIRECTLY:
            stack.client("s3").put_object(Bucket=stack.settings.bucket, Key=stack.settings.upload_key(job["job_id"]),
                                          Body=path.read_bytes())
        else:
            post_upload(job, path)
        jobs[name] = job["job_id"]
    return {name: wait_final(stack, job_id) for name, job_id in jobs.items()}


@pytest.mark.parametrize("name", list(UPLOADS))
def test_a_bad_upload_ends_failed_with_its_code(bad_uploads, name):
    job = bad_uploads[name]
    assert job["status"] == "failed", job
    assert job["error"]["code"] == UPLOADS[name][2], job["error"]
    assert job["error"]["message"].endswith("."), job["error"]
    assert "score" not in job


def test_bad_uploads_are_not_retried_and_the_stack_still_scores(stack, bad_uploads, tmp_path):
    for name, job in bad_uploads.items():
        assert stack.store.get(job["job_id"])["attempts"] == 1, name  # acknowledged: no retry loop
    good = submit(stack, small_clip(tmp_path / "good.mp4"))
    assert wait_final(stack, good["job_id"])["status"] == "succeeded"
    wait_until(lambda: queue_counts(stack) == (0, 0), 60, what="the jobs queue to drain")
    bad_ids = {job["job_id"] for job in bad_uploads.values()}
    assert not [m for m in dead_letters(stack) if any(i in m["Body"] for i in bad_ids)]


def test_a_job_never_uploaded_stays_awaiting_upload_and_reads_so(stack):
    job = new_job(stack).json()
    body = read_job(stack, job["job_id"]).json()
    assert body["status"] == "awaiting_upload"


# -- what the API itself refuses ------------------------------------------------------------

GOOD = {"filename": "dive.mp4", "content_type": "video/mp4", "size": 1000}

REFUSED = [
    # (what, request body, status, code)
    ("declared size over the limit", {**GOOD, "size": 200_000_001}, 413, "file_too_large"),
    ("size zero", {**GOOD, "size": 0}, 400, "invalid_size"),
    ("negative size", {**GOOD, "size": -5}, 400, "invalid_size"),
    ("size as a string", {**GOOD, "size": "1000"}, 400, "invalid_field"),
    ("size as a fraction", {**GOOD, "size": 10.5}, 400, "invalid_field"),
    ("size as a boolean", {**GOOD, "size": True}, 400, "invalid_field"),
    ("size as a huge number", {**GOOD, "size": 10 ** 400}, 413, "file_too_large"),
    ("filename as a number", {**GOOD, "filename": 5}, 400, "invalid_field"),
    ("filename as null", {**GOOD, "filename": None}, 400, "invalid_field"),
    ("content type as a list", {**GOOD, "content_type": ["video/mp4"]}, 400, "invalid_field"),
    ("an extra field", {**GOOD, "key": "uploads/other/video"}, 400, "unknown_field"),
    ("a missing field", {"filename": "dive.mp4", "size": 1000}, 400, "missing_field"),
    ("not an object", ["dive.mp4", "video/mp4", 1000], 400, "invalid_json"),
    ("a bare string", "dive.mp4", 400, "invalid_json"),
    ("a content type that is not video", {**GOOD, "content_type": "application/pdf"}, 415,
     "unsupported_media_type"),
    ("a content type with parameters", {**GOOD, "content_type": "video/mp4; codecs=avc1"}, 415,
     "unsupported_media_type"),
    ("a huge content type", {**GOOD, "content_type": "video/" + "x" * 10_000}, 415, "unsupported_media_type"),
    ("an empty filename", {**GOOD, "filename": ""}, 400, "invalid_filename"),
    ("a huge filename", {**GOOD, "filename": "a" * 10_000 + ".mp4"}, 400, "invalid_filename"),
    ("a newline in the filename", {**GOOD, "filename": "dive\n.mp4"}, 400, "invalid_filename"),
    ("a NUL in the filename", {**GOOD, "filename": "dive\x00.mp4"}, 400, "invalid_filename"),
    ("an escape sequence in the filename", {**GOOD, "filename": "\x1b[31mdive.mp4"}, 400, "invalid_filename"),
    ("a C1 control in the filename", {**GOOD, "filename": "dive\x85.mp4"}, 400, "invalid_filename"),
    # Format characters rewrite or hide what a name shows: U+202E makes "evil\u202egnp.mp4" read
    # "evilmp4.png". Emoji joined by U+200D fall under the same rule (see docs/api.md).
    ("a bidi override in the filename", {**GOOD, "filename": "evil\u202egnp.mp4"}, 400, "invalid_filename"),
    ("a zero-width space in the filename", {**GOOD, "filename": "dive\u200b.mp4"}, 400, "invalid_filename"),
    ("a zero-width joiner in the filename", {**GOOD, "filename": "\U0001f3ca\u200d\u2640.mp4"}, 400,
     "invalid_filename"),
]


@pytest.mark.parametrize(("what", "body", "status", "code"), REFUSED, ids=[r[0] for r in REFUSED])
def test_the_api_refuses_a_bad_new_job_with_its_code(stack, what, body, status, code):
    response = requests.post(f"{stack.presign_url}/v1/jobs", json=body, timeout=30)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["message"]


@pytest.mark.parametrize("raw", [
    b"{", b"", b"null", b'{"filename": "a.mp4", "filename": 1', b"\xff\xfe\x00", b"[" * 3000 + b"]" * 3000,
    b'{"filename": "\\ud800.mp4", "content_type": "video/mp4", "size": 1}',
], ids=["unclosed", "empty", "null", "cut", "not utf-8", "deeply nested", "lone surrogate"])
def test_bodies_that_are_not_a_job_are_400s(stack, raw):
    response = requests.post(f"{stack.presign_url}/v1/jobs", data=raw,
                             headers={"Content-Type": "application/json"}, timeout=30)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] in ("invalid_json", "invalid_filename")


@pytest.mark.parametrize("filename", ["plongeon été 🏊.mp4", "跳水.MOV", "..\\..\\boot.ini", "../../etc/passwd",
                                      "dive" + "🌊" * 200])
def test_any_printable_filename_is_kept_as_given_and_never_moves_the_object(stack, filename):
    response = requests.post(f"{stack.presign_url}/v1/jobs", json={**GOOD, "filename": filename}, timeout=30)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["upload"]["fields"]["key"] == stack.settings.upload_key(created["job_id"])
    assert read_job(stack, created["job_id"]).json()["filename"] == filename


# -- job ids ------------------------------------------------------------------------------

@pytest.mark.parametrize("job_id", [
    "not-a-job", "F" * 32, "f" * 31, "f" * 33, "g" * 32, "%00", "..%2F..%2Fetc%2Fpasswd", "a/b/c",
    "f" * 1000, "%F0%9F%8F%8A", "1 OR 1=1", '{"$ne": null}',
], ids=["words", "upper hex", "short", "long", "not hex", "nul", "traversal", "slashes", "1000 chars",
        "emoji", "sql", "nosql"])
def test_a_malformed_job_id_reads_as_not_found(stack, job_id):
    for wait in (0, 1):
        response = requests.get(f"{stack.score_url}/v1/jobs/{job_id}", params={"wait": wait}, timeout=30)
        assert response.status_code == 404, response.text
        assert response.json()["error"]["code"] == "job_not_found"


def test_an_id_longer_than_any_request_line_is_a_4xx_not_a_crash(stack):
    response = requests.get(f"{stack.score_url}/v1/jobs/{'f' * 20_000}", timeout=30)
    assert 400 <= response.status_code < 500


def test_a_well_formed_id_of_no_job_reads_exactly_like_any_other_missing_job(stack):
    answers = {requests.get(f"{stack.score_url}/v1/jobs/{job_id}", timeout=30).text
               for job_id in (new_job_id(), new_job_id(), "nope")}
    assert len(answers) == 1


def test_completing_an_upload_with_another_jobs_id_is_refused(stack):
    single = new_job(stack).json()  # a single pre-signed POST: nothing to complete
    response = requests.post(f"{stack.presign_url}/v1/jobs/{single['job_id']}/upload/complete",
                             json={"parts": [{"part_number": 1, "etag": '"abc"'}]}, timeout=30)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "not_multipart_upload"
    unknown = requests.post(f"{stack.presign_url}/v1/jobs/{new_job_id()}/upload/complete",
                            json={"parts": []}, timeout=30)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "job_not_found"

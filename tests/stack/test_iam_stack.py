"""IAM through the running native stack: the template's role policies are what the processes
may do. A permission missing from a role makes the matching call fail as on AWS, and the two
gaps AWS would have refused (presign's HEAD, the function's missing upload) are closed."""

from __future__ import annotations

import pytest
import requests
import yaml

from devstack.iam.policies import load_template
from tests.support.helpers import running_stack, wait_until
from tests.support.stack_support import (
    create_job,
    log_lines,
    new_job,
    padded,
    post_upload,
    read_job,
    s3_event,
    send,
    small_clip,
    upload_parts,
    wait_final,
    wait_status,
)

pytestmark = pytest.mark.stack


def without_action(template: dict, role: str, sid: str, action: str) -> dict:
    """``template`` with ``action`` taken out of the statement ``sid`` of ``role`` (and the
    statement itself, if that was its only action)."""
    for policy in template["Resources"][role]["Properties"]["Policies"]:
        document = policy["PolicyDocument"]
        for statement in document["Statement"]:
            if statement.get("Sid") == sid:
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                assert action in actions, f"{role}.{sid} has no {action}"
                statement["Action"] = [a for a in actions if a != action]
                document["Statement"] = [s for s in document["Statement"] if s["Action"]]
                return template
    raise AssertionError(f"{role} has no statement {sid}")


@pytest.fixture(scope="module")
def narrowed_stack(tmp_path_factory):
    """A stack whose template copy lacks one action in each role: presign may not upload
    (s3:PutObject), score may not read a job (dynamodb:GetItem), the function may not write
    its results (s3:PutObject on results/). One receive, so a failed job is recorded at once."""
    template = load_template()
    without_action(template, "PresignFunctionRole", "PresignUploads", "s3:PutObject")
    without_action(template, "ScoreFunctionRole", "JobRecords", "dynamodb:GetItem")
    without_action(template, "InferenceFunctionRole", "WriteResults", "s3:PutObject")
    copy = tmp_path_factory.mktemp("narrowed") / "template.yaml"
    copy.write_text(yaml.safe_dump(template))
    with running_stack({"DIVESCORE_TEMPLATE": str(copy), "DIVESCORE_MAX_RECEIVE_COUNT": "1"}) as stack:
        yield stack


def test_presign_without_s3_put_object_signs_uploads_that_s3_refuses(narrowed_stack, tmp_path):
    video = small_clip(tmp_path / "dive.mp4")
    job = create_job(narrowed_stack, video)  # its table write is still allowed

    upload = job["upload"]
    answer = requests.post(upload["url"], data=upload["fields"], files={"file": ("video", video.read_bytes())},
                           timeout=30)

    assert answer.status_code == 403
    assert "<Code>AccessDenied</Code>" in answer.text


def test_score_without_dynamodb_get_item_answers_500_and_logs_the_refused_action(narrowed_stack):
    job = new_job(narrowed_stack).json()

    answer = read_job(narrowed_stack, job["job_id"])

    assert answer.status_code == 500
    assert answer.json()["error"]["code"] == "internal_error"
    wait_until(lambda: any("not authorized to perform: dynamodb:GetItem" in line
                           for line in log_lines(narrowed_stack, "score")), 10, what="the refusal in the log")


def test_the_function_without_s3_put_object_on_results_fails_the_job_and_logs_why(narrowed_stack, tmp_path):
    video = small_clip(tmp_path / "dive.mp4")
    job = create_job(narrowed_stack, video)
    # Uploaded as the admin: presign's key may not (see above).
    narrowed_stack.client("s3").put_object(Bucket=narrowed_stack.settings.bucket,
                                           Key=narrowed_stack.settings.upload_key(job["job_id"]),
                                           Body=video.read_bytes(), ContentType="video/mp4")

    final = wait_status(narrowed_stack, job["job_id"], ("succeeded", "failed"), timeout=180, interval=0.5)

    assert final["status"] == "failed"
    assert final["error"]["code"] == "processing_failed"
    # The job's record can be read before the function's log line has reached the stack's log.
    refusals = wait_until(lambda: [line for line in log_lines(narrowed_stack, "function-0") if "AccessDenied" in line],
                          30, what="the refusal in the function's log")
    assert "PutObject" in refusals[0]


# -- the two calls AWS refused while every test was green ------------------------------------

def test_a_repeated_complete_after_s3_completed_the_upload_leaves_the_job_alone(stack, tmp_path):
    """As when the first upload/complete completed the upload in S3 but failed before it
    recorded the job queued (or its answer was lost):
    the retry finds no upload (NoSuchUpload) and must tell "completed" from "abandoned" with a
    HEAD of the video, which presign's role must allow (on AWS, HeadObject is s3:GetObject)."""
    video = padded(small_clip(tmp_path / "dive.mp4"), stack.settings.multipart_threshold_bytes + 1024)
    job = create_job(stack, video)
    upload, data = job["upload"], video.read_bytes()
    parts = upload_parts(job, data)
    # What S3 holds once it has forgotten a completed upload: the video, and no upload of that
    # id (a retry soon after the completion gets its answer again; later, NoSuchUpload).
    record, s3 = stack.store.get(job["job_id"]), stack.client("s3")
    s3.abort_multipart_upload(Bucket=stack.settings.bucket, Key=record["key"], UploadId=record["upload_id"])
    s3.put_object(Bucket=stack.settings.bucket, Key=record["key"], Body=data, ContentType="video/mp4")

    retried = requests.post(upload["complete_url"], json={"parts": parts}, timeout=30)

    assert retried.status_code == 409, retried.text
    assert retried.json()["error"]["code"] == "upload_not_pending"
    assert wait_final(stack, job["job_id"])["status"] == "succeeded"


def test_an_upload_that_is_not_there_fails_the_job_as_upload_missing_at_once(stack):
    """The function's role has no s3:ListBucket, so S3 answers its HEAD of a missing key with
    403, not 404: that too is a missing upload, not a reason to retry until the dead-letter queue."""
    job = new_job(stack).json()
    send(stack, s3_event(stack, stack.settings.upload_key(job["job_id"]), 1000))

    final = wait_status(stack, job["job_id"], ("succeeded", "failed"), timeout=90, interval=0.5)

    assert final["status"] == "failed"
    assert final["error"]["code"] == "upload_missing"
    assert final["attempts"] == 1


def test_the_stack_says_iam_is_enforced_and_processes_hold_their_own_keys(stack):
    assert "IAM           enforced" in stack.output()
    keys = {name: stack.key(name)["AccessKeyId"] for name in ("admin", "presign", "score", "function", "dispatcher")}
    assert len(set(keys.values())) == len(keys)
    job = new_job(stack).json()
    # The upload form is signed with presign's key, not the admin's.
    assert job["upload"]["fields"]["x-amz-credential"].startswith(keys["presign"] + "/")
    post_upload(job, b"not a video")

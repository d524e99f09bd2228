"""IAM as the native stack enforces it: policies read from the template, and an emulator that
authorises signed, pre-signed and anonymous requests by the caller's policy."""

from __future__ import annotations

import time

import boto3
import pytest
import requests
import yaml
from botocore.config import Config
from botocore.exceptions import ClientError

from devstack.iam import principals
from devstack.iam.policies import PRINCIPALS, PolicyError, function_statements, load_template, policy_for
from divescore.jobs import JobStore, Status, new_job_id
from divescore.settings import load
from tests.support.helpers import ROOT, Emulator

ACCOUNT = "123456789012"
TABLE_ARN = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/iam-jobs"
UPLOADS = "arn:aws:s3:::iam-bucket/uploads/*"
SETTINGS = load({}, bucket="iam-bucket", queue="iam-jobs", table="iam-jobs", s3_addressing_style="path")


def actions(policy: dict) -> set[str]:
    return {a for s in policy["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}


def statement_with(policy: dict, action: str) -> dict:
    [statement] = [s for s in policy["Statement"] if action in s["Action"]]
    return statement


# -- policies from the template -----------------------------------------------------------

def test_each_process_gets_its_functions_role_resolved_to_the_local_resources():
    presign = policy_for("presign", SETTINGS, ACCOUNT)
    assert statement_with(presign, "s3:PutObject")["Resource"] == UPLOADS
    assert statement_with(presign, "dynamodb:PutItem")["Resource"] == TABLE_ARN
    function = policy_for("function", SETTINGS, ACCOUNT)
    assert statement_with(function, "s3:PutObject")["Resource"] == "arn:aws:s3:::iam-bucket/results/*"
    assert "dynamodb:PutItem" not in actions(function)


def test_the_dispatcher_gets_only_the_sqs_actions_of_the_functions_role():
    dispatcher = policy_for("dispatcher", SETTINGS, ACCOUNT)
    function = policy_for("function", SETTINGS, ACCOUNT)
    assert actions(dispatcher) == {a for a in actions(function) if a.startswith("sqs:")}
    assert {"sqs:ReceiveMessage", "sqs:DeleteMessage"} <= actions(dispatcher)
    assert statement_with(dispatcher, "sqs:ReceiveMessage")["Resource"] == f"arn:aws:sqs:us-east-1:{ACCOUNT}:iam-jobs"


def test_a_policy_changed_in_the_template_is_what_the_process_gets(tmp_path):
    template = load_template()
    role = template["Resources"]["ScoreFunctionRole"]["Properties"]["Policies"][0]["PolicyDocument"]
    role["Statement"].append(
        {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": {"Fn::GetAtt": "JobsQueue.Arn"}})
    copy = tmp_path / "template.yaml"
    copy.write_text(yaml.safe_dump(template))

    score = policy_for("score", load({}, template=str(copy), queue="q1"), ACCOUNT)

    assert statement_with(score, "sqs:SendMessage")["Resource"] == f"arn:aws:sqs:us-east-1:{ACCOUNT}:q1"


def test_sam_policy_templates_on_a_function_are_expanded():
    template = load_template()
    function = template["Resources"]["ScoreFunction"]["Properties"]
    del function["Role"]
    function["Policies"] = [{"SQSPollerPolicy": {"QueueName": {"Fn::GetAtt": ["JobsQueue", "QueueName"]}}},
                            {"DynamoDBReadPolicy": {"TableName": {"Ref": "JobsTable"}}}]

    score = policy_for("score", SETTINGS, ACCOUNT, template)

    assert statement_with(score, "sqs:ReceiveMessage")["Resource"] == f"arn:aws:sqs:us-east-1:{ACCOUNT}:iam-jobs"
    assert TABLE_ARN in statement_with(score, "dynamodb:GetItem")["Resource"]


def test_a_role_the_native_stack_cannot_resolve_is_an_error_naming_it():
    template = load_template()
    template["Resources"]["ScoreFunctionRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"].append(
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": {"Fn::GetAtt": "NoSuchBucket.Arn"}})
    with pytest.raises(PolicyError, match="NoSuchBucket"):
        policy_for("score", SETTINGS, ACCOUNT, template)


def test_every_principal_names_a_function_of_the_template():
    template = load_template()
    for principal in PRINCIPALS.values():
        assert function_statements(template, principal.function)


# -- the emulator's enforcement -----------------------------------------------------------

@pytest.fixture(scope="module")
def enforced():
    """An emulator of our own with IAM enforced, the resources, and users with small policies."""
    emulator = Emulator()
    try:
        admin = emulator.admin = principals.enforce(emulator.endpoint, SETTINGS)
        as_admin = client_factory(emulator.endpoint, admin)
        as_admin("s3").create_bucket(Bucket=SETTINGS.bucket)
        for table in (SETTINGS.table, "other-table"):
            as_admin("dynamodb").create_table(
                TableName=table, AttributeDefinitions=[{"AttributeName": "job_id", "AttributeType": "S"}],
                KeySchema=[{"AttributeName": "job_id", "KeyType": "HASH"}], BillingMode="PAY_PER_REQUEST")
        iam = principals._iam(emulator.endpoint, SETTINGS, admin)
        users = {
            "uploader": principals._create_user(iam, "uploader", "p", {"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": ["s3:PutObject", "s3:GetObject"], "Resource": UPLOADS},
                {"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": TABLE_ARN},
            ]}),
            "lister": principals._create_user(iam, "lister", "p", {"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": "s3:GetObject", "Resource": UPLOADS},
                {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::iam-bucket"},
            ]}),
        }
        yield emulator, as_admin, {name: client_factory(emulator.endpoint, key) for name, key in users.items()}
    finally:
        emulator.stop()


def client_factory(endpoint: str, key: dict[str, str]):
    def make(service: str):
        return boto3.session.Session(region_name="us-east-1").client(
            service, endpoint_url=endpoint, aws_access_key_id=key["AccessKeyId"],
            aws_secret_access_key=key["SecretAccessKey"],
            config=Config(s3={"addressing_style": "path"}, signature_version="s3v4"))
    return make


def denied(call) -> str:
    """The error of a call refused with 403 (moto answers IAM refusals of JSON APIs in XML, so
    boto3 sees the code "403"), as boto3 shows it."""
    with pytest.raises(ClientError) as raised:
        call()
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403, raised.value
    return str(raised.value)


def error_code(call) -> str:
    with pytest.raises(ClientError) as raised:
        call()
    return raised.value.response["Error"]["Code"]


def test_a_secret_is_authorised_by_its_arn_as_the_template_names_it(enforced):
    emulator, as_admin, _ = enforced
    settings = load({}, webhook_secret="iam-secret")
    for name in ("iam-secret", "other-secret"):
        as_admin("secretsmanager").create_secret(Name=name, SecretString="s")
    policy = policy_for("notifier", settings, ACCOUNT)
    iam = principals._iam(emulator.endpoint, SETTINGS, emulator.admin)
    reader = client_factory(emulator.endpoint, principals._create_user(iam, "secret-reader", "p", policy))(
        "secretsmanager")
    assert reader.get_secret_value(SecretId="iam-secret")["SecretString"] == "s"
    assert "secretsmanager:GetSecretValue" in denied(lambda: reader.get_secret_value(SecretId="other-secret"))


def test_get_queue_url_is_authorised_by_the_queue_it_names(enforced):
    emulator, as_admin, _ = enforced
    for name in ("iam-callbacks", "iam-other"):
        as_admin("sqs").create_queue(QueueName=name)
    iam = principals._iam(emulator.endpoint, SETTINGS, emulator.admin)
    queue_arn = f"arn:aws:sqs:us-east-1:{ACCOUNT}:iam-callbacks"
    user = principals._create_user(iam, "queue-finder", "p", {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "sqs:GetQueueUrl", "Resource": queue_arn}]})
    sqs = client_factory(emulator.endpoint, user)("sqs")
    assert sqs.get_queue_url(QueueName="iam-callbacks")["QueueUrl"].endswith("/iam-callbacks")
    assert "sqs:GetQueueUrl" in denied(lambda: sqs.get_queue_url(QueueName="iam-other"))


def test_a_signed_call_is_allowed_only_where_the_policy_allows(enforced):
    _, _, users = enforced
    s3 = users["uploader"]("s3")
    s3.put_object(Bucket="iam-bucket", Key="uploads/a/video", Body=b"x")
    assert error_code(lambda: s3.put_object(Bucket="iam-bucket", Key="results/a/x", Body=b"x")) == "AccessDenied"
    assert "not authorized to perform: sqs:ListQueues" in denied(lambda: users["uploader"]("sqs").list_queues())


def test_dynamodb_is_authorised_per_table(enforced):
    _, _, users = enforced
    ddb = users["uploader"]("dynamodb")
    ddb.get_item(TableName=SETTINGS.table, Key={"job_id": {"S": "x"}})
    assert "dynamodb:GetItem" in denied(lambda: ddb.get_item(TableName="other-table", Key={"job_id": {"S": "x"}}))
    assert "dynamodb:PutItem" in denied(lambda: ddb.put_item(TableName=SETTINGS.table, Item={"job_id": {"S": "x"}}))


def test_a_missing_object_is_403_without_list_bucket_and_404_with_it(enforced):
    _, _, users = enforced
    def head(user):
        return lambda: users[user]("s3").head_object(Bucket="iam-bucket", Key="uploads/none/video")

    assert error_code(head("uploader")) == "403"
    assert error_code(head("lister")) == "404"


def test_a_pre_signed_url_acts_with_its_signers_permissions(enforced):
    _, as_admin, users = enforced
    as_admin("s3").put_object(Bucket="iam-bucket", Key="results/r/x", Body=b"result")
    as_admin("s3").put_object(Bucket="iam-bucket", Key="uploads/u/video", Body=b"video")
    signer = users["uploader"]("s3")

    allowed = signer.generate_presigned_url("get_object", Params={"Bucket": "iam-bucket", "Key": "uploads/u/video"})
    denied = signer.generate_presigned_url("get_object", Params={"Bucket": "iam-bucket", "Key": "results/r/x"})

    assert requests.get(allowed, timeout=10).content == b"video"
    assert requests.get(denied, timeout=10).status_code == 403
    tampered = allowed.replace("uploads/u/video", "results/r/x")
    assert "SignatureDoesNotMatch" in requests.get(tampered, timeout=10).text
    assert requests.get(allowed.split("?")[0], timeout=10).status_code == 403  # anonymous


def test_a_cors_preflight_needs_no_credentials(enforced):
    emulator, as_admin, _ = enforced
    as_admin("s3").put_bucket_cors(Bucket="iam-bucket", CORSConfiguration={"CORSRules": [
        {"AllowedOrigins": ["http://page.example"], "AllowedMethods": ["POST", "PUT"], "AllowedHeaders": ["*"]}]})
    for path in ("/iam-bucket", "/iam-bucket/uploads/x/video"):
        preflight = requests.options(f"{emulator.endpoint}{path}", timeout=10, headers={
            "Origin": "http://page.example", "Access-Control-Request-Method": "POST"})
        assert preflight.status_code == 200, path
        assert preflight.headers["Access-Control-Allow-Origin"] == "http://page.example"


def test_an_expired_pre_signed_url_is_refused(enforced):
    _, as_admin, _ = enforced
    as_admin("s3").put_object(Bucket="iam-bucket", Key="uploads/e/video", Body=b"video")
    url = as_admin("s3").generate_presigned_url("get_object", Params={"Bucket": "iam-bucket", "Key": "uploads/e/video"},
                                                ExpiresIn=1)
    time.sleep(2)
    assert requests.get(url, timeout=10).status_code == 403


def test_a_pre_signed_post_acts_with_its_signers_permissions(enforced):
    _, _, users = enforced
    signer = users["uploader"]("s3")

    def post(key: str, signed_by=signer, fields_patch=None):
        form = signed_by.generate_presigned_post(Bucket="iam-bucket", Key=key)
        fields = {**form["fields"], **(fields_patch or {})}
        return requests.post(form["url"], data=fields, files={"file": ("v", b"abc")}, timeout=10)

    assert post("uploads/p/video").status_code == 204
    assert post("results/p/x").status_code == 403
    assert post("uploads/q/video", fields_patch={"x-amz-signature": "0" * 64}).status_code == 403
    assert post("uploads/q/video", signed_by=users["lister"]("s3")).status_code == 403  # may read, not write


# -- the lifecycle under a claimless fail ---------------------------------------------------

def test_a_claimless_fail_touches_only_a_job_in_the_status_it_expects(settings):
    store = JobStore.for_settings(settings)
    job_id = new_job_id()
    store.create(job_id=job_id, filename="d.mp4", content_type="video/mp4", size=1, key="k", ttl_seconds=60)
    store.mark_queued(job_id)

    assert store.fail(job_id, "upload_incomplete", "m") is False  # expects awaiting_upload
    assert store.fail(job_id, "upload_incomplete", "m", expected=(Status.AWAITING_UPLOAD,)) is False
    assert store.get(job_id)["status"] == "queued"


def test_the_docs_list_what_each_process_runs_with():
    docs = (ROOT / "docs" / "settings.md").read_text()
    for principal in PRINCIPALS.values():
        assert f"`{principal.function}`" in docs


def test_each_process_starts_as_its_principal_and_with_iam_off_as_it_is():
    from devstack.run import iam_label, processes

    enforced = processes(load({}, credentials_dir="/keys"))
    for name, principal in (("presign", "presign"), ("score", "score"), ("function-0", "function"),
                            ("dispatcher", "dispatcher")):
        assert f"-m devstack.iam.principals exec {principal} -- " in enforced[name][0], name
    assert "devstack.iam.principals" not in enforced["web"][0] + enforced["emulator"][0]
    off = load({}, iam="off")
    assert not any("devstack.iam.principals" in command for command, _, _ in processes(off).values())
    assert iam_label(off).startswith("OFF")
    assert iam_label(load({})).startswith("enforced")

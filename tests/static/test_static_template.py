"""template.yaml (AWS SAM), checked offline: cfn-lint on the template, then the SAM transform
(aws-sam-translator, no AWS call) and cfn-lint on the CloudFormation it becomes; and the
template must declare what standins.bootstrap creates, with the settings' numbers."""

from __future__ import annotations

import re

import pytest

from divescore.settings import Settings, load
from standins import bootstrap
from tests.support.static_support import (
    TEMPLATE,
    TemplateValues,
    cfn_lint,
    defines,
    load_template,
    module_file,
    translate_and_lint,
)

DEFAULTS = Settings()


@pytest.fixture(scope="module")
def template() -> dict:
    return load_template()


@pytest.fixture(scope="module")
def values(template) -> TemplateValues:
    return TemplateValues(template)


@pytest.fixture(scope="module")
def resources(template, values) -> dict:
    """Resources with intrinsic functions evaluated for a deploy with the default parameters."""
    return {name: values.value(resource) for name, resource in template["Resources"].items()}


def test_cfn_lint_passes():
    findings = cfn_lint(TEMPLATE)
    assert not findings, "\n".join(findings)


def test_translated_template_passes_cfn_lint(tmp_path):
    passed, report = translate_and_lint(TEMPLATE, tmp_path)
    assert passed, report


def broken_copy(tmp_path, good: str, bad: str):
    text = TEMPLATE.read_text()
    assert good in text
    broken = tmp_path / "template.yaml"
    broken.write_text(text.replace(good, bad, 1))
    return broken


def test_cfn_lint_fails_on_a_reference_to_nothing(tmp_path):
    # GIVEN the template with a policy naming a queue that does not exist
    broken = broken_copy(tmp_path, "Resource: !GetAtt JobsQueue.Arn", "Resource: !GetAtt JobsQueues.Arn")
    # WHEN it is linted THEN the lint fails, naming it
    findings = cfn_lint(broken)
    assert any("JobsQueues" in finding for finding in findings), findings


def test_translated_check_fails_on_a_reference_to_nothing(tmp_path):
    # GIVEN a bad reference inside SAM's own syntax (the HTTP API's throttling)
    broken = broken_copy(
        tmp_path, "ThrottlingBurstLimit: !Ref ApiBurstLimit", "ThrottlingBurstLimit: !Ref ApiBurstLimits"
    )
    # WHEN it is translated to CloudFormation and linted THEN that fails, naming it
    passed, report = translate_and_lint(broken, tmp_path)
    assert not passed
    assert "ApiBurstLimits" in report


def test_parameter_defaults_are_the_settings_defaults(template):
    parameters = template["Parameters"]
    expected = {
        "BucketName": DEFAULTS.bucket,
        "QueueName": DEFAULTS.queue,
        "DeadLetterQueueName": DEFAULTS.dead_letter_queue,
        "TableName": DEFAULTS.table,
        "FunctionName": DEFAULTS.function_name,
        "FunctionMemoryMB": DEFAULTS.function_memory_mb,
        "FunctionTimeoutSeconds": DEFAULTS.function_timeout_seconds,
        "VisibilityTimeoutSeconds": DEFAULTS.visibility_timeout_seconds,
        "MaxReceiveCount": DEFAULTS.max_receive_count,
        "UploadRetentionDays": DEFAULTS.upload_retention_days,
        "ResultRetentionDays": DEFAULTS.result_retention_days,
        "ModelDtype": DEFAULTS.model_dtype,
    }
    assert {name: parameters[name]["Default"] for name in expected} == expected


def test_the_functions_read_the_same_settings(template, values):
    # GIVEN the environment a default deploy gives every function WHEN settings load it THEN
    # nothing is unknown or malformed, and the names are the deployed resources'.
    environment = values.value(template["Globals"]["Function"]["Environment"]["Variables"])
    assert all(k.startswith(("DIVESCORE_", "POWERTOOLS_")) for k in environment)
    settings = load(environment)
    assert settings.bucket == values.value(template["Resources"]["UploadBucket"]["Properties"]["BucketName"])
    assert settings.queue == values.value(template["Resources"]["JobsQueue"]["Properties"]["QueueName"])
    assert settings.table == values.value(template["Resources"]["JobsTable"]["Properties"]["TableName"])
    assert settings.function_name == values.value(
        template["Resources"]["InferenceFunction"]["Properties"]["FunctionName"]
    )
    assert settings.cors_origins == (values.value({"Fn::Sub": "https://${WebDistribution.DomainName}"}),)
    chosen = TemplateValues(template, WebOrigin="https://dive.example.org", ModelWeights="checkpoints")
    # A custom origin is allowed beside the CloudFront address the deploy prints.
    cloudfront = chosen.value({"Fn::Sub": "https://${WebDistribution.DomainName}"})
    assert load(chosen.value(template["Globals"]["Function"]["Environment"]["Variables"])).cors_origins == (
        "https://dive.example.org", cloudfront,
    )
    bucket_rule = chosen.value(template["Resources"]["UploadBucket"]["Properties"]["CorsConfiguration"])
    assert bucket_rule["CorsRules"][0]["AllowedOrigins"] == ["https://dive.example.org", cloudfront]
    api_cors = chosen.value(template["Resources"]["HttpApi"]["Properties"]["CorsConfiguration"])
    assert api_cors["AllowOrigins"] == ["https://dive.example.org", cloudfront]
    model_env = chosen.value(
        template["Resources"]["InferenceFunction"]["Properties"]["Environment"]["Variables"]
    )
    assert load(model_env).model_dir == "/opt/divescore/models"


def test_queue_timeouts_follow_the_function_timeout(resources, values):
    timeout = int(values.ref("FunctionTimeoutSeconds"))
    jobs = resources["JobsQueue"]["Properties"]
    # AWS's advice for an SQS event source: visibility timeout at least 6x the function timeout.
    assert int(jobs["VisibilityTimeout"]) >= 6 * timeout
    assert int(jobs["RedrivePolicy"]["maxReceiveCount"]) == DEFAULTS.max_receive_count
    assert jobs["RedrivePolicy"]["deadLetterTargetArn"] == "jobsdeadletterqueue-arn"
    attributes = bootstrap.queue_attributes(DEFAULTS, "dlq-arn")
    assert str(jobs["ReceiveMessageWaitTimeSeconds"]) == attributes["ReceiveMessageWaitTimeSeconds"]
    assert str(jobs["MessageRetentionPeriod"]) == attributes["MessageRetentionPeriod"]


def test_the_inference_function_consumes_one_message_at_a_time(resources):
    function = resources["InferenceFunction"]
    properties = function["Properties"]
    assert properties["PackageType"] == "Image"
    assert function["Metadata"]["Dockerfile"] == "lambda_image/Dockerfile"
    assert int(properties["MemorySize"]) == DEFAULTS.function_memory_mb
    assert int(properties["Timeout"]) == DEFAULTS.function_timeout_seconds
    [event] = properties["Events"].values()
    assert event["Type"] == "SQS"
    assert event["Properties"]["Queue"] == "jobsqueue-arn"
    assert event["Properties"]["BatchSize"] == 1
    assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert int(event["Properties"]["ScalingConfig"]["MaximumConcurrency"]) >= 2


def test_the_bucket_is_what_bootstrap_creates(resources):
    bucket = resources["UploadBucket"]["Properties"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    [rule] = bucket["CorsConfiguration"]["CorsRules"]
    [expected] = bootstrap.bucket_cors(DEFAULTS)["CORSRules"]
    assert rule["AllowedMethods"] == expected["AllowedMethods"]
    assert rule["AllowedHeaders"] == expected["AllowedHeaders"]
    assert rule["ExposedHeaders"] == expected["ExposeHeaders"] == ["ETag"]
    assert rule["AllowedOrigins"] == ["https://webdistribution.domainname.example"]
    lifecycle = {r["Prefix"]: r for r in bucket["LifecycleConfiguration"]["Rules"]}
    expected_rules = {r["Filter"]["Prefix"]: r for r in bootstrap.bucket_lifecycle(DEFAULTS)["Rules"]}
    assert set(lifecycle) == set(expected_rules) == {DEFAULTS.upload_prefix, DEFAULTS.result_prefix}
    for prefix, rule in lifecycle.items():
        assert int(rule["ExpirationInDays"]) == expected_rules[prefix]["Expiration"]["Days"]
    [notification] = bucket["NotificationConfiguration"]["QueueConfigurations"]
    assert notification["Queue"] == "jobsqueue-arn"
    assert notification["Event"] == "s3:ObjectCreated:*"
    assert notification["Filter"]["S3Key"]["Rules"] == [{"Name": "prefix", "Value": DEFAULTS.upload_prefix}]


def test_only_this_accounts_bucket_may_send_to_the_queue(resources):
    [statement] = resources["JobsQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "s3.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    bucket_name = resources["UploadBucket"]["Properties"]["BucketName"]
    assert statement["Condition"]["ArnLike"]["aws:SourceArn"] == f"arn:aws:s3:::{bucket_name}"
    assert (
        statement["Condition"]["StringEquals"]["aws:SourceAccount"] == TemplateValues.PSEUDO["AWS::AccountId"]
    )


def test_the_table_is_what_bootstrap_creates(resources):
    table = resources["JobsTable"]["Properties"]
    assert table["KeySchema"] == [{"AttributeName": "job_id", "KeyType": "HASH"}]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}


def role_statements(resources, role: str) -> list[dict]:
    return [
        s
        for policy in resources[role]["Properties"]["Policies"]
        for s in policy["PolicyDocument"]["Statement"]
    ]


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


@pytest.mark.parametrize("role", ["InferenceFunctionRole", "PresignFunctionRole", "ScoreFunctionRole",
                                  "SweepFunctionRole", "NotifierFunctionRole"])
def test_each_function_gets_only_named_actions_on_named_resources(resources, role):
    properties = resources[role]["Properties"]
    assert "ManagedPolicyArns" not in properties
    for statement in role_statements(resources, role):
        assert statement["Effect"] == "Allow"
        for action in as_list(statement["Action"]):
            assert "*" not in action, f"{role}: {action}"
        for resource in as_list(statement["Resource"]):
            if resource == "*":  # X-Ray has no resource-level permissions; nothing else may
                assert all(a.startswith("xray:") for a in as_list(statement["Action"])), role
            if ":s3:" in resource or resource.startswith("uploadbucket"):
                assert resource.endswith((f"/{DEFAULTS.upload_prefix}*", f"/{DEFAULTS.result_prefix}*")), (
                    resource
                )


def actions_on(resources, role: str, resource_part: str) -> set[str]:
    return {
        a
        for s in role_statements(resources, role)
        for a in as_list(s["Action"])
        if any(resource_part in r for r in as_list(s["Resource"]))
    }


def test_what_each_function_may_do(resources):
    uploads, results = f"/{DEFAULTS.upload_prefix}*", f"/{DEFAULTS.result_prefix}*"
    assert actions_on(resources, "InferenceFunctionRole", "jobstable") == {
        "dynamodb:GetItem",
        "dynamodb:UpdateItem",
    }
    assert actions_on(resources, "InferenceFunctionRole", uploads) == {"s3:GetObject", "s3:DeleteObject"}
    assert actions_on(resources, "InferenceFunctionRole", results) == {"s3:PutObject"}
    assert actions_on(resources, "InferenceFunctionRole", "jobsqueue-arn") >= {
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:GetQueueUrl",  # a failed attempt sets its message's visibility to the retry delay
        "sqs:ChangeMessageVisibility",
    }
    assert actions_on(resources, "PresignFunctionRole", "jobstable") == {
        "dynamodb:PutItem",
        "dynamodb:GetItem",
        "dynamodb:UpdateItem",
    }
    assert actions_on(resources, "PresignFunctionRole", uploads) == {
        "s3:PutObject",
        "s3:AbortMultipartUpload",
        "s3:GetObject",  # "score from here" copies an upload; a repeated upload/complete HEADs the video
        "s3:DeleteObject",  # cancel
        "s3:ListMultipartUploadParts",  # GET /v1/jobs/{id}/upload/parts
    }
    assert actions_on(resources, "PresignFunctionRole", results) == set()
    # A read never writes: the score service only reads the table and signs filmstrip links.
    assert actions_on(resources, "ScoreFunctionRole", "jobstable") == {"dynamodb:GetItem"}
    assert actions_on(resources, "ScoreFunctionRole", results) == {"s3:GetObject"}
    assert actions_on(resources, "ScoreFunctionRole", uploads) == set()
    assert actions_on(resources, "SweepFunctionRole", "jobstable") == {"dynamodb:Scan", "dynamodb:UpdateItem"}
    assert actions_on(resources, "SweepFunctionRole", "uploadbucket") == set()
    # Whoever ends a job queues its webhook; only the notifier reads the signing key.
    for role in ("InferenceFunctionRole", "PresignFunctionRole", "SweepFunctionRole"):
        assert actions_on(resources, role, "callbacksqueue") == {"sqs:GetQueueUrl", "sqs:SendMessage"}, role
    assert actions_on(resources, "ScoreFunctionRole", "callbacksqueue") == set()
    assert actions_on(resources, "NotifierFunctionRole", "jobstable") == {"dynamodb:GetItem", "dynamodb:UpdateItem"}
    assert actions_on(resources, "NotifierFunctionRole", "webhooksecret") == {"secretsmanager:GetSecretValue"}
    assert actions_on(resources, "NotifierFunctionRole", "uploadbucket") == set()
    for role in ("InferenceFunctionRole", "PresignFunctionRole", "ScoreFunctionRole", "SweepFunctionRole"):
        assert not actions_on(resources, role, "webhooksecret"), role
    for role in ("PresignFunctionRole", "ScoreFunctionRole", "SweepFunctionRole"):
        assert not actions_on(resources, role, "jobsqueue"), role


def flask_routes(create_app) -> set[tuple[str, str]]:
    settings = load({}, region="us-east-1")
    app = create_app(settings)
    return {
        (method, re.sub(r"<[^>]+>", "{}", rule.rule))
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static"
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }


def api_routes(resources, function: str) -> set[tuple[str, str]]:
    events = resources[function]["Properties"]["Events"].values()
    return {
        (e["Properties"]["Method"], re.sub(r"\{[^}]+\}", "{}", e["Properties"]["Path"]))
        for e in events
        if e["Type"] == "HttpApi"
    }


def test_the_http_api_routes_are_the_flask_apps_routes(resources):
    from services.jobs_api import create_app as presign_app
    from services.status_api import create_app as score_app

    assert api_routes(resources, "PresignFunction") == flask_routes(presign_app)
    # /healthz is answered by presign for the whole API.
    assert api_routes(resources, "ScoreFunction") == flask_routes(score_app) - {("GET", "/healthz")}


def test_the_api_functions_run_the_flask_apps_through_their_lambda_adapters(resources):
    for function in ("PresignFunction", "ScoreFunction"):
        properties = resources[function]["Properties"]
        module, _, attribute = properties["Handler"].rpartition(".")
        assert defines(module_file(module), attribute), properties["Handler"]
        assert properties["Runtime"] == "python3.12"
    # Long polls end before API Gateway's 30 s integration limit, and within the function's time.
    assert DEFAULTS.max_wait_seconds < int(resources["ScoreFunction"]["Properties"]["Timeout"]) < 30


def test_the_api_allows_only_the_web_origin_and_is_throttled(resources):
    api = resources["HttpApi"]["Properties"]
    assert api["CorsConfiguration"]["AllowOrigins"] == ["https://webdistribution.domainname.example"]
    assert "etag" in [h.lower() for h in api["CorsConfiguration"]["ExposeHeaders"]]
    assert "if-none-match" in [h.lower() for h in api["CorsConfiguration"]["AllowHeaders"]]
    throttling = api["DefaultRouteSettings"]
    assert int(throttling["ThrottlingBurstLimit"]) > 0 and int(throttling["ThrottlingRateLimit"]) > 0


def test_the_web_page_is_private_behind_cloudfront(resources, template):
    assert all(resources["WebBucket"]["Properties"]["PublicAccessBlockConfiguration"].values())
    [statement] = resources["WebBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert "webdistribution-id" in statement["Condition"]["StringEquals"]["AWS:SourceArn"]
    [origin] = resources["WebDistribution"]["Properties"]["DistributionConfig"]["Origins"]
    assert origin["OriginAccessControlId"] == "weboriginaccesscontrol-id"
    assert {"ApiUrl", "WebUrl", "WebBucketName", "WebDistributionId", "BucketName"} <= set(
        template["Outputs"]
    )


def test_the_sweep_runs_each_minute_through_its_module(resources):
    properties = resources["SweepFunction"]["Properties"]
    module, _, attribute = properties["Handler"].rpartition(".")
    assert defines(module_file(module), attribute), properties["Handler"]
    [event] = properties["Events"].values()
    assert event["Type"] == "Schedule" and event["Properties"]["Schedule"] == "rate(1 minute)"

"""The resource bootstrap is the one definition of the stack's resources, and idempotent."""

import json

from divescore import aws
from standins.bootstrap import bootstrap


def snapshot(settings):
    s3, sqs, ddb = aws.client("s3", settings), aws.client("sqs", settings), aws.client("dynamodb", settings)
    queue = sqs.get_queue_attributes(QueueUrl=aws.queue_url(settings), AttributeNames=["All"])["Attributes"]
    for volatile in ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                     "ApproximateNumberOfMessagesDelayed", "LastModifiedTimestamp"):
        queue.pop(volatile, None)
    notification = s3.get_bucket_notification_configuration(Bucket=settings.bucket)
    notification.pop("ResponseMetadata")
    return {
        "buckets": sorted(b["Name"] for b in s3.list_buckets()["Buckets"] if b["Name"] == settings.bucket),
        "cors": s3.get_bucket_cors(Bucket=settings.bucket)["CORSRules"],
        "lifecycle": s3.get_bucket_lifecycle_configuration(Bucket=settings.bucket)["Rules"],
        "notification": notification,
        "queue": queue,
        "queues": sorted(u for u in sqs.list_queues(QueueNamePrefix=settings.queue).get("QueueUrls", [])),
        "table": ddb.describe_table(TableName=settings.table)["Table"]["KeySchema"],
        "ttl": ddb.describe_time_to_live(TableName=settings.table)["TimeToLiveDescription"],
    }


def test_bootstrap_twice_gives_the_same_resources(settings):
    before = snapshot(settings)
    bootstrap(settings)
    assert snapshot(settings) == before


def test_resources_carry_the_settings(settings):
    state = snapshot(settings)
    assert state["cors"][0]["AllowedOrigins"] == list(settings.cors_origins)
    assert "ETag" in state["cors"][0]["ExposeHeaders"]
    assert int(state["queue"]["VisibilityTimeout"]) == settings.visibility_timeout_seconds
    redrive = json.loads(state["queue"]["RedrivePolicy"])
    assert redrive["maxReceiveCount"] == settings.max_receive_count
    assert redrive["deadLetterTargetArn"].endswith(":" + settings.dead_letter_queue)
    assert state["ttl"]["AttributeName"] == "expires_at"
    [rule] = state["notification"]["QueueConfigurations"]
    assert rule["Filter"]["Key"]["FilterRules"] == [{"Name": "prefix", "Value": settings.upload_prefix}]
    prefixes = {r["Filter"]["Prefix"]: r["Expiration"]["Days"] for r in state["lifecycle"]}
    assert prefixes == {settings.upload_prefix: settings.upload_retention_days,
                        settings.result_prefix: settings.result_retention_days}

"""Create every AWS resource the stack needs, idempotently: the one definition used by the
native stack and by the compose stack's LocalStack init hook (the SAM template declares the
same resources for AWS; tests check that the two agree).

    python -m standins.bootstrap
"""

from __future__ import annotations

import json
import logging
import sys

from botocore.exceptions import ClientError

from divescore import aws
from divescore.settings import Settings, load_or_exit

log = logging.getLogger("divescore.bootstrap")


def bucket_cors(settings: Settings) -> dict:
    return {
        "CORSRules": [{
            "AllowedOrigins": list(settings.cors_origins),
            "AllowedMethods": ["GET", "PUT", "POST", "HEAD"],
            "AllowedHeaders": ["*"],
            # The browser needs each part's ETag to complete a multipart upload.
            "ExposeHeaders": ["ETag"],
            "MaxAgeSeconds": 3000,
        }]
    }


def bucket_lifecycle(settings: Settings) -> dict:
    return {
        "Rules": [
            {
                "ID": "expire-uploads",
                "Filter": {"Prefix": settings.upload_prefix},
                "Status": "Enabled",
                "Expiration": {"Days": settings.upload_retention_days},
                "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
            },
            {
                "ID": "expire-results",
                "Filter": {"Prefix": settings.result_prefix},
                "Status": "Enabled",
                "Expiration": {"Days": settings.result_retention_days},
            },
        ]
    }


def queue_attributes(settings: Settings, dlq_arn: str) -> dict:
    return {
        "VisibilityTimeout": str(settings.visibility_timeout_seconds),
        "ReceiveMessageWaitTimeSeconds": "20",
        "MessageRetentionPeriod": str(4 * 24 * 3600),
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": settings.max_receive_count}),
    }


def queue_policy(queue_arn: str, bucket: str) -> str:
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": "s3.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": queue_arn,
            "Condition": {"ArnLike": {"aws:SourceArn": f"arn:aws:s3:::{bucket}"}},
        }],
    })


def _create_bucket(s3, settings: Settings) -> None:
    if settings.region == "us-east-1":
        s3.create_bucket(Bucket=settings.bucket)
    else:
        s3.create_bucket(Bucket=settings.bucket, CreateBucketConfiguration={"LocationConstraint": settings.region})
    log.info("created bucket %s", settings.bucket)


def ensure_bucket(settings: Settings) -> None:
    s3 = aws.client("s3", settings)
    try:
        s3.head_bucket(Bucket=settings.bucket)
    except ClientError:
        _create_bucket(s3, settings)
    s3.put_public_access_block(
        Bucket=settings.bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True, "IgnorePublicAcls": True,
            "BlockPublicPolicy": True, "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_cors(Bucket=settings.bucket, CORSConfiguration=bucket_cors(settings))
    s3.put_bucket_lifecycle_configuration(Bucket=settings.bucket, LifecycleConfiguration=bucket_lifecycle(settings))


def ensure_queues(settings: Settings) -> str:
    """Create the dead-letter queue and the jobs queue; returns the jobs queue's ARN."""
    sqs = aws.client("sqs", settings)
    dlq_url = sqs.create_queue(
        QueueName=settings.dead_letter_queue, Attributes={"MessageRetentionPeriod": str(14 * 24 * 3600)}
    )["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    attributes = queue_attributes(settings, dlq_arn)
    try:
        url = sqs.create_queue(QueueName=settings.queue, Attributes=attributes)["QueueUrl"]
    except ClientError as err:
        if err.response["Error"]["Code"] not in ("QueueAlreadyExists", "QueueNameExists"):
            raise
        url = aws.queue_url(settings)
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    # Applied every time, so a changed setting reaches an existing queue.
    sqs.set_queue_attributes(QueueUrl=url, Attributes={**attributes, "Policy": queue_policy(arn, settings.bucket)})
    return arn


def ensure_callbacks_queue(settings: Settings) -> None:
    """The queue of ended jobs whose webhook is due (the notifier deletes a message once the
    webhook is delivered or given up, so no dead-letter queue)."""
    aws.client("sqs", settings).create_queue(
        QueueName=settings.callbacks_queue, Attributes={"VisibilityTimeout": "60", "MessageRetentionPeriod": "86400"}
    )


def ensure_webhook_secret(settings: Settings) -> None:
    """The key webhooks are signed with, made once (``whsec_`` + 32 random bytes, base64)."""
    from divescore.webhooks import new_secret

    client = aws.client("secretsmanager", settings)
    try:
        client.describe_secret(SecretId=settings.webhook_secret)
    except ClientError as err:
        if err.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
        client.create_secret(Name=settings.webhook_secret, SecretString=new_secret())
        log.info("created the webhook secret %s", settings.webhook_secret)


def ensure_notification(settings: Settings, queue_arn: str) -> None:
    aws.client("s3", settings).put_bucket_notification_configuration(
        Bucket=settings.bucket,
        NotificationConfiguration={
            "QueueConfigurations": [{
                "Id": "uploads-to-jobs-queue",
                "QueueArn": queue_arn,
                "Events": ["s3:ObjectCreated:*"],
                "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": settings.upload_prefix}]}},
            }]
        },
    )


def ensure_table(settings: Settings) -> None:
    ddb = aws.client("dynamodb", settings)
    try:
        ddb.create_table(
            TableName=settings.table,
            AttributeDefinitions=[{"AttributeName": "job_id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "job_id", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
        ddb.get_waiter("table_exists").wait(TableName=settings.table, WaiterConfig={"Delay": 1})
        log.info("created table %s", settings.table)
    except ClientError as err:
        if err.response["Error"]["Code"] != "ResourceInUseException":
            raise
    ttl = ddb.describe_time_to_live(TableName=settings.table)["TimeToLiveDescription"]
    if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
        ddb.update_time_to_live(
            TableName=settings.table, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"}
        )


def bootstrap(settings: Settings) -> None:
    ensure_table(settings)
    ensure_bucket(settings)
    queue_arn = ensure_queues(settings)
    ensure_callbacks_queue(settings)
    ensure_webhook_secret(settings)
    ensure_notification(settings, queue_arn)
    log.info("resources ready: bucket %s, queue %s, table %s", settings.bucket, settings.queue, settings.table)


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    settings = load_or_exit()
    bootstrap(settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())

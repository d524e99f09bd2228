"""boto3 clients, built in one place.

Where requests go comes from the standard ``AWS_ENDPOINT_URL`` variables that boto3 reads
itself; only the region, the S3 addressing style and the browser-facing S3 address used for
pre-signing come from our settings.
"""

from __future__ import annotations

import functools
import threading

import boto3
from botocore.config import Config

from divescore.settings import Settings

_RETRIES = {"max_attempts": 4, "mode": "standard"}


def _config(settings: Settings, **extra) -> Config:
    return Config(
        region_name=settings.region,
        retries=_RETRIES,
        s3={"addressing_style": settings.s3_addressing_style},
        signature_version="s3v4",
        **extra,
    )


@functools.cache
def client(service: str, settings: Settings):
    """A shared client for ``service`` (clients are thread safe; sessions are not)."""
    return boto3.session.Session().client(service, config=_config(settings))


@functools.cache
def presigning_s3(settings: Settings):
    """The S3 client whose pre-signed URLs point at the address the *browser* uses."""
    endpoint = settings.public_s3_url or None
    return boto3.session.Session().client("s3", endpoint_url=endpoint, config=_config(settings))


_local = threading.local()


def table(settings: Settings):
    """The jobs table, one ``Table`` resource per thread: boto3 resources are not thread safe."""
    tables = _local.__dict__.setdefault("tables", {})
    if settings not in tables:
        tables[settings] = boto3.session.Session().resource("dynamodb", config=_config(settings)).Table(settings.table)
    return tables[settings]


def queue_url(settings: Settings, name: str | None = None) -> str:
    return client("sqs", settings).get_queue_url(QueueName=name or settings.queue)["QueueUrl"]

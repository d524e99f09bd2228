"""LocalStack provider `dynamodb:moto`: every DynamoDB operation answered by moto, in process.

LocalStack 4.14's own DynamoDB providers ("default" and "v2") proxy to DynamoDB Local, a Java
program downloaded on first use. This one registers the DynamoDB API with an empty provider and
LocalStack's MotoFallbackDispatcher, the same arrangement LocalStack uses for its moto-backed
services, so nothing is downloaded. Select it with PROVIDER_OVERRIDE_DYNAMODB=moto.

moto checks a write's condition and applies it in separate steps while LocalStack serves
requests on several threads, so writes are serialised with one lock (as DynamoDB's conditional
writes are atomic; the same fix as divescore.emulator.serialize_dynamodb_writes for moto server).
"""

import functools
import threading

from localstack.aws.api.dynamodb import DynamodbApi
from localstack.services.plugins import Service, aws_provider

_WRITES = ("put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item")


def _serialize_writes() -> None:
    from moto.dynamodb.models import DynamoDBBackend

    if getattr(DynamoDBBackend, "_divescore_serialized", False):
        return
    lock = threading.RLock()
    for name in _WRITES:
        original = getattr(DynamoDBBackend, name)

        @functools.wraps(original)
        def locked(self, *args, _original=original, **kwargs):
            with lock:
                return _original(self, *args, **kwargs)

        setattr(DynamoDBBackend, name, locked)
    DynamoDBBackend._divescore_serialized = True


class MotoDynamoDBProvider(DynamodbApi):
    """No operation of its own: the dispatch table sends each one to moto."""


@aws_provider(api="dynamodb", name="moto")
def dynamodb_moto():
    from localstack.services.moto import MotoFallbackDispatcher

    _serialize_writes()
    return Service.for_provider(MotoDynamoDBProvider(), dispatch_table_factory=MotoFallbackDispatcher)

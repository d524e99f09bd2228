"""Reading S3 notifications, direct or inside SQS messages."""

import json

from divescore.events import uploads_in_s3_event, uploads_in_sqs_body
from tests.support.helpers import TESTS

EVENTS = TESTS / "events"


def load(name):
    return json.loads((EVENTS / name).read_text())


def test_keys_are_unquote_plus_decoded():
    [upload] = uploads_in_s3_event(load("s3_put.json"))
    assert upload.key == "uploads/0123456789abcdef0123456789abcdef/video"
    assert upload.bucket == "divescore-uploads"
    assert upload.size == 1024
    assert upload.event_name == "ObjectCreated:Put"


def test_a_key_with_spaces_and_plus_signs_is_decoded_like_s3_encodes_it():
    event = load("s3_put.json")
    event["Records"][0]["s3"]["object"]["key"] = "uploads/a+b%2Bc%20d/video"
    assert uploads_in_s3_event(event)[0].key == "uploads/a b+c d/video"


def test_every_object_created_kind_counts_and_nothing_else():
    event = load("s3_put.json")
    kinds = ["ObjectCreated:Put", "ObjectCreated:Post", "ObjectCreated:CompleteMultipartUpload",
             "ObjectCreated:Copy", "ObjectRemoved:Delete"]
    event["Records"] = [{**event["Records"][0], "eventName": kind} for kind in kinds]
    # a copy is how "score from here" gives a new job its video (services.jobs_api.uploads.rescore)
    assert [u.event_name for u in uploads_in_s3_event(event)] == kinds[:4]


def test_a_test_event_and_garbage_bodies_have_no_uploads():
    assert uploads_in_sqs_body(json.dumps(load("s3_test_event.json"))) == []
    for body in ("", "not json", "[]", "42", '{"Records": []}'):
        assert uploads_in_sqs_body(body) == []


def test_an_sqs_body_carrying_an_s3_event():
    [upload] = uploads_in_sqs_body(json.dumps(load("s3_put.json")))
    assert upload.key.startswith("uploads/")

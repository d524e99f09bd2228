"""What one job costs on Lambda (bench/prices.py) and which requests count as the job's
(bench/job_requests.py, from the lines devstack/emulator.py logs)."""

from __future__ import annotations

from collections import Counter

import pytest

from bench import job_requests, prices
from devstack.emulator import request_line

KEYS = {"AKIAFUNCTION": "function", "AKIADISPATCH": "dispatcher", "AKIASWEEP": "sweep"}


def signed(service: str, key: str = "AKIAFUNCTION") -> str:
    return f"AWS4-HMAC-SHA256 Credential={key}/20261206/us-east-1/{service}/aws4_request, SignedHeaders=host"


def test_the_request_line_names_the_service_action_and_key():
    assert request_line({"HTTP_X_AMZ_TARGET": "DynamoDB_20120810.UpdateItem", "HTTP_AUTHORIZATION": signed("dynamodb"),
                         "REQUEST_METHOD": "POST"}) == "aws-request dynamodb UpdateItem AKIAFUNCTION"
    assert request_line({"HTTP_X_AMZ_TARGET": "AmazonSQS.DeleteMessage", "HTTP_AUTHORIZATION": signed("sqs"),
                         "REQUEST_METHOD": "POST"}) == "aws-request sqs DeleteMessage AKIAFUNCTION"
    s3_get = {"HTTP_AUTHORIZATION": signed("s3"), "REQUEST_METHOD": "GET"}
    assert request_line(s3_get) == "aws-request s3 GET AKIAFUNCTION"
    # a query-protocol call (IAM here) is named by its signature's service, not taken for S3
    assert request_line({"HTTP_AUTHORIZATION": signed("iam"), "REQUEST_METHOD": "POST"}).startswith("aws-request iam ")
    presigned_get = {"QUERY_STRING": "X-Amz-Credential=AKIAFUNCTION%2F20261206%2Fus-east-1%2Fs3",
                     "REQUEST_METHOD": "GET"}
    assert request_line(presigned_get) == "aws-request s3 GET AKIAFUNCTION"
    assert request_line({"REQUEST_METHOD": "POST"}) == "aws-request s3 POST -"  # a pre-signed POST: key in the form


def test_a_job_counts_its_own_requests_one_delivery_and_the_notification():
    lines = [
        "12:00:00 emulator | aws-request s3 POST -",
        "12:00:00 emulator | aws-request sqs ReceiveMessage AKIADISPATCH",
        "12:00:01 emulator | aws-request sqs ReceiveMessage AKIADISPATCH",
        "12:00:01 emulator | aws-request dynamodb UpdateItem AKIAFUNCTION",
        "12:00:01 emulator | aws-request s3 GET AKIAFUNCTION",
        "12:00:01 emulator | aws-request s3 GET AKIAFUNCTION",
        "12:00:02 emulator | aws-request sqs DeleteMessage AKIADISPATCH",
        "12:00:02 emulator | aws-request dynamodb Scan AKIASWEEP",
        "12:00:02 function-0 | not a request line",
    ]
    counted = job_requests.count(lines, KEYS)
    assert counted["sweep", "dynamodb", "Scan"] == 1 and counted["-", "s3", "POST"] == 1
    job = job_requests.per_job(counted)
    assert job == Counter({("s3", "POST"): 1, ("s3", "GET"): 2, ("dynamodb", "UpdateItem"): 1,
                           ("sqs", "DeleteMessage"): 1, ("sqs", "SendMessage"): 1, ("sqs", "ReceiveMessage"): 1})
    assert job_requests.by_service(job) == Counter({"s3": 3, "sqs": 3, "dynamodb": 1})


def test_lambda_bills_gb_seconds_by_the_millisecond_plus_the_request():
    assert prices.cpu_share(1769) == 1.0
    # 10 s at 2048 MB = 20 GB-s
    assert prices.lambda_cost(10.0, 2048) == pytest.approx(20 * 0.0000166667 + 0.2e-6)
    assert prices.lambda_cost(10.0, 2048, "arm64") == pytest.approx(20 * 0.0000133334 + 0.2e-6)
    assert prices.lambda_cost(0.0101, 1024) == pytest.approx(0.011 * 0.0000166667 + 0.2e-6)  # 10.1 ms bills 11 ms


def test_requests_are_priced_by_tier_and_by_the_item_size():
    requests = Counter({("s3", "POST"): 2, ("s3", "GET"): 10, ("s3", "DELETE"): 1, ("sqs", "SendMessage"): 3,
                        ("dynamodb", "UpdateItem"): 4, ("dynamodb", "GetItem"): 5})
    cost = prices.requests_cost(requests, item_bytes=1500)  # two write units, one read unit each
    assert cost["s3"] == pytest.approx(2 * 0.005 / 1000 + 10 * 0.0004 / 1000)
    assert cost["sqs"] == pytest.approx(3 * 0.40 / 1e6)
    assert cost["dynamodb"] == pytest.approx(4 * 2 * 0.625 / 1e6 + 5 * 1 * 0.125 / 1e6)
    assert prices.dynamodb_units("TransactWriteItems", 100) == 2


def test_the_readme_shows_rows_with_a_target_and_headlines_only():
    from bench import report

    rows = [report.Spec("a", "with a target", "s", report.at_most(1.0)).of(0.5),
            report.Spec("b", "a headline", "USD", headline=True).of(0.15),
            report.Spec("c", "a supporting figure", "s").of(2.0)]
    results = {"mode": "full", "started_at": "2026-12-06T12:00:00+00:00",
               "machine": {"cpu": "x", "cores": 2, "torch_cpu_capability": "AVX2", "bf16": False, "memory_gib": 1,
                           "torch": "t"},
               "metrics": [m.as_dict() for m in rows]}
    section = report.readme_section(results)
    assert "| with a target |" in section and "| a headline | 0.150 | USD |  | – |" in section
    assert "a supporting figure" not in section

"""What AWS charges (us-east-1, on demand, free tiers left out) and what one job costs.

Checked on 2026-12-06. aws.amazon.com's pricing pages could not be read from here, so the
figures are as pages quoting them give them: Lambda from a project's cost notes of May 2026
(git.mcrn.ar, lambda_local_runner, docs/lambdas-md/lambda-13-cost.md) and cloudchipr.com;
S3 from c3x.dev and cloudcostkit.com (February 2026); SQS from factualminds.com (June 2026) and
cloudburn.io (March 2026); DynamoDB on-demand, after its November 2024 price cut, from
airbyte.com (July 2025). Check them against aws.amazon.com/lambda/pricing (and s3, sqs,
dynamodb) before relying on a total.
"""

from __future__ import annotations

import math
from collections import Counter

PRICES_CHECKED = "2026-12-06"
LAMBDA_GB_SECOND = {"x86_64": 0.0000166667, "arm64": 0.0000133334}
LAMBDA_REQUEST = 0.20 / 1e6
S3_TIER1_REQUEST = 0.005 / 1000  # PUT, COPY, POST, LIST
S3_TIER2_REQUEST = 0.0004 / 1000  # GET, HEAD and the rest; DELETE is free
SQS_REQUEST = 0.40 / 1e6  # a standard queue's request of up to 64 KB
DYNAMODB_WRITE_UNIT = 0.625 / 1e6  # one write of up to 1 KB
DYNAMODB_READ_UNIT = 0.125 / 1e6  # one strongly consistent read of up to 4 KB

# Lambda gives a function one vCPU's worth of time at 1,769 MB, in proportion below and above.
VCPU_MB = 1769
S3_TIER1 = {"PUT", "POST"}
S3_FREE = {"DELETE"}
DYNAMODB_WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem"}


def cpu_share(memory_mb: int) -> float:
    return memory_mb / VCPU_MB


def lambda_cost(seconds: float, memory_mb: int, arch: str = "x86_64") -> float:
    """One invocation: its duration (billed by the millisecond, rounded up) in GB-seconds, plus
    the request."""
    billed_s = math.ceil(seconds * 1000) / 1000
    return billed_s * memory_mb / 1024 * LAMBDA_GB_SECOND[arch] + LAMBDA_REQUEST


def dynamodb_units(action: str, item_bytes: int) -> int:
    """Request units one request of ``action`` on an item of ``item_bytes`` takes."""
    if action in DYNAMODB_WRITES:
        return max(1, math.ceil(item_bytes / 1024))
    if action == "TransactWriteItems":
        return 2 * max(1, math.ceil(item_bytes / 1024))
    return max(1, math.ceil(item_bytes / 4096))


def requests_cost(requests: Counter, item_bytes: int) -> dict[str, float]:
    """Dollars by service for ``requests`` ((service, action) → count); DynamoDB's with every
    request on an item of ``item_bytes`` (an upper bound: the job's record grows as it goes).
    Services without a price here (none a job uses) cost 0."""
    cost = {"s3": 0.0, "sqs": 0.0, "dynamodb": 0.0}
    for (service, action), n in requests.items():
        if service == "s3" and action not in S3_FREE:
            cost["s3"] += n * (S3_TIER1_REQUEST if action in S3_TIER1 else S3_TIER2_REQUEST)
        elif service == "sqs":
            cost["sqs"] += n * SQS_REQUEST
        elif service == "dynamodb":
            write = action in DYNAMODB_WRITES or action == "TransactWriteItems"
            cost["dynamodb"] += n * dynamodb_units(action, item_bytes) * (
                DYNAMODB_WRITE_UNIT if write else DYNAMODB_READ_UNIT)
    return cost

"""The AWS requests one job makes, counted from the native emulator's request log
(``devstack.emulator.request_line``: one ``aws-request SERVICE ACTION KEY_ID`` line each).

Only what a job causes is counted. Polls that run whether or not jobs come are left out: the
sweep's, the notifier's and the receives that found nothing (on AWS, Lambda's pollers); a job
is delivered by one receive. S3 puts the upload's notification on the queue itself, a
request the emulator does not see: it is added.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from devstack.emulator import REQUEST_PREFIX

LINE = re.compile(rf"{REQUEST_PREFIX} (\S+) (\S+) (\S+)")
POLLERS = {"sweep", "notifier"}
UNSEEN = Counter({("sqs", "SendMessage"): 1, ("sqs", "ReceiveMessage"): 1})  # S3's notification; its delivery


def count(lines: Iterable[str], principals: dict[str, str]) -> Counter:
    """(principal, service, action) → requests in ``lines``; ``principals`` maps access key ids
    to names (an unknown key, or none for a pre-signed POST, is ``-``)."""
    found = Counter()
    for line in lines:
        match = LINE.search(line)
        if match:
            service, action, key_id = match.groups()
            found[principals.get(key_id, "-"), service, action] += 1
    return found


def per_job(counted: Counter) -> Counter:
    """(service, action) → requests one job causes, from :func:`count` over its time."""
    job = Counter()
    for (principal, service, action), n in counted.items():
        if principal in POLLERS or (service, action) == ("sqs", "ReceiveMessage"):
            continue
        job[service, action] += n
    return job + UNSEEN


def by_service(requests: Counter) -> Counter:
    total = Counter()
    for (service, _), n in requests.items():
        total[service] += n
    return total

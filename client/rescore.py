"""``divescore rescore JOB_ID [--entry SECONDS] [--wait]``: score a job's video again, over the
window ending at ``--entry`` (or, without it, at the entry found again), as a new job
(``POST /v1/jobs/{id}/rescore``: nothing is uploaded again); with ``--wait``, follow the new job
as ``divescore status --wait`` does.

Exit status: 0 when the new job was created (with ``--wait``: and has not failed), 1 when it
failed or the API could not be reached, 2 for an unknown job id or a rescore the API refused
(an entry out of range, a job never scored, its video no longer kept).
"""

from __future__ import annotations

import argparse
import json
import sys

from client.api import ApiError
from client.options import add_api_arguments, api_client
from client.report import describe_job, print_api_error
from divescore.settings import SettingsError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job_id", metavar="JOB_ID", help="the job whose video to score again")
    parser.add_argument("--entry", type=float, metavar="SECONDS",
                        help="when the diver enters the water: score the window ending there "
                             "(default: find the entry again)")
    add_api_arguments(parser)
    parser.add_argument("--wait", action="store_true", help="follow the new job until it succeeds or fails")
    parser.add_argument("--timeout", type=float, default=900.0, metavar="SECONDS",
                        help="with --wait, how long to follow the new job (default 900)")


def run(args: argparse.Namespace) -> int:
    try:
        api = api_client(args)
    except SettingsError as err:
        print(f"divescore rescore: {err}", file=sys.stderr)
        return 2
    job_id = args.job_id
    try:
        job = api.rescore_job(job_id, args.entry)
        job_id = job["job_id"]
        if args.wait:
            job = api.follow(job_id, timeout=args.timeout)
    except ApiError as err:
        print_api_error("rescore", err, job_id, args.json)
        return 2 if 400 <= err.status < 500 else 1
    if args.json:
        print(json.dumps(job))
    elif args.wait:
        print(describe_job(job))
    else:
        print(f"{args.job_id}: scoring again as job {job_id} ({job.get('status')}); follow it with "
              f"`divescore status {job_id} --wait`")
    return 1 if job.get("status") == "failed" else 0

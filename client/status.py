"""``divescore status JOB_ID``: show one job.

Exit status: 0 when the job exists and has not failed, 1 when it failed or the API could not
be reached, 2 for an unknown job id.
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
    parser.add_argument("job_id", metavar="JOB_ID", help="the id `divescore submit` printed")
    add_api_arguments(parser)
    parser.add_argument("--wait", action="store_true", help="follow the job until it succeeds or fails")


def run(args: argparse.Namespace) -> int:
    try:
        api = api_client(args)
    except SettingsError as err:
        print(f"divescore status: {err}", file=sys.stderr)
        return 2
    try:
        job = api.follow(args.job_id, timeout=900) if args.wait else api.get_job(args.job_id).job
    except ApiError as err:
        print_api_error("status", err, args.job_id, args.json)
        return 2 if err.status == 404 else 1
    print(json.dumps(job) if args.json else describe_job(job))
    return 1 if job.get("status") == "failed" else 0

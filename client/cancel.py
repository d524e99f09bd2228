"""``divescore cancel JOB_ID``: stop a job (its upload, its place in the queue or its scoring).

Exit status: 0 when the job is canceled (also when it already was), 1 when it had already
succeeded or failed or the API could not be reached, 2 for an unknown job id.
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


def run(args: argparse.Namespace) -> int:
    try:
        api = api_client(args)
    except SettingsError as err:
        print(f"divescore cancel: {err}", file=sys.stderr)
        return 2
    try:
        job = api.cancel_job(args.job_id)
    except ApiError as err:
        print_api_error("cancel", err, args.job_id, args.json)
        return 2 if err.status == 404 else 1
    print(json.dumps(job) if args.json else describe_job(job))
    return 0

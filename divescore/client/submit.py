"""``divescore submit VIDEO [VIDEO...]``: create a job per video, upload it straight to S3
with a progress bar, follow the jobs and print their scores (or errors).

Exit status: 0 when every job succeeded, 1 when a job failed (or the upload or the API broke
down), 2 for a usage or input error (a missing file, a video the API refused). With ``--json``
stdout carries one JSON object per video and nothing else; bars and messages go to stderr.
"""

from __future__ import annotations

import argparse
import json
import mimetypes
import os
import sys
import threading
from pathlib import Path

from tqdm import tqdm

from divescore.client.api import ApiClient, ApiError
from divescore.client.options import add_api_arguments, api_client
from divescore.client.report import describe_job
from divescore.client.upload import PARALLEL_PARTS, UploadCancelled, UploadFailed, upload
from divescore.settings import SettingsError

OK, FAILED, USAGE = 0, 1, 2
INTERRUPTED = 130

# Checked first: the platform's MIME table may lack some of these or name them differently.
VIDEO_TYPES = {
    ".mp4": "video/mp4", ".m4v": "video/mp4", ".mov": "video/quicktime", ".webm": "video/webm",
    ".mkv": "video/x-matroska", ".avi": "video/x-msvideo", ".mpg": "video/mpeg", ".mpeg": "video/mpeg",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("videos", nargs="+", metavar="VIDEO", help="video files of dives")
    add_api_arguments(parser)
    parser.add_argument("--no-wait", action="store_true",
                        help="stop once the videos are uploaded and print their job ids")
    parser.add_argument("--parallel", type=int, default=PARALLEL_PARTS, metavar="N",
                        help=f"multipart parts uploaded at once (default {PARALLEL_PARTS})")
    parser.add_argument("--timeout", type=float, default=900.0, metavar="SECONDS",
                        help="how long to follow each job before giving up (default 900)")


def content_type_of(path: str | Path) -> str:
    """The content type declared to the API; the API decides whether it accepts it."""
    suffix = Path(path).suffix.lower()
    return VIDEO_TYPES.get(suffix) or mimetypes.guess_type(str(path))[0] or "application/octet-stream"


def run(args: argparse.Namespace) -> int:
    out = Output(args.json)
    missing = [v for v in args.videos if not os.path.isfile(v)]
    for video in missing:
        out.problem(video, "no_such_file", "no such file")
    if missing:
        return USAGE
    try:
        api = api_client(args)
    except SettingsError as err:
        print(f"divescore submit: {err}", file=sys.stderr)
        return USAGE

    code, submitted = OK, []
    try:
        for video in args.videos:
            try:
                submitted.append((video, submit_video(api, video, parallel=args.parallel, quiet=args.json)))
            except ApiError as err:
                refused = 400 <= err.status < 500
                out.problem(video, err.code, err.message, status="refused" if refused else "error")
                code = max(code, USAGE if refused else FAILED)
            except UploadFailed as err:
                out.problem(video, "upload_failed", str(err), status="error")
                code = max(code, FAILED)
        for video, job in submitted:
            if args.no_wait:
                out.queued(video, _current(api, job))
                continue
            try:
                final = follow_job(api, video, job["job_id"], timeout=args.timeout, quiet=args.json)
            except ApiError as err:
                out.problem(video, err.code, err.message, status="error", job_id=job["job_id"])
                code = max(code, FAILED)
                continue
            out.job(video, final)
            if final.get("status") != "succeeded":
                code = max(code, FAILED)
    except (KeyboardInterrupt, UploadCancelled):
        print("divescore submit: cancelled", file=sys.stderr)
        for video, job in submitted:
            print(f"  {video}: job {job['job_id']} (divescore status {job['job_id']})", file=sys.stderr)
        return INTERRUPTED
    return code


def submit_video(api: ApiClient, video: str, *, parallel: int, quiet: bool) -> dict:
    """Create the job and upload the file; returns the job as ``POST /v1/jobs`` answered."""
    path = Path(video)
    size = path.stat().st_size
    content_type = content_type_of(path)
    job = api.create_job(filename=path.name, content_type=content_type, size=size)
    cancel = threading.Event()
    with tqdm(total=size, desc=path.name, unit="B", unit_scale=True, unit_divisor=1000, leave=False,
              dynamic_ncols=True, disable=True if quiet else None, file=sys.stderr) as bar:
        try:
            upload(api, job, path, content_type=content_type, progress=bar.update, parallel=parallel, cancel=cancel)
        except KeyboardInterrupt:
            cancel.set()
            raise
    return job


def follow_job(api: ApiClient, video: str, job_id: str, *, timeout: float, quiet: bool) -> dict:
    """Long-poll the job to its end, showing its stage and progress on stderr."""
    name = Path(video).name
    with tqdm(total=100, desc=f"{name} queued", leave=False, dynamic_ncols=True, bar_format="{l_bar}{bar}|",
              disable=True if quiet else None, file=sys.stderr) as bar:

        def show(job: dict) -> None:
            bar.set_description(f"{name} {job.get('stage') or job.get('status')}", refresh=False)
            bar.n = round(100 * float(job.get("progress") or 0))
            bar.refresh()

        return api.follow(job_id, on_change=show, timeout=timeout)


def _current(api: ApiClient, job: dict) -> dict:
    try:
        return api.get_job(job["job_id"]).job or job
    except ApiError:
        return job


class Output:
    """What the command prints: text for people, or one JSON object per video."""

    def __init__(self, as_json: bool):
        self.as_json = as_json

    def job(self, video: str, job: dict) -> None:
        if self.as_json:
            self._json({"file": video, **job})
        else:
            print(describe_job(job, label=video), flush=True)

    def queued(self, video: str, job: dict) -> None:
        if self.as_json:
            self._json({"file": video, "job_id": job["job_id"], "status": job.get("status")})
        else:
            print(f"{video}: uploaded as job {job['job_id']} ({job.get('status')}); "
                  f"see it with `divescore status {job['job_id']}`", flush=True)

    def problem(self, video: str, code: str, message: str, *, status: str = "refused",
                job_id: str | None = None) -> None:
        if self.as_json:
            self._json({"file": video, "job_id": job_id, "status": status,
                        "error": {"code": code, "message": message}})
        else:
            print(f"divescore submit: {video}: {message}", file=sys.stderr, flush=True)

    @staticmethod
    def _json(obj: dict) -> None:
        print(json.dumps(obj), flush=True)

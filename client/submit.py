"""``divescore submit VIDEO [VIDEO...]``: create a job per video, upload them straight to S3
(a few at a time), follow the jobs together with one progress bar each, and print their
scores (or errors); with several videos, the table of them ranked by score (``--csv FILE``
writes it as CSV).

Exit status: 0 when every job succeeded, 1 when a job failed (or the upload or the API broke
down), 2 for a usage or input error (a missing file, a video the API refused). With ``--json``
stdout carries one JSON object per video, in the order given, and nothing else; bars and
messages go to stderr.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import mimetypes
import os
import sys
import threading
from pathlib import Path

from tqdm import tqdm

from client import ranking
from client.api import ApiClient, ApiError
from client.options import add_api_arguments, api_client
from client.report import describe_job, explain
from client.upload import PARALLEL_PARTS, UploadCancelled, UploadFailed, upload
from divescore.settings import SettingsError

OK, FAILED, USAGE = 0, 1, 2
INTERRUPTED = 130
PARALLEL_UPLOADS = 2

# Checked first: the platform's MIME table may lack some of these or name them differently.
VIDEO_TYPES = {
    ".mp4": "video/mp4", ".m4v": "video/mp4", ".mov": "video/quicktime", ".webm": "video/webm",
    ".mkv": "video/x-matroska", ".avi": "video/x-msvideo", ".mpg": "video/mpeg", ".mpeg": "video/mpeg",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("videos", nargs="+", metavar="VIDEO", help="video files of dives")
    parser.add_argument("--entry", type=float, metavar="SECONDS",
                        help="when the diver enters the water, in seconds from the video's start: score the "
                             "window ending there (default: the function finds it)")
    add_api_arguments(parser)
    parser.add_argument("--no-wait", action="store_true",
                        help="stop once the videos are uploaded and print their job ids")
    parser.add_argument("--parallel", type=int, default=PARALLEL_PARTS, metavar="N",
                        help=f"multipart parts of one video uploaded at once (default {PARALLEL_PARTS})")
    parser.add_argument("--uploads", type=int, default=PARALLEL_UPLOADS, metavar="N",
                        help=f"videos uploaded at once (default {PARALLEL_UPLOADS}); every job is followed")
    parser.add_argument("--csv", metavar="FILE",
                        help="write the videos ranked by score to FILE as CSV (" + ",".join(ranking.CSV_COLUMNS) + ")")
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
    if args.uploads < 1 or args.parallel < 1:
        print("divescore submit: --uploads and --parallel must be at least 1", file=sys.stderr)
        return USAGE
    try:
        api = api_client(args)
    except SettingsError as err:
        print(f"divescore submit: {err}", file=sys.stderr)
        return USAGE

    batch = Batch(api, args)
    try:
        outcomes = batch.run()
    except KeyboardInterrupt:
        batch.cancel.set()
        print("divescore submit: cancelled", file=sys.stderr)
        for video, job_id in batch.created():
            print(f"  {video}: job {job_id} (divescore status {job_id})", file=sys.stderr)
        return INTERRUPTED

    for outcome in outcomes:
        out.outcome(outcome)
    if not args.no_wait:
        rows = ranking.rank((o.video, o.job) for o in outcomes)
        if len(outcomes) > 1 and not args.json:
            print("\n" + ranking.format_table(rows), flush=True)
        if args.csv:
            with open(args.csv, "w", newline="", encoding="utf-8") as file:
                ranking.write_csv(rows, file)
    return max(o.code for o in outcomes)


@dataclasses.dataclass
class Outcome:
    """What became of one video: the job as the API last showed it (or, for a video that got
    no job or lost it, ``{"status", "error"}``), the exit status it calls for, and how to print it."""

    video: str
    job: dict
    code: int
    kind: str  # "job", "queued" (--no-wait) or "problem"


class Batch:
    """Every video at once: each in its own thread with its own bar, at most ``--uploads``
    uploading at a time; each job followed as soon as its upload is done."""

    def __init__(self, api: ApiClient, args: argparse.Namespace):
        self.api, self.args = api, args
        self.cancel = threading.Event()
        self.slots = threading.BoundedSemaphore(args.uploads)
        self.jobs: dict[str, str] = {}  # video → job id, as soon as the job exists
        self.lock = threading.Lock()

    def created(self) -> list[tuple[str, str]]:
        with self.lock:
            return [(v, self.jobs[v]) for v in self.args.videos if v in self.jobs]

    def run(self) -> list[Outcome]:
        outcomes: list[Outcome | None] = [None] * len(self.args.videos)

        def work(index: int, video: str) -> None:
            outcomes[index] = self.one(video, position=index)

        # Daemon threads: Ctrl-C returns at once, even while a long poll is held.
        threads = [threading.Thread(target=work, args=(i, v), daemon=True, name=f"video-{i}")
                   for i, v in enumerate(self.args.videos)]
        for thread in threads:
            thread.start()
        for thread in threads:
            while thread.is_alive():
                thread.join(0.2)  # short steps keep Ctrl-C responsive in the main thread
        return [o for o in outcomes if o is not None]

    def one(self, video: str, *, position: int) -> Outcome:
        args, path = self.args, Path(video)
        with tqdm(total=path.stat().st_size, desc=path.name, unit="B", unit_scale=True, unit_divisor=1000,
                  leave=False, dynamic_ncols=True, position=position, disable=True if args.json else None,
                  file=sys.stderr) as bar:
            try:
                with self.slots:
                    job = self.submit(video, bar)
            except ApiError as err:
                refused = 400 <= err.status < 500
                return self.problem(video, err.code, explain(err), "refused" if refused else "error",
                                    USAGE if refused else FAILED)
            except UploadFailed as err:
                return self.problem(video, "upload_failed", str(err), "error", FAILED)
            except UploadCancelled:
                return self.problem(video, "cancelled", "cancelled", "error", INTERRUPTED)
            if args.no_wait:
                return Outcome(video, _current(self.api, job), OK, "queued")
            try:
                final = follow_job(self.api, path.name, job["job_id"], bar=bar, timeout=args.timeout)
            except ApiError as err:
                return self.problem(video, err.code, explain(err, job["job_id"]), "error", FAILED,
                                    job_id=job["job_id"])
            return Outcome(video, final, OK if final.get("status") == "succeeded" else FAILED, "job")

    def submit(self, video: str, bar: tqdm) -> dict:
        """Create the job and upload the file; returns the job as ``POST /v1/jobs`` answered."""
        path = Path(video)
        content_type = content_type_of(path)
        job = self.api.create_job(filename=path.name, content_type=content_type, size=path.stat().st_size,
                                  entry_s=self.args.entry)
        with self.lock:
            self.jobs[video] = job["job_id"]
        upload(self.api, job, path, content_type=content_type, progress=bar.update, parallel=self.args.parallel,
               cancel=self.cancel)
        return job

    @staticmethod
    def problem(video: str, code: str, message: str, status: str, exit_code: int, *,
                job_id: str | None = None) -> Outcome:
        return Outcome(video, {"job_id": job_id, "status": status, "error": {"code": code, "message": message}},
                       exit_code, "problem")


def follow_job(api: ApiClient, name: str, job_id: str, *, bar: tqdm, timeout: float) -> dict:
    """Long-poll the job to its end, its stage and progress on ``bar`` (now in percent)."""
    bar.reset(total=100)
    bar.unit, bar.unit_scale, bar.bar_format = "%", False, "{l_bar}{bar}|"
    bar.set_description(f"{name} queued", refresh=True)

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

    def outcome(self, outcome: Outcome) -> None:
        if outcome.kind == "job":
            self.job(outcome.video, outcome.job)
        elif outcome.kind == "queued":
            self.queued(outcome.video, outcome.job)
        else:
            error = outcome.job["error"]
            self.problem(outcome.video, error["code"], error["message"], status=outcome.job["status"],
                         job_id=outcome.job.get("job_id"))

    def job(self, video: str, job: dict) -> None:
        if self.as_json:
            self._json({"file": video, **job})
        else:
            print(describe_job(job, label=video), flush=True)

    def queued(self, video: str, job: dict) -> None:
        if self.as_json:
            self._json({"file": video, "job_id": job["job_id"], "status": job.get("status"),
                        **({"entry_s": job["entry_s"]} if job.get("entry_s") is not None else {})})
        else:
            print(f"{video}: uploaded as job {job['job_id']}; follow it with "
                  f"`divescore status {job['job_id']} --wait`", flush=True)

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

"""How a job reads in a terminal, and the API's refusals in the command line's terms."""

from __future__ import annotations

import json
import sys

from client.api import ApiError
from client.window_reason import NO_DIVE_FOUND, NOTES, TOO_SHORT, no_dive_found

UNTRAINED_NOTE = "These weights are untrained: the score is not a real judgement of the dive."


def describe_job(job: dict, label: str | None = None) -> str:
    """A few lines for a person: the score (2 decimals) or the error, the model, the job id."""
    label = label or job.get("filename") or job.get("job_id", "job")
    status = job.get("status", "unknown")
    lines = []
    if status == "succeeded":
        not_a_dive = f" ({NOTES[NO_DIVE_FOUND]}: not a dive's score)" if no_dive_found(job) else ""
        lines.append(f"{label}: score {job['score']:.2f}{not_a_dive}")
        clips = job.get("clip_scores") or []
        if clips:
            lines.append("  per clip: " + ", ".join(f"{s:.2f}" for s in clips))
    elif status == "failed":
        error = job.get("error") or {}
        lines.append(f"{label}: failed: {error.get('message', 'no reason given')} [{error.get('code', 'error')}]")
    elif status == "canceled":
        lines.append(f"{label}: canceled")
    elif status == "queued" and job.get("retry"):
        retry = job["retry"]
        lines.append(f"{label}: queued: {retry['error']['message']} Attempt {retry['attempt']} of {retry['of']} "
                     f"at {retry['at']}.")
    else:
        stage = job.get("stage")
        progress = job.get("progress")
        detail = f" ({stage}, {progress:.0%})" if stage and progress is not None else ""
        lines.append(f"{label}: {status}{detail}")
    window = job.get("window")
    if window:
        lines.append(f"  window: {describe_window(window)}")
    elif job.get("entry_s") is not None:
        lines.append(f"  entry: {job['entry_s']:g} s (the window ends there)")
    if job.get("entries"):
        rescore = f"divescore rescore {job.get('job_id')} --entry SECONDS"
        lines.append(f"  entries found: {describe_entries(job['entries'])} (score another: `{rescore}`)")
    model = job.get("model")
    if model:
        lines.append(f"  model: {model.get('name', '?')} (weights: {model.get('weights', '?')})")
        if model.get("calibrated") is False:
            lines.append(f"  note: {UNTRAINED_NOTE}")
    lines.append(f"  job: {job.get('job_id', '?')}")
    return "\n".join(lines)


WHOLE_BECAUSE = {
    NO_DIVE_FOUND: NOTES[NO_DIVE_FOUND],
    TOO_SHORT: "the video is no longer than the 4.08 s window, about one dive; no entry was looked for",
}


def describe_window(window: dict) -> str:
    """The stretch of the video that was scored, in one line."""
    how = window.get("how", "?")
    if how == "whole":
        because = WHOLE_BECAUSE.get(window.get("reason"), "no entry given or found with confidence")
        return f"whole video (0-{window.get('video_s', 0):.2f} s): {because}"
    found = f", confidence {window['confidence']:.2f}" if window.get("confidence") is not None else ""
    text = (f"{how}{found}: {window['start_s']:.2f}-{window['end_s']:.2f} s of {window.get('video_s', 0):.2f} s, "
            f"frames {window['start_frame']}-{window['end_frame']}")
    return text + (f" (shifted: {window['shifted']})" if window.get("shifted") else "")


def describe_entries(entries: list[dict]) -> str:
    """Every entry a job's search listed: ``13.04 s (0.82), 41.20 s (0.51)``."""
    return ", ".join(f"{e['entry_s']:.2f} s ({e['confidence']:.2f})" for e in entries)


def explain(err: ApiError, job_id: str | None = None) -> str:
    """What went wrong, in the command line's terms, with the next step to take."""
    if err.status == 404 and job_id:
        return f"no job {job_id} here: check the id, or submit the video again with `divescore submit`."
    if err.code == "unreachable":
        return (f"{err.message} Is the stack running (`make run`)? Or point at another with "
                f"`--api-url URL`.")
    return err.message


def error_dict(err: ApiError, job_id: str | None = None) -> dict:
    return {"code": err.code, "message": explain(err, job_id)}


def print_api_error(command: str, err: ApiError, job_id: str, as_json: bool) -> None:
    """An API error as a command shows it: one JSON object on stdout with ``--json``, else a
    line on stderr naming the command."""
    if as_json:
        print(json.dumps({"job_id": job_id, "status": "error", "error": error_dict(err, job_id)}))
    else:
        print(f"divescore {command}: {explain(err, job_id)}", file=sys.stderr)

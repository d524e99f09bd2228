"""How a job reads in a terminal."""

from __future__ import annotations

UNTRAINED_NOTE = "These weights are untrained: the score is not a real judgement of the dive."


def describe_job(job: dict, label: str | None = None) -> str:
    """A few lines for a person: the score (2 decimals) or the error, the model, the job id."""
    label = label or job.get("filename") or job.get("job_id", "job")
    status = job.get("status", "unknown")
    lines = []
    if status == "succeeded":
        lines.append(f"{label}: score {job['score']:.2f}")
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
    model = job.get("model")
    if model:
        lines.append(f"  model: {model.get('name', '?')} (weights: {model.get('weights', '?')})")
        if model.get("calibrated") is False:
            lines.append(f"  note: {UNTRAINED_NOTE}")
    lines.append(f"  job: {job.get('job_id', '?')}")
    return "\n".join(lines)

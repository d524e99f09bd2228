"""Why a succeeded job scored the whole video (``window.reason``), in the words the command
line uses; the page says the same (web/window-reason.js)."""

from __future__ import annotations

NO_DIVE_FOUND = "no_dive_found"
TOO_SHORT = "too_short"

NOTES = {
    NO_DIVE_FOUND: "no dive found in this video",
    TOO_SHORT: "whole video scored (shorter than the window)",
}


def no_dive_found(job: dict) -> bool:
    """A succeeded job whose entry search found nothing: its number is not a dive's score."""
    return job.get("status") == "succeeded" and (job.get("window") or {}).get("reason") == NO_DIVE_FOUND


def window_note(job: dict) -> str:
    """What a succeeded job's whole-video window means for its score, or "" when it scored a dive."""
    if job.get("status") != "succeeded":
        return ""
    return NOTES.get((job.get("window") or {}).get("reason", ""), "")

"""The competition view of several videos: ranked by score, as a table for a terminal and as
CSV. The page's CSV (web/ranking.js) has the same columns and writes scores the same way
(the shortest text that reads back as the API's number)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO

from client.window_reason import no_dive_found, window_note

CSV_COLUMNS = ("rank", "file", "score", "status", "job_id", "error_code", "error_message", "model", "calibrated",
               "window", "note")


@dataclass(frozen=True)
class Row:
    rank: int | None  # None for a video without a score, or in which no dive was found
    file: str
    score: float | None
    status: str
    job_id: str | None
    error_code: str = ""
    error_message: str = ""
    model: str = ""  # "name, weights, dtype": scores compare when these match
    calibrated: str = ""  # "true" or "false"; "" without a model
    window: str = ""  # "how start-end", the seconds as the API gives them
    note: str = ""  # "no dive found in this video", or why the whole video was scored


def rank(results: Iterable[tuple[str, dict]]) -> list[Row]:
    """``(file, job)`` pairs (a job as the API shows it, or a refused file's
    ``{"status", "error"}``) ranked by score, highest first; equal scores share a rank
    (1, 2, 2, 4). Videos in which no dive was found follow unranked (their number is not a
    dive's score), then videos without a score, each in the order given."""
    dives, no_dive, unscored = [], [], []
    for file, job in results:
        error = job.get("error") or {}
        score = job.get("score") if job.get("status") == "succeeded" else None
        row = (file, score, job.get("status", "unknown"), job.get("job_id"), error.get("code", ""),
               error.get("message", ""), *model_cells(job.get("model")), window_cell(job.get("window")),
               window_note(job))
        (unscored if score is None else no_dive if no_dive_found(job) else dives).append(row)
    dives.sort(key=lambda r: -r[1])
    rows, previous, place = [], None, 0
    for index, row in enumerate(dives, start=1):
        if row[1] != previous:
            place, previous = index, row[1]
        rows.append(Row(place, *row))
    rows.extend(Row(None, *row) for row in [*no_dive, *unscored])
    return rows


def model_cells(model: dict | None) -> tuple[str, str]:
    """The ``model`` and ``calibrated`` cells of a job's model, as the page writes them."""
    if not model:
        return "", ""
    name = ", ".join(str(model.get(key, "")) for key in ("name", "weights", "dtype"))
    calibrated = model.get("calibrated")
    return name, str(calibrated).lower() if isinstance(calibrated, bool) else ""


def window_cell(window: dict | None) -> str:
    """The ``window`` cell: ``how start-end`` (``given 15.92-20``), empty without a window."""
    if not window:
        return ""
    return f"{window.get('how', '')} {number_text(window['start_s'])}-{number_text(window['end_s'])}"


def format_table(rows: list[Row]) -> str:
    """A plain-text table: rank, score (2 decimals), file, and the note, or status or error for
    the videos without a score."""
    lines = [("rank", "score", "video", "")]
    for row in rows:
        if row.score is not None:
            lines.append(("-" if row.rank is None else str(row.rank), f"{row.score:.2f}", row.file, row.note))
        else:
            note = f"{row.status}: {row.error_code}" if row.error_code else row.status
            lines.append(("-", "-", row.file, note))
    widths = [max(len(line[i]) for line in lines) for i in range(3)]
    out = []
    for rank_text, score, file, note in lines:
        text = f"{rank_text:>{widths[0]}}  {score:>{widths[1]}}  {file:<{widths[2]}}  {note}"
        out.append(text.rstrip())
    return "\n".join(out)


def number_text(value: float) -> str:
    """The shortest text that reads back as ``value``, as JavaScript's ``String(value)`` writes
    it for a score (``71.38``, ``71`` rather than ``71.0``)."""
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


# A spreadsheet runs a cell that starts with one of these as a formula: a file named
# "=HYPERLINK(...)" must stay text, and so must every other text cell. The numbers are not
# touched (a score may be negative).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralized(text: str) -> str:
    return f"'{text}" if text.startswith(FORMULA_START) else text


def csv_field(text: str) -> str:
    """Quoted when it holds a quote, a line break, or either separator spreadsheets use (``,``
    and ``;``), as the page writes it (web/ranking.js)."""
    return f'"{text.replace(chr(34), chr(34) * 2)}"' if any(c in text for c in '",;\r\n') else text


def write_csv(rows: list[Row], file: IO[str]) -> None:
    file.write(",".join(CSV_COLUMNS) + "\n")
    for row in rows:
        texts = [neutralized(text) for text in (row.file, row.status, row.job_id or "", row.error_code,
                                                row.error_message, row.model, row.calibrated, row.window,
                                                row.note)]
        cells = ["" if row.rank is None else str(row.rank), texts[0],
                 "" if row.score is None else number_text(row.score), *texts[1:]]
        file.write(",".join(csv_field(cell) for cell in cells) + "\n")

"""The ranked table of several videos: order, shared ranks, the videos without a score, CSV."""

from __future__ import annotations

import csv
import io
import re

from client.ranking import CSV_COLUMNS, format_table, number_text, rank, write_csv
from tests.support.helpers import ROOT


def scored(job_id: str, score: float) -> dict:
    return {"job_id": job_id, "status": "succeeded", "score": score}


def test_videos_are_ranked_by_score_and_equal_scores_share_a_rank():
    rows = rank([("a.mp4", scored("a", 50.0)), ("b.mp4", scored("b", 71.38)), ("c.mp4", scored("c", 50.0)),
                 ("d.mp4", scored("d", 12.5))])

    assert [(r.rank, r.file) for r in rows] == [(1, "b.mp4"), (2, "a.mp4"), (2, "c.mp4"), (4, "d.mp4")]


def test_videos_without_a_score_follow_in_the_order_given():
    failed = {"job_id": "f", "status": "failed", "error": {"code": "not_a_video", "message": "Not a video."}}
    refused = {"job_id": None, "status": "refused", "error": {"code": "unsupported_media_type", "message": "No."}}

    rows = rank([("f.mp4", failed), ("ok.mp4", scored("o", 1.0)), ("r.txt", refused)])

    assert [(r.rank, r.file, r.status, r.error_code) for r in rows] == [
        (1, "ok.mp4", "succeeded", ""), (None, "f.mp4", "failed", "not_a_video"),
        (None, "r.txt", "refused", "unsupported_media_type"),
    ]
    table = format_table(rows).splitlines()
    assert table[0].split() == ["rank", "score", "video"]
    assert table[1].split() == ["1", "1.00", "ok.mp4"]
    assert table[2].split() == ["-", "-", "f.mp4", "failed:", "not_a_video"]


def test_the_csv_carries_the_apis_numbers_exactly():
    score = 71.38123456789012
    out = io.StringIO()
    write_csv(rank([("a, b.mp4", scored("a", score)), ("c.mp4", scored("c", 70.0))]), out)

    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert list(rows[0]) == list(CSV_COLUMNS)
    assert float(rows[0]["score"]) == score
    assert rows[0]["file"] == "a, b.mp4"
    assert rows[1]["score"] == "70"  # as JavaScript's String(70) writes it, like the page's CSV
    assert number_text(0.1) == "0.1"


def test_a_file_name_a_spreadsheet_would_run_as_a_formula_stays_text():
    out = io.StringIO()
    write_csv(rank([('=HYPERLINK("http://x","y").mp4', scored("a", -4.5)), ("@sum.mp4", scored("b", 1.0)),
                    ("plain.mp4", scored("c", 0.5))]), out)

    rows = {row["job_id"]: row for row in csv.DictReader(io.StringIO(out.getvalue()))}
    assert rows["a"]["file"] == '\'=HYPERLINK("http://x","y").mp4'
    assert rows["b"]["file"] == "'@sum.mp4"
    assert rows["c"]["file"] == "plain.mp4"
    assert rows["a"]["score"] == "-4.5"  # numbers are not touched, negative ones included


def test_every_text_cell_of_the_csv_stays_text_and_either_separator_is_quoted():
    out = io.StringIO()
    failed = {"job_id": "=cmd", "status": "failed", "error": {"code": "@SUM(A1)", "message": "+1"}}
    write_csv(rank([("round 1; dive 2.mp4", failed)]), out)
    [row] = csv.DictReader(io.StringIO(out.getvalue()))
    assert (row["job_id"], row["error_code"], row["error_message"]) == ("'=cmd", "'@SUM(A1)", "'+1")
    assert '"round 1; dive 2.mp4"' in out.getvalue() and row["file"] == "round 1; dive 2.mp4"


MODEL = {"name": "C3D-AVG (MTL-AQA)", "weights": "untrained-seed0", "calibrated": False, "dtype": "float32"}


def test_the_csv_says_which_model_scored_and_over_which_window():
    # GIVEN a job scored over a given window, and a failed job
    job = {**scored("a", 71.5), "model": MODEL,
           "window": {"how": "given", "start_s": 15.92, "end_s": 20.0, "start_frame": 398, "end_frame": 500}}
    failed = {"job_id": "f", "status": "failed", "error": {"code": "entry_after_end", "message": "Past the end."}}
    out = io.StringIO()
    write_csv(rank([("a.mp4", job), ("f.mp4", failed)]), out)

    # THEN the scored row has the model, whether it is calibrated and the window; the others none
    rows = {row["file"]: row for row in csv.DictReader(io.StringIO(out.getvalue()))}
    assert (rows["a.mp4"]["model"], rows["a.mp4"]["calibrated"], rows["a.mp4"]["window"]) == (
        "C3D-AVG (MTL-AQA), untrained-seed0, float32", "false", "given 15.92-20")
    assert (rows["f.mp4"]["model"], rows["f.mp4"]["calibrated"], rows["f.mp4"]["window"]) == ("", "", "")


def test_the_command_lines_csv_has_the_pages_columns():
    page = (ROOT / "web" / "ranking.js").read_text()
    declared = re.search(r"export const CSV_COLUMNS = \[([^\]]*)\]", page).group(1)
    assert tuple(re.findall(r'"([^"]+)"', declared)) == CSV_COLUMNS


def no_dive(job_id: str, score: float) -> dict:
    return {**scored(job_id, score), "window": {"how": "whole", "start_s": 0.0, "end_s": 10.0, "video_s": 10.0,
                                                "reason": "no_dive_found"}}


def test_a_video_with_no_dive_follows_every_dive_unranked_and_says_so():
    # GIVEN a video in which no dive was found, scoring higher than both dives, and a failed one
    failed = {"job_id": "f", "status": "failed", "error": {"code": "not_a_video", "message": "Not a video."}}
    short = {**scored("s", 20.0), "window": {"how": "whole", "start_s": 0.0, "end_s": 3.2, "video_s": 3.2,
                                             "reason": "too_short"}}
    rows = rank([("f.mp4", failed), ("still.mp4", no_dive("n", 99.0)), ("a.mp4", scored("a", 50.0)),
                 ("short.mp4", short)])

    # THEN the dives are ranked (the short video is one), the no-dive video follows without a rank
    assert [(r.rank, r.file, r.note) for r in rows] == [
        (1, "a.mp4", ""), (2, "short.mp4", "whole video scored (shorter than the window)"),
        (None, "still.mp4", "no dive found in this video"), (None, "f.mp4", ""),
    ]
    table = format_table(rows).splitlines()
    assert table[3].split() == ["-", "99.00", "still.mp4", "no", "dive", "found", "in", "this", "video"]
    out = io.StringIO()
    write_csv(rows, out)
    csv_rows = {row["file"]: row for row in csv.DictReader(io.StringIO(out.getvalue()))}
    assert (csv_rows["still.mp4"]["rank"], csv_rows["still.mp4"]["score"], csv_rows["still.mp4"]["note"]) == (
        "", "99", "no dive found in this video")
    assert list(csv_rows) == ["a.mp4", "short.mp4", "still.mp4", "f.mp4"]

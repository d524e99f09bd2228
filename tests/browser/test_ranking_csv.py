"""The page's CSV of the ranked table (web/ranking.js), run in Chromium as the page runs it."""

from __future__ import annotations

import csv
import io

import pytest
import requests

from client.ranking import CSV_COLUMNS

pytestmark = [pytest.mark.browser, pytest.mark.stack]

CSV_OF = """async (entries) => {
  const { rank, toCsv } = await import("/ranking.js");
  return toCsv(rank(entries));
}"""


def test_a_file_name_a_spreadsheet_would_run_as_a_formula_stays_text(page):
    text = page.evaluate(CSV_OF, [
        {"file": '=HYPERLINK("http://x","y").mp4', "job": {"job_id": "a", "status": "succeeded", "score": -4.5}},
        {"file": "+1.mp4", "job": {"job_id": "b", "status": "succeeded", "score": 1}},
        {"file": "plain.mp4", "job": {"job_id": "c", "status": "succeeded", "score": 0.5}},
    ])

    rows = {row["job_id"]: row for row in csv.DictReader(io.StringIO(text))}
    assert rows["a"]["file"] == '\'=HYPERLINK("http://x","y").mp4'
    assert rows["b"]["file"] == "'+1.mp4"
    assert rows["c"]["file"] == "plain.mp4"
    assert rows["a"]["score"] == "-4.5"  # numbers are not touched, negative ones included


def test_every_text_cell_stays_text_and_either_separator_is_quoted(page):
    text = page.evaluate(CSV_OF, [
        {"file": "round 1; dive 2.mp4", "job": {"job_id": "=HYPERLINK(\"http://x\")", "status": "failed",
                                                 "error": {"code": "@SUM(A1)", "message": "-2+3"}}},
    ])
    [row] = csv.DictReader(io.StringIO(text))
    assert row["job_id"] == "'=HYPERLINK(\"http://x\")"
    assert (row["error_code"], row["error_message"]) == ("'@SUM(A1)", "'-2+3")
    assert '"round 1; dive 2.mp4"' in text  # quoted: a spreadsheet splitting on ";" keeps it whole
    assert row["file"] == "round 1; dive 2.mp4"


def test_an_address_names_only_ids_of_a_jobs_shape(open_page, stack):
    real = requests.post(f"{stack.presign_url}/v1/jobs", json={"filename": "a.mp4", "content_type": "video/mp4",
                                                                "size": 1000}, timeout=30).json()["job_id"]
    crafted = ["=HYPERLINK(\"http://x\")", "@SUM(1)", "../" + real]
    asked = []
    page = open_page(f"{stack.web_url}/?jobs={','.join([*crafted, real])}",
                     before=lambda p: p.on("request", lambda r: asked.append(r.url) if "/v1/jobs/" in r.url else None))
    page.wait_for_selector("#batch:not([hidden])")
    assert page.locator("#batch-list li").count() == 1
    assert asked and all(url.split("/v1/jobs/")[1].startswith(real) for url in asked)


def test_the_csv_says_which_model_scored_and_over_which_window(page):
    model = {"name": "C3D-AVG (MTL-AQA)", "weights": "untrained-seed0", "calibrated": False, "dtype": "float32"}
    text = page.evaluate(CSV_OF, [
        {"file": "a.mp4", "job": {"job_id": "a", "status": "succeeded", "score": 71.5, "model": model,
                                  "window": {"how": "given", "start_s": 15.92, "end_s": 20.0}}},
        {"file": "f.mp4", "job": {"job_id": "f", "status": "failed", "error": {"code": "x", "message": "y"}}},
    ])
    assert text.splitlines()[0] == ",".join(CSV_COLUMNS)  # the command line's columns (client/ranking.py)
    rows = {row["job_id"]: row for row in csv.DictReader(io.StringIO(text))}
    assert (rows["a"]["model"], rows["a"]["calibrated"], rows["a"]["window"]) == (
        "C3D-AVG (MTL-AQA), untrained-seed0, float32", "false", "given 15.92-20")
    assert (rows["f"]["model"], rows["f"]["calibrated"], rows["f"]["window"]) == ("", "", "")


def test_a_video_with_no_dive_follows_every_dive_unranked_and_the_csv_says_so(page):
    no_dive = {"how": "whole", "start_s": 0, "end_s": 16, "video_s": 16, "reason": "no_dive_found"}
    text = page.evaluate(CSV_OF, [
        {"file": "still.mp4", "job": {"job_id": "n", "status": "succeeded", "score": 99.5, "window": no_dive}},
        {"file": "f.mp4", "job": {"job_id": "f", "status": "failed", "error": {"code": "x", "message": "y"}}},
        {"file": "dive.mp4", "job": {"job_id": "d", "status": "succeeded", "score": 40}},
    ])
    rows = [(row["rank"], row["file"], row["score"], row["note"]) for row in csv.DictReader(io.StringIO(text))]
    assert rows == [("1", "dive.mp4", "40", ""), ("", "still.mp4", "99.5", "no dive found in this video"),
                    ("", "f.mp4", "", "")]

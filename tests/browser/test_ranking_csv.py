"""The page's CSV of the ranked table (web/ranking.js), run in Chromium as the page runs it."""

from __future__ import annotations

import csv
import io

import pytest

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

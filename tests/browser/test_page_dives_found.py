"""Through the running stack: every dive the search finds in a video is a mark on the page's
timeline, one click on a mark scores that dive from the same upload; a video without a dive says
so, and sits unranked below the dives in the ranked table and its CSV."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from bench import synthetic_dive
from tests.browser.page_support import SCORE_TIMEOUT_MS, drop_many, rescore_by, score_dropped

pytestmark = [pytest.mark.browser, pytest.mark.stack]


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dives-found")
    return {
        "three": synthetic_dive.write(synthetic_dive.three_dives(), folder / "three.mp4"),
        "dive": synthetic_dive.write(synthetic_dive.Scene(10.0, 25, 7.0, seed=3), folder / "dive.mp4"),
        "pool": synthetic_dive.write(synthetic_dive.Scene(12.0, 25, None, walker=True, seed=51), folder / "pool.mp4"),
    }


def test_three_dives_are_three_marks_and_one_click_scores_another_without_uploading(page, stack, videos, screenshot):
    first_id = score_dropped(page, videos["three"])

    # THEN the search listed three entries, and the page marks each where it is
    first = stack.store.get(first_id)
    entries = first["entries"]
    assert len(entries) == 3, entries
    marks = page.locator("#entry-marks .entry-mark")
    assert marks.count() == 3
    lefts = [float(marks.nth(i).evaluate("m => parseFloat(m.style.left)")) for i in range(3)]
    assert lefts == pytest.approx([100 * e["entry_s"] / first["window"]["video_s"] for e in entries], abs=0.01)
    screenshot(page, "marks")

    # WHEN the person clicks once on a mark other than the one scored (the second, unless it is)
    current = [marks.nth(i).get_attribute("aria-current") == "true" for i in range(3)]
    target = 1 if not current[1] else 0
    second_id, uploads = rescore_by(page, first_id, marks.nth(target).click)

    # THEN a new job scored the window ending at that mark's entry, from the same upload, and
    # the page shows both scores and still marks the three entries
    second = stack.store.get(second_id)
    assert second["status"] == "succeeded" and second["rescore_of"] == first_id
    assert second["window"]["how"] == "given"
    assert second["window"]["entry_s"] == pytest.approx(entries[target]["entry_s"], abs=0.001)
    assert page.inner_text("#score") == f"{second['score']:.2f}"
    assert page.inner_text("#before").startswith(f"Before: {first['score']:.2f}")
    assert marks.count() == 3 and marks.nth(target).get_attribute("aria-current") == "true"
    assert uploads == []
    screenshot(page, "rescored")


def test_a_video_without_a_dive_says_so_and_follows_the_dives_unranked(page, open_page, stack, videos, screenshot):
    drop_many(page, [(videos["pool"], "video/mp4"), (videos["dive"], "video/mp4")])
    page.wait_for_selector("#ranking:not([hidden])", timeout=SCORE_TIMEOUT_MS)

    # THEN the dive is ranked first; the pool follows without a rank, its number said not a dive's
    rows = page.locator("#ranking-rows tr")
    assert rows.count() == 2
    assert rows.nth(0).locator("td").all_inner_texts()[:2] == ["1", "dive.mp4"]
    place, name, score = rows.nth(1).locator("td").all_inner_texts()
    assert (place, name) == ("–", "pool.mp4") and "no dive found in this video" in score
    screenshot(page, "table")

    # ... and so does the CSV
    with page.expect_download() as download:
        page.click("#csv")
    table = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8"))))
    assert [(r["rank"], r["file"], r["note"]) for r in table] == [
        ("1", "dive.mp4", ""), ("", "pool.mp4", "no dive found in this video")]
    pool = stack.store.get(table[1]["job_id"])
    assert (pool["status"], pool["window"]["reason"], pool["entries"]) == ("succeeded", "no_dive_found", [])

    # ... and the pool's own view says it beside the number
    alone = open_page(f"{stack.web_url}/?job={pool['job_id']}")
    alone.wait_for_selector("#result:not([hidden])")
    assert alone.inner_text("#no-dive") == "No dive found in this video"
    assert alone.inner_text("#score") == f"{pool['score']:.2f}"

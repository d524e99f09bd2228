"""The page shows what was scored (the window on the video's timeline) and "score from here"
scores the same upload again over the window ending where the person says."""

from __future__ import annotations

import pytest

from bench import synthetic_dive
from tests.browser.page_support import rescore_by, score_dropped

pytestmark = [pytest.mark.browser, pytest.mark.stack]

SCENE = synthetic_dive.Scene(16.0, 30, 11.0, walker=True, seed=21)


@pytest.fixture(scope="module")
def dive(tmp_path_factory):
    return synthetic_dive.write(SCENE, tmp_path_factory.mktemp("page-window") / "dive.mp4")


def test_the_window_is_shown_and_score_from_here_rescores_without_uploading(page, stack, dive, screenshot):
    first_id = score_dropped(page, dive)

    first = stack.store.get(first_id)
    assert first["window"]["how"] == "detected"
    assert "found entering the water" in page.inner_text("#window-text")
    assert page.input_value("#entry-input") == f"{first['window']['end_s']:.2f}"
    # the marked stretch sits where the window is in the video
    left = page.evaluate("parseFloat(document.getElementById('timeline-window').style.left)")
    assert left == pytest.approx(100 * first["window"]["start_s"] / first["window"]["video_s"], abs=0.01)
    screenshot(page, "detected")

    # WHEN the person clicks the timeline at about 8 s, then "Score from here"
    box = page.locator("#timeline").bounding_box()
    page.locator("#timeline").click(position={"x": box["width"] * 8.0 / SCENE.seconds, "y": box["height"] / 2})
    picked = float(page.input_value("#entry-input"))
    assert picked == pytest.approx(8.0, abs=SCENE.seconds / box["width"] * 2)
    second_id, uploads = rescore_by(page, first_id, lambda: page.click("#rescore"))

    # THEN a new job scored the window ending there, from the same upload
    second = stack.store.get(second_id)
    assert second["status"] == "succeeded" and second["rescore_of"] == first_id
    assert second["window"]["how"] == "given" and second["window"]["end_s"] == pytest.approx(picked, abs=0.001)
    assert page.inner_text("#score") == f"{second['score']:.2f}"
    assert uploads == []  # nothing went to storage again
    screenshot(page, "given")

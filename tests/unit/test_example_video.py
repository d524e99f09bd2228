"""`make example`: a video to try the app with, for someone with no dive video at hand."""

from __future__ import annotations

import subprocess

from divescore.settings import Settings
from inference.video import RunReader, VideoLimits
from tests.support.helpers import ROOT


def test_make_example_writes_a_dive_the_function_reads_and_finds_the_entry_of(tmp_path):
    from inference.scorer import choose_window

    path = tmp_path / "dive.mp4"
    made = subprocess.run(["make", "-s", "--no-print-directory", "example", f"EXAMPLE={path}"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert made.returncode == 0, made.stderr
    assert "divescore submit" in made.stdout  # says what to do with it
    with RunReader.probed(path, VideoLimits.from_settings(Settings())) as reader:
        assert round(reader.info.duration_seconds) == 12
        window, _ = choose_window(reader, None)
    assert window.how == "detected" and abs(window.end_s - 8.4) < 0.3, window

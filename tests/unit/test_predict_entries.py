"""``divescore predict --all-entries``: one result per entry the search lists."""

import json

import pytest

from bench import synthetic_dive
from tests.support.helpers import WEIGHTS_CACHE


@pytest.fixture
def local_settings(monkeypatch):
    monkeypatch.setenv("DIVESCORE_CACHE_DIR", str(WEIGHTS_CACHE))
    monkeypatch.setenv("DIVESCORE_MODEL_DTYPE", "float32")


def test_every_entry_found_is_scored_one_result_each(local_settings, capsys, tmp_path):
    from client.cli import main

    scene = synthetic_dive.three_dives()
    path = synthetic_dive.write(scene, tmp_path / "three.mp4")
    assert main(["predict", str(path), "--all-entries", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    entries, results = printed["entries"], printed["results"]
    assert len(entries) == 3 and [r["window"]["entry_s"] for r in results] == [e["entry_s"] for e in entries]
    assert all(r["window"]["how"] == "detected" and r["entries"] == entries for r in results)
    assert len({r["score"] for r in results}) == 3  # three stretches of the video
    # the result the job gives (the most confident entry) is one of them
    assert main(["predict", str(path), "--json"]) == 0
    job = json.loads(capsys.readouterr().out)
    assert job["entries"] == entries
    assert (job["window"], job["score"]) in [(r["window"], r["score"]) for r in results]

    assert main(["predict", str(path), "--all-entries"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("3 entries found") and text.count("-- entry at") == 3 and text.count("score  ") == 3


def test_all_entries_and_a_given_entry_do_not_go_together(local_settings, capsys, tmp_path):
    from client.cli import main

    path = synthetic_dive.write(synthetic_dive.Scene(6.0, 25, 5.0, seed=1), tmp_path / "dive.mp4")
    assert main(["predict", str(path), "--all-entries", "--entry", "3"]) == 2
    assert "--entry or --all-entries" in capsys.readouterr().err

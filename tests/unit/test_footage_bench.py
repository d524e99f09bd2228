"""bench/footage.py without the real clips: its variants and scoring loop on a generated dive
(``bench.synthetic_dive``, known entry), so the path the real-footage measurement takes is tested."""

from __future__ import annotations

import json
import types

import pytest

from bench import footage, synthetic_dive
from inference import detect

SCENE = synthetic_dive.Scene(8.0, 25, 5.0, size=(320, 180), seed=3)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    folder = tmp_path_factory.mktemp("footage")
    path = synthetic_dive.write(SCENE, folder / "somewhere-else.mp4")  # found by its sha256, not its name
    entry_s = SCENE.entry_frame / SCENE.fps
    clips = [{"id": "gen", "file": "gen.mp4", "kind": "broadcast", "fps": SCENE.fps, "sha256": footage.sha256(path),
              "entries": [{"t_s": entry_s, "frame": SCENE.entry_frame}]}]
    return folder, clips, entry_s


def test_the_manifest_names_every_clip_by_source_and_hash():
    clips = footage.load_manifest()
    tuned = [c for c in clips if c["set"] == "tuned"]
    held_out = [c for c in clips if c["set"] == "held_out"]
    assert len(tuned) == 20 and sum(c["kind"] == "no_dive" for c in tuned) == 6
    assert len(held_out) == 49 and sum(not c["entries"] for c in held_out) == 23
    for clip in clips:
        assert clip["source"]["repo"] and clip["source"]["path"] and len(clip["source"]["commit"]) == 40
        # a clip muxed here from a repository's frames has no fixed bytes: its frames are named instead
        assert len(clip["sha256"] or "") == 64 or clip["source"]["frames"]["count"] == clip["frames"]
        assert "/work" not in json.dumps(clip)
        for entry in clip["entries"] + clip.get("falls", []):  # falls: water entries that are not dives
            assert entry["t_s"] == pytest.approx(entry["frame"] / clip["fps"])


def test_held_out_clips_are_counted_apart_from_those_the_search_was_tuned_on(tmp_path):
    def row(clip, kept_for, how, found, entries):
        case = footage.Case(clip, "as_is", tmp_path / "x.mp4", "broadcast", entries, set=kept_for)
        return footage.score(case, lambda path: {"how": how, "confidence": 0.5, "found_s": found,
                                                  "window_end_s": found, "video_s": 8.0, "fps": 25.0, "frames": 200})

    rows = [row("a", "tuned", "detected", 3.0, [3.1]), row("b", "held_out", "detected", 5.0, [3.0]),
            row("c", "held_out", "detected", 2.0, []), row("d", "held_out", "whole", 2.0, [])]
    totals = footage.summary(rows)
    assert (totals["dives"], totals["found_within"], totals["no_dive_videos"]) == (1, 1, 0)
    held = totals["held_out"]
    assert (held["dives"], held["found_within"], held["detected_on_dives"]) == (1, 0, 1)
    assert (held["no_dive_videos"], held["no_dive_detected"]) == (2, 1)
    text = footage.markdown(rows, totals)
    assert "Held out" in text and "{" not in text  # every figure filled in


def test_the_bench_rows_count_what_the_search_finds_and_which_detected_windows_are_right(tmp_path, monkeypatch):
    def row(clip, kept_for, how, found, entries):
        case = footage.Case(clip, "as_is", tmp_path / "x.mp4", "broadcast", entries, set=kept_for)
        return footage.score(case, lambda path: {"how": how, "confidence": 0.5, "trusted": True, "found_s": found,
                                                  "window_end_s": found, "video_s": 3.0, "fps": 25.0, "frames": 75})

    # a: too short to search, its entry found all the same; b: detected, right; c: detected, 2 s early
    rows = [row("a", "tuned", "whole", 1.5, [1.6]), row("b", "tuned", "detected", 3.0, [3.1]),
            row("c", "held_out", "detected", 1.0, [3.0])]
    monkeypatch.setattr(footage, "locate", lambda clips, folder: ({"a": tmp_path / "x.mp4"}, {}))
    monkeypatch.setattr(footage, "run", lambda folder, out, log: {"summary": footage.summary(rows)})
    ctx = type("Context", (), {"log": print, "series": {}})()
    metrics = {m.key: m for m in footage.measure(ctx)}
    assert metrics["footage_found_share"].value == 1.0 and metrics["footage_found_share"].met
    assert metrics["footage_held_out_found_share"].value == 0.0
    assert metrics["footage_detected_right"].value == 0.5 and not metrics["footage_detected_right"].met


def test_a_clip_is_found_by_name_or_hash_and_a_changed_one_is_left_out(generated, tmp_path):
    folder, clips, _ = generated
    paths, missing = footage.locate(clips, folder)
    assert paths == {"gen": folder / "somewhere-else.mp4"} and not missing
    (tmp_path / "gen.mp4").write_bytes(b"not the clip")
    paths, missing = footage.locate(clips, tmp_path)
    assert not paths and "sha256" in missing["gen"]


def test_score_compares_the_detected_entry_with_the_nearest_true_one(tmp_path):
    case = footage.Case("c", "cut3", tmp_path / "x.mp4", "broadcast", [4.0, 9.0, 14.0])

    def answer(how, found):
        return lambda path: {"how": how, "confidence": 0.5, "found_s": found, "window_end_s": found,
                             "video_s": 20.0, "fps": 25.0, "frames": 500}

    row = footage.score(case, answer("detected", 9.25))
    assert row["within"] and row["matched_entry"] == 1 and row["error_s"] == pytest.approx(0.25)
    assert not footage.score(case, answer("detected", 9.4))["within"]
    assert not footage.score(case, answer("whole", 9.0))["within"]  # a whole window found nothing


@pytest.mark.parametrize("entry_frame", [10, 212])
def test_an_entry_nine_frames_off_at_30_fps_is_within_the_tolerance_and_at_29_97_fps_is_not(tmp_path, entry_frame):
    def within(fps, frames_late):
        true_s = round(entry_frame / fps, footage.TIME_DIGITS)  # as the manifest writes it
        case = footage.Case("c", "as_is", tmp_path / "x.mp4", "broadcast", [true_s])
        found = detect.Entry((entry_frame + frames_late) / fps, 0.9)
        window = types.SimpleNamespace(how="detected", reason=None, end_s=found.time_s)
        info = types.SimpleNamespace(duration_seconds=20.0, fps=fps, frames=round(20 * fps))
        row = footage.score(case, lambda path: footage.answer(window, [found], found, info))
        assert row["within"] == row["search_within"] == bool(row["entries_right"]) == (not row["entries_wrong"])
        return row["within"]

    assert within(30.0, 9) and within(30.0, -9)  # 0.3 s
    assert not within(30.0, 10) and not within(30000 / 1001, 9)  # 0.333 s, 0.3003 s


def test_variants_and_the_production_search_on_a_generated_dive(generated):
    folder, clips, entry_s = generated
    paths, _ = footage.locate(clips, folder)
    rows = footage.measure_rows(clips, paths, log=lambda line: None, cuts=[("gen", "gen", "gen")],
                                pattern=("testsrc", 4.0, 25.0, (160, 120)))
    by_variant = {r["variant"]: r for r in rows}
    assert list(by_variant) == ["as_is", "tripod", "cut3", "testsrc"]

    as_is, tripod, cut3 = by_variant["as_is"], by_variant["tripod"], by_variant["cut3"]
    assert as_is["how"] == "detected" and as_is["within"], as_is
    # the tripod shot: TRIPOD_S long, the true entry moved by the stills added before the dive
    assert tripod["video_s"] == pytest.approx(footage.TRIPOD_S)
    assert tripod["padding_s"] > 5
    assert tripod["true_entry_s"] == [pytest.approx(tripod["padding_s"] + entry_s, abs=1e-3)]
    assert tripod["how"] == "detected" and tripod["within"], tripod
    # three dives back to back: each true entry in its own third
    assert cut3["video_s"] == pytest.approx(3 * SCENE.seconds)
    assert cut3["true_entry_s"] == [pytest.approx(entry_s + k * SCENE.seconds, abs=1e-3) for k in range(3)]
    assert cut3["how"] == "detected" and cut3["within"], cut3

    totals = footage.summary(rows)
    assert totals["dives"] == 1 and totals["found_within_share"] == 1.0 and totals["cut3_found_within_share"] == 1.0
    assert totals["testsrc_detected"] == (by_variant["testsrc"]["how"] == "detected")
    table = footage.markdown(rows, totals)
    assert table.count("\n| gen |") == 2 and "1 of 1" in table

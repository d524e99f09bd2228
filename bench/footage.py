"""Real footage: does the production entry search find the dive? (``python -m bench.footage``)

For each clip of ``bench/footage/manifest.json`` found in ``--clips`` (default
``bench/footage/clips/``, not in git: see ``bench/footage/README.md``) and matching the
manifest's sha256, the function's own window choice (:func:`inference.scorer.choose_window`:
:func:`inference.entry.search` over a :class:`inference.video.RunReader` opened with the
function's :class:`inference.video.VideoLimits`) is run on:

- ``as_is``: the clip as it is;
- ``tripod``: the clip made ``TRIPOD_S`` long as a tripod shot would be (its first frame held
  before it and its last after it, with a little sensor noise), re-encoded with x264;
- ``cut3``: three real dives cut together into one video (resampled to ``CUT_FPS`` and
  letterboxed to ``CUT_SIZE``), each entry a candidate answer;

and, with no dive, ffmpeg's test pattern (``testsrc``). Each row: the window's ``how``, the
search's confidence, the instant it found (its best entry, and the window's end) against the
true entry (shifted by the padding), and whether a ``detected`` window's entry is within
``TOLERANCE_S``. Results go to ``bench/results/footage.json`` and ``footage.md``.

``make bench`` runs the same as its ``footage`` section, which is skipped, saying why, when
the clips are absent.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from bench.report import Metric, Spec, at_least, at_most

HERE = Path(__file__).resolve().parent
MANIFEST = HERE / "footage" / "manifest.json"
CLIPS = HERE / "footage" / "clips"
RESULTS = HERE / "results"

TOLERANCE_S = 0.3  # an entry found this close to the true one is right
TIME_DIGITS = 6  # instants are compared to the microsecond, as the manifest writes them
TRIPOD_S = 20.0  # the tripod variant's length
TRIPOD_BEFORE = 0.6  # ... of the added stills, this share goes before the dive
NOISE = 3  # the stills' noise: uniform, +-this many levels per pixel and frame
CUT_FPS = 25.0
CUT_SIZE = (480, 270)
# The three dives of each cut-together video: the clips without an overlay, and three of FineParser's.
CUTS = (("namrata_testdive5", "namrata_uploaded", "aqastreamlit_054"),
        ("fineparser_29", "fineparser_46", "fineparser_40"))
TESTSRC = ("testsrc", 20.0, 25.0, (320, 240))  # name, seconds, fps, size

FOUND_SHARE = Spec("footage_found_share", "real dives (as they are) whose entry the search finds within 0.3 s",
                   "ratio", at_least(0.9))
HELD_OUT_FOUND_SHARE = Spec("footage_held_out_found_share",
                            "held-out real dives (as they are) whose entry the search finds within 0.3 s", "ratio",
                            at_least(0.9))
DETECTED_RIGHT = Spec("footage_detected_right", "detected windows on real dives that end within 0.3 s of an entry",
                      "ratio", at_least(0.95))
NO_DIVE_DETECTED = Spec("footage_no_dive_detected",
                        "detected windows on real footage without a dive (as is and as a tripod shot)", "count",
                        at_most(0.0))
TESTSRC_DETECTED = Spec("footage_testsrc_detected", "detected windows on ffmpeg's test pattern (testsrc)", "count",
                        at_most(0.0))
SPECS = (FOUND_SHARE, HELD_OUT_FOUND_SHARE, DETECTED_RIGHT, NO_DIVE_DETECTED, TESTSRC_DETECTED)


# -- the manifest and the clips ------------------------------------------------------------

def load_manifest(path: Path = MANIFEST) -> list[dict]:
    return json.loads(path.read_text())["clips"]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def locate(clips: list[dict], folder: Path) -> tuple[dict[str, Path], dict[str, str]]:
    """``{id: path}`` of the clips in ``folder`` (by the manifest's file name, else by sha256
    among the folder's files), and ``{id: why}`` for those left out."""
    found: dict[str, Path] = {}
    missing: dict[str, str] = {}
    by_hash: dict[str, Path] | None = None
    for clip in clips:
        path = folder / clip["file"]
        if path.is_file():
            if clip.get("sha256") and sha256(path) != clip["sha256"]:
                missing[clip["id"]] = f"{path.name}: sha256 differs from the manifest's"
                continue
            found[clip["id"]] = path
            continue
        if clip.get("sha256"):
            if by_hash is None:
                by_hash = {sha256(p): p for p in sorted(folder.iterdir()) if p.is_file()} if folder.is_dir() else {}
            if clip["sha256"] in by_hash:
                found[clip["id"]] = by_hash[clip["sha256"]]
                continue
        missing[clip["id"]] = f"{clip['file']} not in {folder}"
    return found, missing


# -- making variants ------------------------------------------------------------------------

def read_frames(path: Path) -> list[np.ndarray]:
    """Every frame as RGB, cropped to even dimensions (x264's 4:2:0)."""
    import av

    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    height, width = frames[0].shape[:2]
    return [f[: height - height % 2, : width - width % 2] for f in frames]


def encode(frames: Iterable[np.ndarray], size: tuple[int, int], fps: float, path: Path) -> Path:
    """RGB frames (``size`` = width, height) → H.264 MP4 (x264 ``veryfast``, as phones write it)."""
    import imageio_ffmpeg

    width, height = size
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
               "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", f"{fps:g}", "-i", "-",
               "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p",
               "-movflags", "+faststart", "-f", "mp4", str(path)]
    with subprocess.Popen(command, stdin=subprocess.PIPE) as ffmpeg:
        for frame in frames:
            ffmpeg.stdin.write(np.ascontiguousarray(frame, dtype=np.uint8).tobytes())
        ffmpeg.stdin.close()
    if ffmpeg.returncode != 0:
        raise RuntimeError(f"ffmpeg failed ({ffmpeg.returncode}) writing {path}")
    return path


def tripod(frames: list[np.ndarray], fps: float, path: Path, seconds: float = TRIPOD_S,
           seed: int = 0) -> tuple[Path, float]:
    """The clip made ``seconds`` long: its first frame held before it and its last after it,
    each still with fresh noise. Returns the file and how long was added before the clip."""
    rng = np.random.default_rng(seed)
    extra = max(0, round(seconds * fps) - len(frames))
    before = round(extra * TRIPOD_BEFORE)
    after = extra - before

    def still(image: np.ndarray, count: int) -> Iterator[np.ndarray]:
        base = image.astype(np.int16)
        for _ in range(count):
            yield np.clip(base + rng.integers(-NOISE, NOISE + 1, base.shape, dtype=np.int16), 0, 255)

    def all_frames() -> Iterator[np.ndarray]:
        yield from still(frames[0], before)
        yield from frames
        yield from still(frames[-1], after)

    height, width = frames[0].shape[:2]
    return encode(all_frames(), (width, height), fps, path), before / fps


def letterbox(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import cv2

    width, height = size
    scale = min(width / image.shape[1], height / image.shape[0])
    w, h = max(2, round(image.shape[1] * scale)), max(2, round(image.shape[0] * scale))
    out = np.zeros((height, width, 3), np.uint8)
    x, y = (width - w) // 2, (height - h) // 2
    out[y:y + h, x:x + w] = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
    return out


def cut_together(clips: list[tuple[list[np.ndarray], float]], path: Path, fps: float = CUT_FPS,
                 size: tuple[int, int] = CUT_SIZE) -> tuple[Path, list[float]]:
    """``(frames, fps)`` clips back to back, each shown at ``fps`` (the nearest frame of each
    instant: frames dropped or repeated) and letterboxed to ``size``. Returns the file and
    where each clip starts (seconds)."""
    starts: list[float] = []
    out: list[np.ndarray] = []
    for frames, clip_fps in clips:
        starts.append(len(out) / fps)
        count = int(len(frames) / clip_fps * fps)
        out += [letterbox(frames[min(len(frames) - 1, int(k / fps * clip_fps + 1e-6))], size) for k in range(count)]
    return encode(out, size, fps, path), starts


def testsrc(path: Path, seconds: float, fps: float, size: tuple[int, int]) -> Path:
    import imageio_ffmpeg

    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
                    "-i", f"testsrc=duration={seconds:g}:size={size[0]}x{size[1]}:rate={fps:g}",
                    "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", str(path)], check=True)
    return path


# -- the search, as the function runs it ------------------------------------------------------

@dataclasses.dataclass
class Case:
    """One video to search: what it is and where its dives enter the water (seconds)."""

    clip: str
    variant: str  # as_is | tripod | cut3 | testsrc
    path: Path
    kind: str  # broadcast | spectator | no_entry | no_dive | pattern
    entries: list[float]
    padding_s: float = 0.0  # what was added before the clip's own start
    set: str = "tuned"  # tuned: the clips the search was tuned on; held_out: found after, used for nothing else


def search(path: Path) -> dict:
    """The function's window and listed entries for ``path`` (no ``entry_s``), and the search's
    best entry, trusted or not: the search is run here also where the job skips it (a video
    no longer than the window), to measure it."""
    from divescore.settings import Settings
    from inference import detect, entry, scorer
    from inference.video import RunReader, VideoLimits

    with RunReader.probed(path, VideoLimits.from_settings(Settings())) as reader:
        window, listed = scorer.choose_window(reader, None)
        best = detect.best(entry.search(reader))
        return answer(window, listed, best, reader.info)


def answer(window, listed: list, best, info) -> dict:
    """What :func:`search` found, as a row holds it: the ``window`` chosen, the entries
    ``listed`` (each a :class:`inference.detect.Entry`), the ``best`` entry and the video's
    ``info``. Instants to be compared are kept to the microsecond (:func:`right`)."""
    from inference import detect

    return {"how": window.how, "reason": window.reason,
            "confidence": None if best is None else round(best.confidence, 3),
            "trusted": best is not None and best.confidence >= detect.CONFIDENT,
            "found_s": None if best is None else round(best.time_s, TIME_DIGITS),
            "window_end_s": round(window.end_s, 3), "entries": [e.as_dict() for e in listed],
            "listed_s": [round(e.time_s, TIME_DIGITS) for e in listed],
            "video_s": round(info.duration_seconds, 3), "fps": round(info.fps, 3), "frames": info.frames}


def right(found_s: float, true_s: float) -> bool:
    """Whether an instant found is within ``TOLERANCE_S`` of a true one. Both are compared as
    written, to the microsecond: rounded further, an entry nine frames after the true one at
    30 fps (0.3 s) would come out 0.3003 s late."""
    return abs(found_s - true_s) <= TOLERANCE_S + 10 ** -TIME_DIGITS


def score(case: Case, searcher: Callable[[Path], dict] = search) -> dict:
    """One row: the search's answer against the true entries."""
    row = {"clip": case.clip, "variant": case.variant, "kind": case.kind, "set": case.set,
           "padding_s": round(case.padding_s, 3), "true_entry_s": [round(t, 3) for t in case.entries]}
    try:
        row.update(searcher(case.path))
    except Exception as err:  # a clip the function refuses is a result too
        row.update(how="error", error=f"{err.__class__.__name__}: {err}"[:300])
        return row
    # the search's best entry (trusted or not) against the nearest true one: negative is early
    errors = [row["found_s"] - t for t in case.entries] if row["found_s"] is not None else []
    nearest = min(range(len(errors)), key=lambda i: abs(errors[i])) if errors else None
    row["error_s"] = None if nearest is None else round(errors[nearest], 3)
    row["matched_entry"] = nearest  # which of the video's dives it is nearest (cut3: 0-2)
    found_right = nearest is not None and right(row["found_s"], case.entries[nearest])
    row["within"] = row["how"] == "detected" and found_right
    # the search alone, also where the job does not run it: its best entry, if trusted, is right
    row["search_within"] = found_right and row.get("trusted", False)
    # every listed entry: the true entries it finds, and those it lists where no dive enters
    listed = row.get("listed_s", [])
    row["entries_right"] = sum(any(right(f, t) for f in listed) for t in case.entries)
    row["entries_wrong"] = sum(not any(right(f, t) for t in case.entries) for f in listed)
    return row


def cases(clips: list[dict], paths: dict[str, Path], work: Path, log: Callable[[str], None] = print,
          cuts: Iterable[tuple[str, ...]] = CUTS, pattern: tuple | None = TESTSRC) -> Iterator[Case]:
    """Each present clip as is and as a tripod shot, the cut-together videos whose three clips
    are present, and the test pattern."""
    by_id = {c["id"]: c for c in clips}
    decoded: dict[str, list[np.ndarray]] = {}
    for clip in clips:
        if clip["id"] not in paths:
            continue
        entries = [e["t_s"] for e in clip["entries"]]
        kept_for = clip.get("set", "tuned")
        yield Case(clip["id"], "as_is", paths[clip["id"]], clip["kind"], entries, set=kept_for)
        frames = decoded[clip["id"]] = read_frames(paths[clip["id"]])
        file, before = tripod(frames, clip["fps"], work / f"{clip['id']}-tripod.mp4")
        yield Case(clip["id"], "tripod", file, clip["kind"], [t + before for t in entries], before, kept_for)
    for n, ids in enumerate(cuts):
        if not all(i in decoded for i in ids):
            log(f"  cut {'+'.join(ids)}: not all three clips present, left out")
            continue
        file, starts = cut_together([(decoded[i], by_id[i]["fps"]) for i in ids], work / f"cut{n}.mp4")
        entries = [start + e["t_s"] for i, start in zip(ids, starts, strict=True) for e in by_id[i]["entries"]]
        yield Case("+".join(ids), "cut3", file, "broadcast", entries)
    if pattern is not None:
        name, seconds, fps, size = pattern
        yield Case(name, "testsrc", testsrc(work / f"{name}.mp4", seconds, fps, size), "pattern", [])


def summary(rows: list[dict]) -> dict:
    """The tuned clips' totals (with the cut-together videos and the test pattern), and the
    held-out clips' apart (``held_out``)."""
    return {**totals([r for r in rows if r.get("set", "tuned") != "held_out"]),
            "held_out": totals([r for r in rows if r.get("set") == "held_out"])}


def totals(rows: list[dict]) -> dict:
    dives = [r for r in rows if r["variant"] == "as_is" and r["true_entry_s"]]
    without = [r for r in rows if not r["true_entry_s"] and r["variant"] != "testsrc"]  # no dive, or no entry

    def share(selected: list[dict], key: str = "within") -> float | None:
        return round(sum(r.get(key, False) for r in selected) / len(selected), 3) if selected else None

    return {
        "dives": len(dives),
        "found_within_share": share(dives),
        "found_within": sum(r.get("within", False) for r in dives),
        "search_found_within_share": share(dives, "search_within"),
        "search_found_within": sum(r.get("search_within", False) for r in dives),
        "entries_true": sum(len(r["true_entry_s"]) for r in rows if r["how"] != "error"),
        "entries_right": sum(r.get("entries_right", 0) for r in rows),
        "entries_wrong": sum(r.get("entries_wrong", 0) for r in rows),
        "tripod_found_within_share": share([r for r in rows if r["variant"] == "tripod" and r["true_entry_s"]]),
        "cut3_found_within_share": share([r for r in rows if r["variant"] == "cut3"]),
        "detected_right": sum(r.get("within", False) for r in rows if r["how"] == "detected" and r["true_entry_s"]),
        "detected_on_dives": sum(r["how"] == "detected" for r in rows if r["true_entry_s"]),
        "no_dive_detected": sum(r["how"] == "detected" for r in without),
        "no_dive_videos": len(without),
        "testsrc_detected": sum(r["how"] == "detected" for r in rows if r["variant"] == "testsrc"),
        "tolerance_s": TOLERANCE_S,
    }


def measure_rows(clips: list[dict], paths: dict[str, Path], log: Callable[[str], None] = print,
                 **options) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="divescore-footage-") as work:
        for case in cases(clips, paths, Path(work), log, **options):
            row = score(case)
            rows.append(row)
            log("  " + line(row))
    return rows


# -- output -----------------------------------------------------------------------------------

def _fmt(value, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def line(row: dict) -> str:
    true = ", ".join(f"{t:.2f}" for t in row["true_entry_s"]) or "none"
    if row["how"] == "error":
        return f"{row['clip']} {row['variant']}: error {row['error']}"
    verdict = "yes" if row["within"] else "no"
    return (f"{row['clip']} {row['variant']}: {row['how']}, confidence {_fmt(row['confidence'])}, "
            f"found {_fmt(row['found_s'])} s (window end {_fmt(row['window_end_s'])} s), true {true} s: "
            f"within {TOLERANCE_S:g} s {verdict}")


def _how(row: dict) -> str:
    return f"{row['how']} ({row['reason']})" if row.get("reason") else row["how"]


def _entries(row: dict) -> str:
    return ", ".join(f"{e['entry_s']:.2f} ({e['confidence']:.2f})" for e in row.get("entries", [])) or "–"


def markdown(rows: list[dict], totals: dict) -> str:
    from inference import detect

    lines = ["| clip | variant | video s | how | confidence | entry found (s) | window end (s) | true entry (s) "
             "| found − true (s) | within 0.3 s | entries listed (s, confidence) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        true = ", ".join(f"{t:.2f}" for t in r["true_entry_s"]) or "no dive"
        if r["how"] == "error":
            lines.append(f"| {r['clip']} | {r['variant']} | – | error: {r['error']} | – | – | – | {true} | – | no "
                         "| – |")
            continue
        within = "yes" if r["within"] else ("–" if not r["true_entry_s"] else "no")
        lines.append(f"| {r['clip']} | {r['variant']} | {r['video_s']:.2f} | {_how(r)} | {_fmt(r['confidence'])} "
                     f"| {_fmt(r['found_s'])} | {_fmt(r['window_end_s'])} | {true} | {_fmt(r['error_s'])} | {within} "
                     f"| {_entries(r)} |")
    lines += ["", "`entry found` is the search's best entry, trusted (confidence ≥ "
              f"{detect.CONFIDENT:g}) or not, also where the job does not search (`too_short`); `found − true` is "
              "against the nearest true entry; `within` needs a `detected` window.",
              "", f"Real dives as they are whose entry the search finds within {TOLERANCE_S:g} s: "
              f"**{totals['search_found_within']} of {totals['dives']}** ({totals['found_within']} of them scored "
              "`detected`; a clip shorter than the window is scored `whole` by rule, `too_short`); as tripod "
              f"shots: share {_fmt(totals['tripod_found_within_share'])}; "
              f"cut together by three: share {_fmt(totals['cut3_found_within_share'])}. Entries listed: "
              f"{totals['entries_right']} of {totals['entries_true']} true entries found, {totals['entries_wrong']} "
              f"listed where no dive enters. `detected` windows without a dive: "
              f"{totals['no_dive_detected']} of {totals['no_dive_videos']} real videos, "
              f"{totals['testsrc_detected']} on testsrc (both must be 0). `detected` windows on dives that end "
              f"within {TOLERANCE_S:g} s of an entry: {totals['detected_right']} of {totals['detected_on_dives']}."]
    held = totals["held_out"]
    if held["dives"] or held["no_dive_videos"]:
        lines += ["", f"Held out (`set: held_out`: clips found after the search was tuned, used for nothing else): "
                  f"real dives as they are whose entry the search finds within {TOLERANCE_S:g} s: "
                  f"**{held['search_found_within']} of {held['dives']}** ({held['found_within']} scored `detected`); "
                  f"as tripod shots: share {_fmt(held['tripod_found_within_share'])}; `detected` "
                  f"windows on dives right: {held['detected_right']} of {held['detected_on_dives']}; `detected` "
                  f"windows without a dive or entry: {held['no_dive_detected']} of {held['no_dive_videos']} videos "
                  "(must be 0). The rows above with these clips are counted here, not in the lines before."]
    return "\n".join(lines) + "\n"


def run(folder: Path, out: Path | None = RESULTS, log: Callable[[str], None] = print) -> dict:
    """Measure the clips in ``folder``; write ``footage.json`` and ``footage.md`` into ``out``."""
    from bench import machine
    from inference import detect

    clips = load_manifest()
    paths, missing = locate(clips, folder)
    for clip_id, why in missing.items():
        log(f"  {clip_id}: left out ({why})")
    started = datetime.now(UTC).isoformat(timespec="seconds")
    rows = measure_rows(clips, paths, log)
    totals = summary(rows)
    results = {"started_at": started, "machine": machine.describe(), "clips_present": sorted(paths),
               "clips_missing": missing, "settings": {"confident": detect.CONFIDENT,
                                                      "tolerance_s": TOLERANCE_S, "tripod_s": TRIPOD_S,
                                                      "cut_fps": CUT_FPS, "cut_size": list(CUT_SIZE)},
               "summary": totals, "rows": rows}
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "footage.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
        (out / "footage.md").write_text(f"# Real footage ({started})\n\n" + markdown(rows, totals))
        log(f"results: {out / 'footage.json'}, {out / 'footage.md'}")
    return results


def measure(ctx) -> Iterator[Metric]:
    """``make bench``'s ``footage`` section: skipped when no clip is present."""
    paths, _ = locate(load_manifest(), CLIPS)
    if not paths:
        why = f"no real footage in {CLIPS.relative_to(HERE.parent)} (see bench/footage/README.md to bring it)"
        ctx.log(f"  skipped: {why}")
        for spec in SPECS:
            yield spec.skipped(why)
        return
    results = run(CLIPS, out=None, log=ctx.log)
    ctx.series["footage"] = results["summary"]
    totals = results["summary"]
    held = totals["held_out"]
    for spec, counted in ((FOUND_SHARE, totals), (HELD_OUT_FOUND_SHARE, held)):
        if counted["dives"]:
            yield spec.of(counted["search_found_within_share"],
                          f"{counted['search_found_within']} of {counted['dives']} clips; {counted['found_within']} of "
                          "them scored detected (a clip shorter than the window is scored whole: too_short)")
        else:
            yield spec.skipped(f"no such dive clip in {CLIPS.relative_to(HERE.parent)}")
    right, detected = (totals["detected_right"] + held["detected_right"],
                       totals["detected_on_dives"] + held["detected_on_dives"])
    if detected:
        yield DETECTED_RIGHT.of(right / detected, f"{right} of {detected}: every variant, held-out clips included")
    else:
        yield DETECTED_RIGHT.skipped("no detected window on a real dive")
    yield NO_DIVE_DETECTED.of(totals["no_dive_detected"] + held["no_dive_detected"],
                              f"of {totals['no_dive_videos'] + held['no_dive_videos']} videos, held-out ones included")
    yield TESTSRC_DETECTED.of(totals["testsrc_detected"], "20 s 320x240 at 25 fps")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.footage", description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=Path, default=CLIPS, help=f"the clips' folder (default {CLIPS})")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"where footage.json/.md go (default {RESULTS})")
    args = parser.parse_args(argv)
    if not locate(load_manifest(), args.clips)[0]:
        print(f"no clip of {MANIFEST.name} in {args.clips}: see bench/footage/README.md to bring them", file=sys.stderr)
        return 2
    run(args.clips, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The scored window: what finding the entry costs, as a share of the job.

Measured in this process with the function's own scorer (no stack), on three files:

- the large 1080p file of the ``function`` section (x264's default keyframe spacing; ffmpeg's
  test pattern, no dive: what the search makes of it is in the note);
- a generated 1080p dive (``bench.synthetic_dive``), kept in ``.cache/bench/``: the
  detection's cost when there is a dive, and whether it found it;
- the 200 MB phone file (a keyframe a second): the search looks at every candidate (as it
  always does, to list every entry). Its whole pipeline is divided by ffmpeg's full decode of
  the file, as the ``function`` section's phone row is (that row goes through the stack);
- the same file with no search at all (scored ``whole``, as when no entry is given or found): what the
  model and the clips' decoding alone cost on this CPU, the floor under the phone rows.

``detect_s`` (packet scan + fine pass) over ``pipeline_s`` (probe, detection, decoding and the
model): the share of the function's work that goes to choosing the window. The packet scan reads
the MP4's index; the fine pass seeks to the run of 4.5 s around each candidate, the strongest
last.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from unittest import mock

from bench import synthetic_dive, videos
from bench.report import Metric, Spec, at_most
from devstack.harness import ROOT
from divescore.settings import Settings

DETECT_SHARE_BIG = Spec("window_detect_share_big",
                        "finding the entry / whole pipeline, large 1080p file (no dive)", "ratio", at_most(0.15))
DETECT_SHARE_DIVE = Spec("window_detect_share_dive",
                         "finding the entry / whole pipeline, generated dive (1080p in a full run)", "ratio",
                         at_most(0.15))
WORST_CASE_PHONE = Spec("window_worst_case_phone",
                        "200 MB phone file, the search looking at every candidate: pipeline / ffmpeg decode only",
                        "ratio",
                        at_most(0.30))
NO_SEARCH_PHONE = Spec("window_no_search_phone",
                       "200 MB phone file scored whole, no entry search: pipeline / ffmpeg decode only", "ratio")
SPECS = (DETECT_SHARE_BIG, DETECT_SHARE_DIVE, WORST_CASE_PHONE, NO_SEARCH_PHONE)


def dive_scene(quick: bool) -> synthetic_dive.Scene:
    if quick:
        return synthetic_dive.Scene(8.0, 30, 6.0, size=(320, 180), walker=True, seed=16)
    return synthetic_dive.Scene(40.0, 30, 31.3, size=(1920, 1080), walker=True, lighting=True, seed=16)


def dive_video(scene: synthetic_dive.Scene, log) -> Path:
    width, height = scene.size
    path = videos.CACHE / f"dive-{width}x{height}-{scene.name()}.mp4"
    if not path.is_file():
        log(f"  generating {path.name} (kept in {videos.CACHE} for the next run)")
        videos.CACHE.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.partial")
        synthetic_dive.write(scene, partial)
        partial.replace(path)
    return path


def _searched(result) -> str:
    return f"the search decoded {result.detect_read.decoded} frames in {result.detect_read.seeks} seeks"


def _window(result) -> str:
    window = result.window
    return f"window {window.how}" + (f" (confidence {window.confidence:g}, ending at {window.end_s:g} s)"
                                      if window.confidence is not None else "")


def measure(ctx) -> Iterator[Metric]:
    from inference import entry
    from inference.scorer import load_scorer
    from inference.video import VideoLimits

    plan = ctx.plan
    limit = int(Settings().max_upload_bytes * 0.98)
    big = ctx.video(videos.big_1080p(plan.big_seconds, plan.big_bitrate, max_bytes=limit))
    phone = ctx.video(videos.big_1080p(plan.big_seconds, plan.big_bitrate, max_bytes=limit, gop=plan.phone_gop))
    scene = dive_scene(plan.quick)
    dive = dive_video(scene, ctx.log)
    settings = Settings(cache_dir=str(ROOT / ".cache" / "weights"))
    scorer = load_scorer(settings)
    limits = VideoLimits.from_settings(settings)
    figures = ctx.series["window"] = {}

    result = scorer.score(big, limits)
    timings = result.timings
    figures["big"] = {"timings": timings, "window": result.window.as_dict()}
    yield DETECT_SHARE_BIG.of(
        timings["detect_s"] / timings["pipeline_s"],
        (f"{big.stat().st_size / 1e6:.0f} MB, {result.video.frames} frames: detection {timings['detect_s']:.2f} s of "
         f"{timings['pipeline_s']:.2f} s (model {timings['inference_s']:.2f} s); {_window(result)}; "
         f"{_searched(result)}"),
    )

    result = scorer.score(dive, limits)
    timings = result.timings
    window = result.window.as_dict()
    figures["dive"] = {"timings": timings, "window": window, "entry_frame": scene.entry_frame}
    found = (f"{window['how']}, end frame {window['end_frame']} vs entry {scene.entry_frame}"
             + (f", confidence {window['confidence']}" if "confidence" in window else ""))
    yield DETECT_SHARE_DIVE.of(
        timings["detect_s"] / timings["pipeline_s"],
        (f"{scene.size[0]}x{scene.size[1]}, {result.video.frames} frames at {scene.fps:g} fps: detection "
         f"{timings['detect_s']:.2f} s of {timings['pipeline_s']:.2f} s; {found}; {_searched(result)}"),
    )

    floor = ctx.series.get("function", {}).get("phone_decode_floor_s") or min(
        videos.decode_seconds(phone) for _ in range(plan.decode_repeats))
    result = scorer.score(phone, limits)
    timings = result.timings
    figures["phone_worst_case"] = {"timings": timings, "window": result.window.as_dict(), "decode_floor_s": floor}
    yield WORST_CASE_PHONE.of(
        timings["pipeline_s"] / floor,
        (f"{phone.stat().st_size / 1e6:.0f} MB: pipeline {timings['pipeline_s']:.2f} s (detection "
         f"{timings['detect_s']:.2f} s = {timings['detect_s'] / floor:.2f} of the decode, model "
         f"{timings['inference_s']:.2f} s) vs ffmpeg -f null {floor:.1f} s; "
         f"{_window(result)}; {_searched(result)}"),
    )

    with mock.patch.object(entry, "search", return_value=[]):  # nothing found: the whole video
        result = scorer.score(phone, limits)
    timings = result.timings
    figures["phone_no_search"] = {"timings": timings, "window": result.window.as_dict(), "decode_floor_s": floor}
    yield NO_SEARCH_PHONE.of(
        timings["pipeline_s"] / floor,
        (f"{phone.stat().st_size / 1e6:.0f} MB: pipeline {timings['pipeline_s']:.2f} s (model "
         f"{timings['inference_s']:.2f} s, {result.read.decoded} frames decoded) vs ffmpeg -f null {floor:.1f} s; "
         f"{_window(result)}"),
    )

"""``divescore predict VIDEO``: score a local video file with the function's own pipeline
(same frame selection, preprocessing, model and dtype), no AWS involved. With
``--all-entries``, every entry the search lists is scored, one result each."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from client.report import WHOLE_BECAUSE, describe_entries
from divescore.settings import MODEL_DTYPES, load_or_exit


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("video", type=Path, help="the video file to score")
    parser.add_argument("--weights", metavar="DIR",
                        help="folder of MTL-AQA checkpoints (model_CNN_*.pth, ...); default: DIVESCORE_MODEL_DIR, "
                             "else generated untrained weights")
    parser.add_argument("--dtype", choices=MODEL_DTYPES,
                        help="backbone dtype (default: DIVESCORE_MODEL_DTYPE, float32)")
    parser.add_argument("--entry", type=float, metavar="SECONDS",
                        help="when the diver enters the water: score the window ending there (default: find it)")
    parser.add_argument("--all-entries", action="store_true",
                        help="score the window ending at each entry found (a video of several dives), one result "
                             "per entry")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    if not args.video.is_file():
        print(f"divescore predict: {args.video}: no such file", file=sys.stderr)
        return 2
    if args.entry is not None and not args.entry >= 0:
        print("divescore predict: --entry is when the diver enters the water, in seconds from the video's "
              "start (0 or more)", file=sys.stderr)
        return 2
    if args.entry is not None and args.all_entries:
        print("divescore predict: give --entry or --all-entries, not both", file=sys.stderr)
        return 2
    overrides = {"model_dir": args.weights} if args.weights else {}
    if args.dtype:
        overrides["model_dtype"] = args.dtype
    settings = load_or_exit("divescore predict", **overrides)

    from inference.errors import BadInput, EntryAfterEnd
    from inference.video import VideoLimits

    if args.entry is not None:
        # Refused before the model loads: an entry past the video's end, as a job refuses it.
        try:
            check_entry_fits(args.video, args.entry, VideoLimits.from_settings(settings))
        except EntryAfterEnd as err:
            print(f"divescore predict: {args.video}: {err.message.replace('give an entry', 'give --entry')}",
                  file=sys.stderr)
            return 2
        except BadInput:
            pass  # the scorer refuses it below, with its own code

    # Imported here: torch takes a second to import, and other subcommands never need it.
    from inference.scorer import load_scorer
    from inference.weights import WeightsError

    limits = VideoLimits.from_settings(settings)
    try:
        scorer = load_scorer(settings)
        result = scorer.score(args.video, limits, entry_s=args.entry)
        # the job's window is the most confident entry's: each other entry gets its own
        others = [dataclasses.replace(scorer.score(args.video, limits, found=found), entries=result.entries)
                  for found in result.entries if args.all_entries and found.time_s != result.window.entry_s]
    except WeightsError as err:
        print(f"divescore predict: {err}", file=sys.stderr)
        return 2
    except BadInput as err:
        if args.json:
            print(json.dumps({"error": {"code": err.code, "message": err.message}}))
        else:
            print(f"divescore predict: {err.code}: {err.message}", file=sys.stderr)
        return 1

    if not args.all_entries:
        if args.json:
            print(json.dumps(as_json(result, scorer.model_info)))
        else:
            print(report(result, scorer.model_info, scorer.weights.description))
        return 0
    results = sorted([result, *others], key=lambda r: r.window.entry_s or 0.0)
    if args.json:
        print(json.dumps({"entries": [found.as_dict() for found in result.entries],
                          "results": [as_json(r, scorer.model_info) for r in results]}))
        return 0
    print(f"{len(result.entries)} entries found")
    for r in results:
        heading = f"-- entry at {r.window.entry_s:.2f} s --\n" if r.window.entry_s is not None else ""
        print(f"\n{heading}{report(r, scorer.model_info, scorer.weights.description)}")
    return 0


def as_json(result, model: dict) -> dict:
    """A result as ``--json`` prints it: the job record's fields, and the entries listed."""
    fields = {k: v for k, v in dataclasses.asdict(result).items()
              if k not in ("filmstrip", "video", "window", "entries")}
    return {**fields, "video": result.video.as_dict(), "window": result.window.as_dict(),
            "entries": [found.as_dict() for found in result.entries], "model": model}


def check_entry_fits(video: Path, entry_s: float, limits) -> None:
    """Raises :class:`inference.errors.EntryAfterEnd` when ``entry_s`` is past the video's end
    (or another :class:`~inference.errors.BadInput` when the file is not a video it can read)."""
    from inference.video.probe import open_video, probe
    from inference.window import check_entry

    container = open_video(video)
    try:
        info = probe(container, limits)
    finally:
        container.close()
    check_entry(entry_s, info.frames / info.fps)


def describe_window(window: dict) -> str:

    if window["how"] == "whole":
        return f"whole video ({WHOLE_BECAUSE[window['reason']]}): clips spread evenly"
    found = f", confidence {window['confidence']:.2f}" if "confidence" in window else ""
    text = (f"{window['how']}{found}: {window['start_s']:.2f}-{window['end_s']:.2f} s, frames "
            f"{window['start_frame']}-{window['end_frame']}, sampled at {window['fps']:g} fps")
    return text + (f" ({window['shifted']})" if window.get("shifted") else "")


def report(result, model: dict, description: str) -> str:

    video = result.video
    starts = ", ".join(str(result.frames[i]) for i in range(0, len(result.frames), 16))
    lines = [
        f"score        {result.score:.4f}",
        f"clip scores  {', '.join(f'{s:.2f}' for s in result.clip_scores)}",
        (f"model        {model['name']}, weights {model['weights']}, {model['dtype']}, "
         f"calibrated: {str(model['calibrated']).lower()}"),
        (f"video        {video.width}x{video.height}, {video.frames} frames at {video.fps:g} fps "
         f"({video.duration_seconds:.2f} s), {video.codec or 'unknown codec'}"),
        f"window       {describe_window(result.window.as_dict())}",
        "entries      " + (describe_entries([e.as_dict() for e in result.entries]) or "none listed"),
        f"clips        6 x 16 frames starting at frames {starts}",
        "timings      " + ", ".join(f"{k.removesuffix('_s')} {v:.2f} s" for k, v in result.timings.items()),
    ]
    if result.dive_probability is not None:
        lines.append(f"dive gate    p(diving) = {result.dive_probability:.3f}")
    if not model["calibrated"]:
        lines.append(f"WARNING      {description}")
    return "\n".join(lines)

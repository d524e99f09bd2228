"""Where the diver enters the water in a video file: :mod:`inference.detect`'s two passes over
what :mod:`inference.packets` and :mod:`inference.video` read."""

from __future__ import annotations

import contextlib
from pathlib import Path

from inference import detect, packets
from inference.video import VideoInfo, read_frames


def locate(path: str | Path, info: VideoInfo, read=read_frames) -> detect.Entry | None:
    """The most likely entry (with its confidence), or None when nothing in the video looks
    like one. Asks ``read(path, indices, expected_frames)`` (``(index, BGR frame)`` pairs)
    only for the frames around the coarse pass's candidates: a reader that seeks to runs of
    wanted frames decodes just those; today's sequential reader decodes up to the last one."""
    sizes, keyframes = packets.sizes(path)
    found = detect.candidates(detect.activity(sizes, keyframes, info.fps), info.fps)
    runs = detect.runs_around(found, info.fps, info.frames)
    small = {}
    with contextlib.closing(read(path, [i for run in runs for i in run], info.frames)) as frames:
        for index, frame in frames:
            small[index] = detect.small_gray(frame)
    return detect.best([detect.find_entry([i / info.fps for i in run], [small[i] for i in run]) for run in runs])

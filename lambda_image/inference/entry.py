"""Where the diver enters the water in a video: :mod:`inference.detect`'s two passes over
what :mod:`inference.packets` and :mod:`inference.video` read, from a path or a seekable
file object (an S3 object read through ranged GETs)."""

from __future__ import annotations

from collections.abc import Callable

from inference import detect, packets
from inference.video import ReadStats, Source, VideoInfo, read_runs


def locate(source: Source, info: VideoInfo, read=read_runs, stats: ReadStats | None = None,
           on_frame: Callable[[], None] = lambda: None) -> detect.Entry | None:
    """The most likely entry (with its confidence), or None when nothing in the video looks
    like one. The coarse pass reads packet sizes (from the container's index when it has one);
    ``read(source, runs, info, gray_size=..., stats=...)`` (:func:`inference.video.read_runs`)
    then decodes only the short runs around the coarse pass's candidates, each from the
    keyframe before it, as small grayscale frames. ``on_frame()`` is called after each of them
    (the worker's cancel check: it may raise to stop the search)."""
    sizes, keyframes = packets.sizes(source, info.frames)
    found = detect.candidates(detect.activity(sizes, keyframes, info.fps), info.fps)
    runs = detect.runs_around(found, info.fps, info.frames)
    small = {}
    for frame in read(source, runs, info, gray_size=detect.small_size(info.width, info.height), stats=stats):
        small[frame.index] = frame.image
        on_frame()
    return detect.best([detect.find_entry([i / info.fps for i in run], [small[i] for i in run]) for run in runs])

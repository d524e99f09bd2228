"""Where the diver enters the water in a video: :mod:`inference.detect`'s two passes over
what a job's :class:`inference.video.RunReader` reads (packet sizes, then small frames), from
a path or a seekable file object (an S3 object read through ranged GETs)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from inference import detect
from inference.video import RunReader, runs_of

# The search keeps the frames of the last run it decodes, up to this many bytes (about 120
# frames of 1080p, 4.8 s at 25 fps; 30 of 4K), for the window that ends in them: they are not
# decoded twice.
KEPT_FRAME_BYTES = 384 << 20


def search(frames: RunReader, on_frame: Callable[[], None] = lambda: None) -> list[detect.Entry]:
    """Every entry the fine pass finds, whatever its confidence, in time order (one per splash:
    :func:`detect.distinct`); none when nothing in the video looks like one. The coarse pass
    reads packet sizes (from the container's index when it has one); ``frames`` then decodes
    the short run around each candidate as small grayscale frames, each from the keyframe
    before it (frames two runs share are decoded once), in time order, but the strongest
    candidate's run last: its frames are the ones kept for the window (up to ``KEPT_FRAME_BYTES``),
    as the strongest is the likeliest entry to be scored. ``on_frame()`` is called after each
    frame (the worker's cancel check: it may raise to stop the search)."""
    info = frames.info
    sizes, keyframes = frames.packet_sizes()
    found = detect.candidates(detect.activity(sizes, keyframes, info.fps), info.fps)
    size = detect.small_size(info.width, info.height)
    small: dict[int, np.ndarray] = {}
    entries = []
    # In time order, so the object is read forwards, but the strongest last.
    strongest = found[:1]
    for candidate in sorted(found[1:], key=lambda c: c.time_s) + strongest:
        run = detect.run_around(candidate, info.fps, info.frames)
        for frame in frames.read(runs_of(i for i in run if i not in small), gray_size=size,
                                 keep_bytes=KEPT_FRAME_BYTES):
            small[frame.index] = frame.image
            on_frame()
        entries.append(detect.find_entry([i / info.fps for i in run], [small[i] for i in run]))
    return detect.distinct(entries)

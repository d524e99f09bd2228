"""Reading test videos through the function's one way in, :class:`inference.video.RunReader`,
for tests that check what a file holds or which frames it gives rather than how a job reads it.

    probe(source, limits=LIMITS)                 # the VideoInfo a job's probe finds (or its error)
    read(source, runs, info, seek=..., stats=...)  # the frames of runs, from a reader of its own
    read_frames(path, indices, expected_frames)  # (index, BGR image) pairs, any length of video
    packet_sizes(source)                         # the entry search's packet sizes, after a probe
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import numpy as np

from inference.video import Frame, RunReader, Source, VideoInfo, VideoLimits, runs_of

LIMITS = VideoLimits(max_seconds=600, max_pixels=3840 * 2160, min_frames=16)
ANY_LENGTH = dataclasses.replace(LIMITS, min_frames=1)


def probe(source: Source, limits: VideoLimits = LIMITS) -> VideoInfo:
    with RunReader.probed(source, limits) as reader:
        return reader.info


def read(source: Source, runs: Iterable[range], info: VideoInfo, **options) -> list[Frame]:
    """Each frame of ``runs`` once, in increasing index order; ``options`` as for :class:`RunReader`."""
    with RunReader(source, info, **options) as reader:
        return list(reader.read(runs))


def read_frames(path: Source, indices: Iterable[int], expected_frames: int | None = None,
                ) -> list[tuple[int, np.ndarray]]:
    """``(index, frame)`` for each wanted index, in increasing order. ``expected_frames``: the
    count the file is taken to announce, in place of the probe's (a stream that ends before it)."""
    info = probe(path, ANY_LENGTH)
    if expected_frames is not None:
        info = dataclasses.replace(info, frames=expected_frames)
    return [(frame.index, frame.image) for frame in read(path, runs_of(indices), info)]


def packet_sizes(source: Source, limits: VideoLimits = LIMITS) -> tuple[np.ndarray, np.ndarray]:
    with RunReader.probed(source, limits) as reader:
        return reader.packet_sizes()

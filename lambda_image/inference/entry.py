"""Where the diver enters the water in a video: :mod:`inference.detect`'s two passes over
what a job's :class:`inference.video.RunReader` reads (packet sizes, then small frames), with
:mod:`inference.water`'s cue and :mod:`inference.detect`'s splash in the second, from a path
or a seekable file object (an S3 object read through ranged GETs)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np

from inference import detect, follow, water
from inference.video import RunReader, runs_of

# The search keeps the frames of the last run it decodes, up to this many bytes (about 120
# frames of 1080p, 4.8 s at 25 fps; 30 of 4K), for the window that ends in them: they are not
# decoded twice.
KEPT_FRAME_BYTES = 384 << 20
# A video this short is looked at whole for the camera's arrival at the water, as well as run by
# run: a candidate's run is about as long, and the coarse pass may make no candidate in it.
WHOLE_VIDEO_S = 6.0


def search(frames: RunReader, on_frame: Callable[[], None] = lambda: None) -> list[detect.Entry]:
    """Every entry the fine pass finds, whatever its confidence, in time order (one per splash:
    :func:`detect.distinct`); none when nothing in the video looks like one.

    The coarse pass reads packet sizes (from the container's index when it has one);
    ``frames`` then decodes the short run around each candidate as small grayscale and colour
    frames, each from the keyframe before it (frames two runs share are decoded once), in time
    order, but the strongest candidate's run last: its frames are the ones kept for the window
    (up to ``KEPT_FRAME_BYTES``), as the strongest is the likeliest entry to be scored. A video
    no longer than ``WHOLE_VIDEO_S`` is read whole first. In a run where the camera arrives at the
    water (:func:`water.arrival`: footage that follows the diver down) the entry is that
    arrival, placed later where the camera still follows the diver after it
    (:func:`follow.settle`), and the run is read on (``water.MORE_S``) when it ends while the
    water is still coming in or the camera still following; elsewhere it is the splash
    :func:`detect.find_entry` finds, unless that lies where the coarse pass makes no candidate
    around a scene cut (:func:`detect.around_a_cut`).
    ``on_frame()`` is called after each frame (the worker's cancel check: it may raise to stop
    the search)."""
    info = frames.info
    size = detect.small_size(info.width, info.height)
    thumb = water.thumb_size(info.width, info.height)
    small: dict[int, np.ndarray] = {}
    shares: dict[int, float] = {}
    sprays: dict[int, float] = {}
    speeds: dict[tuple[float, float], float] = {}  # the camera's, measured once for all runs

    def read(run: range, on: bool = False) -> None:
        # a run read ``on`` asks again for the frames it has (the reader holds them, kept for
        # the window), so that the frames kept are still the whole run's
        wanted = [run] if on else runs_of(i for i in run if i not in small)
        if not wanted:  # (a read lets go of the frames kept by the one before)
            return
        for frame in frames.read(wanted, gray_size=size, colour_size=thumb, keep_bytes=KEPT_FRAME_BYTES):
            if frame.index not in small:
                small[frame.index] = frame.image
                shares[frame.index], sprays[frame.index] = water.shares(frame.colour)
                on_frame()

    def read_on(run: range) -> range:
        more = range(run.start, min(info.frames, run.stop + round(water.MORE_S * info.fps)))
        read(more, on=True)
        return more

    def arrival(run: range) -> detect.Entry | None:
        # the camera's arrival at the water in ``run``, as its motion after it places it; read
        # on where the run ends while the camera still follows the diver
        arrived = _arrival(run, shares, sprays, info.fps)
        if arrived is None:
            return None
        settled = _settled(arrived, run, small, speeds, info.fps)
        if settled is None and run.stop < info.frames:
            settled = _settled(arrived, read_on(run), small, speeds, info.fps)
        return settled or dataclasses.replace(arrived, confidence=0.0)  # the diver not seen to go in

    sizes, keyframes = frames.packet_sizes()
    cuts = detect.scene_cuts(keyframes)
    entries = []
    whole = info.frames <= WHOLE_VIDEO_S * info.fps
    if whole:
        read(range(info.frames))
        entries.append(arrival(range(info.frames)))
    for run in _runs(sizes, keyframes, info.fps, info.frames):
        read(run)
        arrived = arrival(run)
        if arrived is None and not whole and run.stop < info.frames and water.still_coming(
                [i / info.fps for i in run], [shares[i] for i in run], [sprays[i] for i in run]):
            arrived = arrival(read_on(run))
        splash = None if arrived else detect.find_entry([i / info.fps for i in run], [small[i] for i in run])
        if splash is not None and detect.around_a_cut(splash.time_s, cuts, info.fps):
            splash = None
        entries.append(arrived or splash)
    return detect.distinct(water.without_flights([e for e in entries if e is not None]))


def _arrival(run: range, shares: dict[int, float], sprays: dict[int, float], fps: float) -> detect.Entry | None:
    return water.arrival([i / fps for i in run], [shares[i] for i in run], [sprays[i] for i in run])


def _settled(arrived: detect.Entry, run: range, small: dict[int, np.ndarray],
             speeds: dict[tuple[float, float], float], fps: float) -> detect.Entry | None:
    return follow.settle(arrived, [i / fps for i in run], [small[i] for i in run], speeds)


def _runs(sizes: Sequence[int], keyframes: Sequence[bool], fps: float, frame_count: int) -> list[range]:
    """The runs the fine pass reads: the run around each candidate of the coarse pass, in time
    order but the strongest last."""
    found = detect.candidates(detect.activity(sizes, keyframes, fps), fps)
    # In time order, so the object is read forwards, but the strongest last.
    ordered = sorted(found[1:], key=lambda c: c.time_s) + found[:1]
    return [detect.run_around(candidate, fps, frame_count) for candidate in ordered]

"""Which stretch of the video the model scores: plain functions from an entry time (or none)
to frame-index clips. No I/O; :mod:`inference.scorer` reads the frames.

MTL-AQA trained C3D-AVG on the **103 frames ending at the diver's entry into the water**,
of which the network saw the first 96 as 6 clips of 16. Its videos are broadcast footage at
about 25-30 fps; we take the window in seconds, 103 frames at ``TRAINING_FPS`` (4.12 s), and
pick for each of its instants the video's nearest frame, so a 60 fps or 100 fps video shows
the model the motion of 25 fps footage (frames are dropped or repeated, never blended).

- ``given``: the person said when the entry is (``entry_s``);
- ``detected``: :mod:`inference.detect` found it with at least ``detect.CONFIDENT``;
- ``whole``: no entry: the six clips spread evenly over the whole video at its own frame rate
  (:func:`inference.preprocess.plan_clips`), for a ``reason``: ``no_dive_found`` (the search
  found no entry it can back) or ``too_short`` (the video is no longer than the window, so it
  is about one dive and is scored whole; no search runs, as any entry in it would give a
  window over the whole video all the same).
"""

from __future__ import annotations

import dataclasses
import math

from inference import preprocess
from inference.errors import EntryAfterEnd

TRAINING_FPS = 25.0
SAMPLE_FRAMES = 103  # MTL-AQA's sample_length
SECONDS = (SAMPLE_FRAMES - 1) / TRAINING_FPS  # first to last instant: 4.08 s

NO_DIVE_FOUND = "no_dive_found"
TOO_SHORT = "too_short"


@dataclasses.dataclass(frozen=True)
class Window:
    how: str  # "detected" | "given" | "whole"
    start_s: float
    end_s: float
    fps: float  # the rate the clips show the video at
    frames: tuple[int, ...]  # the video's frame for each instant of the window, in order
    video_s: float  # the whole video's duration, to place the window in it
    confidence: float | None = None  # when detected
    shifted: str | None = None  # why the window does not end at the entry (it starts at the video's start)
    entry_s: float | None = None  # given and detected: the entry the window is built on
    reason: str | None = None  # whole: NO_DIVE_FOUND or TOO_SHORT

    @property
    def start_frame(self) -> int:
        return self.frames[0]

    @property
    def end_frame(self) -> int:
        return self.frames[-1]

    def clips(self) -> list[list[int]]:
        """6 clips of 16 from the window's start, as in training."""
        if self.how == "whole":
            return preprocess.plan_clips(len(self.frames))
        n = preprocess.CLIP_FRAMES
        return [list(self.frames[i * n:(i + 1) * n]) for i in range(preprocess.CLIPS)]

    def as_dict(self) -> dict:
        record = {"how": self.how, "start_frame": self.start_frame, "end_frame": self.end_frame,
                  "start_s": round(self.start_s, 3), "end_s": round(self.end_s, 3), "fps": round(self.fps, 3),
                  "video_s": round(self.video_s, 3)}
        if self.confidence is not None:
            record["confidence"] = round(self.confidence, 3)
        if self.shifted is not None:
            record["shifted"] = self.shifted
        if self.entry_s is not None:
            record["entry_s"] = round(self.entry_s, 3)
        if self.reason is not None:
            record["reason"] = self.reason
        return record


def check_entry(entry_s: float, duration_s: float) -> None:
    """Raises :class:`EntryAfterEnd` for an entry later than the video's end (``duration_s``)."""
    if entry_s > duration_s + 1e-6:
        raise EntryAfterEnd(
            f"The entry at {entry_s:g} s is past the end of the video, which lasts {duration_s:.2f} s: "
            f"give an entry from 0 to {duration_s:.2f} s, or none to have it found.")


def ending_at(entry_s: float, video_fps: float, frame_count: int, how: str,
              confidence: float | None = None) -> Window:
    """The training window whose last instant is ``entry_s``; :class:`EntryAfterEnd` when
    ``entry_s`` is past the video's end.

    An entry earlier than the window's length shifts the window to the video's start (it then
    ends after the entry, and ``shifted`` says so); the window never ends after the video (a
    video shorter than the window repeats its last frame).
    """
    duration = frame_count / video_fps
    check_entry(entry_s, duration)
    entry_s = max(entry_s, 0.0)
    start_s = max(0.0, entry_s - SECONDS)
    shifted = None
    if entry_s - start_s < SECONDS - 1e-9:
        shifted = (f"the entry at {entry_s:.2f} s is earlier than the window's length ({SECONDS:.2f} s): the "
                   f"window starts at the video's start, not {SECONDS:.2f} s before the entry")
    end_s = min(start_s + SECONDS, duration)
    frames = tuple(_nearest_frame(start_s + k / TRAINING_FPS, video_fps, frame_count) for k in range(SAMPLE_FRAMES))
    return Window(how, start_s, end_s, TRAINING_FPS, frames, duration, confidence, shifted, entry_s=entry_s)


def _nearest_frame(t: float, video_fps: float, frame_count: int) -> int:
    # frame i is shown from i/fps; the small offset keeps exact instants (k/25 at 50 fps) exact
    return min(frame_count - 1, max(0, math.floor(t * video_fps + 1e-6)))


def is_too_short(frame_count: int, video_fps: float) -> bool:
    """A video no longer than the window: about one dive, scored whole."""
    return frame_count / video_fps <= SECONDS + 1e-9


def whole(frame_count: int, video_fps: float, reason: str) -> Window:
    """The whole video, at its own rate, for ``reason`` (``NO_DIVE_FOUND`` or ``TOO_SHORT``)."""
    duration = frame_count / video_fps
    return Window("whole", 0.0, duration, video_fps, tuple(range(frame_count)), duration, reason=reason)

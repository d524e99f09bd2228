"""A camera that follows the diver down slows as the diver enters: where the water cue of
:mod:`inference.water` has the frame filled with water while the camera still moves at the
speed it followed the diver with, the diver is still in the air.

A broadcast camera tilts down with the diver and arrives at the water with them, so the frame
filling with water places the entry. A camera high above the pool sees only water behind the
diver for the last part of the fall: the frame fills with water early, while the camera keeps
following, and it slows only as the diver goes in. So around an arrival the camera's speed
(how far the picture moves over ``STEP_S``, in frame heights a second) is measured from each
frame: when it still moves at ``HOLDING`` of its top speed ``STILL_S`` after the arrival, the
entry is where it first falls below that. A camera whose motion cannot be measured (too few
points move together: a dark, overlaid or featureless picture) leaves the arrival as it is.

The speed is the translation shared by most tracked points between two small grayscale
frames (corners tracked with pyramidal Lucas-Kanade, a similarity fitted with RANSAC): the
water's ripples and lane lines move with the camera, while the diver it follows stays put,
which the fit leaves out as outliers.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import cv2
import numpy as np

from inference.detect import Entry

STEP_S = 0.1  # the camera's speed is measured between frames this far apart
TOP_FROM_S = 0.3  # its top speed: the fastest from this long before the arrival ...
STILL_S = 0.3  # ... to this long after it, when it is still moving at
HOLDING = 0.85  # ... this share of that speed or more: the camera still follows a diver in the air
TRACKED = 20  # a speed is measured only where at least this many points move together
CORNERS = 300  # corners looked for in each frame


def speed(first: np.ndarray, second: np.ndarray, seconds: float) -> float:
    """How fast the picture moves from grayscale frame ``first`` to ``second``, ``seconds``
    apart, in frame heights a second; NaN where fewer than ``TRACKED`` points agree."""
    corners = cv2.goodFeaturesToTrack(first, CORNERS, 0.01, 3)
    if corners is None or len(corners) < TRACKED:
        return math.nan
    moved, found, _ = cv2.calcOpticalFlowPyrLK(first, second, corners, None, winSize=(15, 15), maxLevel=3)
    found = found.ravel() == 1
    if found.sum() < TRACKED:
        return math.nan
    fit, agree = cv2.estimateAffinePartial2D(corners[found], moved[found], method=cv2.RANSAC,
                                             ransacReprojThreshold=1.0)
    if fit is None or int(agree.sum()) < TRACKED:
        return math.nan
    return float(math.hypot(fit[0, 2], fit[1, 2]) / first.shape[0] / seconds)


def settle(arrival: Entry, times: Sequence[float], frames: Sequence[np.ndarray],
           measured: dict[tuple[float, float], float] | None = None) -> Entry | None:
    """``arrival`` (the water cue's entry among ``frames``, grayscale, shown at ``times``) as
    the camera's motion places it: as it is where the camera has slowed ``STILL_S`` after it
    (or its speed cannot be measured), moved to where the camera first moves slower than
    ``HOLDING`` of its top speed where it was still following the diver then; None where it
    still follows the diver at the last of ``frames`` (the caller reads on, or cannot tell).
    ``measured`` keeps the speeds found, by the two frames' times, for the next call on frames
    of the same video (overlapping runs, a run read on)."""
    times = np.asarray(times, np.float64)
    step = max(1, round(STEP_S / float(np.median(np.diff(times)))))
    at = int(np.searchsorted(times, arrival.time_s - 1e-6))
    starts = range(max(0, int(np.searchsorted(times, arrival.time_s - TOP_FROM_S - 1e-6))), len(times) - step)
    still = int(np.searchsorted(times, arrival.time_s + STILL_S - 1e-6))
    if still not in starts:
        return arrival
    measured = {} if measured is None else measured

    def at_step(i: int) -> float:
        pair = (float(times[i]), float(times[i + step]))
        if pair not in measured:
            measured[pair] = speed(frames[i], frames[i + step], pair[1] - pair[0])
        return measured[pair]

    up_to_still = [at_step(i) for i in starts if i <= still]
    if math.isnan(at_step(still)) or all(math.isnan(v) for v in up_to_still):
        return arrival
    top = float(np.nanmax(up_to_still))
    if at_step(still) < HOLDING * top:
        return arrival
    for i in range(still + 1, starts.stop):
        if at_step(i) < HOLDING * top:
            features = {**arrival.features, "followed_s": round(float(times[i] - times[at]), 3)}
            return dataclasses.replace(arrival, time_s=float(times[i]), features=features)
    return None

"""The broadcast camera arriving at the water: an entry cue for footage that follows the diver.

A broadcast camera (and a hand that films like one) follows the diver down from the platform
or board and arrives at the pool as the diver does: the frame, that held the stands, the
board or the sky, fills with water within a few frames of the entry and stays water while the
splash settles. The splash itself says little on real footage: a good entry makes almost
none, and the camera's own tilt changes more of the frame than the diver does. So where a run
shows the frame filling with water, the entry is where it has filled; a run without that (a
fixed camera, the whole pool in view from the first frame, an underwater camera) is left to
the splash search of :mod:`inference.detect`.

Water is a pool's colour: a cyan-to-blue hue, well saturated (``WATER_HUE``,
``WATER_SATURATION``), which white spray, skin, a grey deck and the stands are not; hue and
saturation do not follow the light's brightness. Once the camera is there, the splash may turn
part of that water white (``SPRAY_SATURATION``, ``SPRAY_VALUE``: a flat landing's spray takes a
fifth of the frame), and spray is water too. Black letterbox bars are not counted at all.
Plain functions over small colour frames, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from inference.detect import SAME_ENTRY_S, Entry

THUMB_WIDTH = 48  # the water share is read from frames this many pixels wide
WATER_HUE = (85, 130)  # a water pixel: its hue (OpenCV's half degrees) from cyan to blue ...
WATER_SATURATION = 90  # ... and saturated at least this much (of 255)
SPRAY_SATURATION = 60  # a spray pixel: saturated less than this ...
SPRAY_VALUE = 180  # ... and at least this bright (of 255)
BLACK = 24  # a pixel darker than this (of 255) is a letterbox bar or a shadow: not counted
PICTURE = 0.1  # a frame with less than this share of pixels not black says nothing of the water
FILLED = 0.75  # the frame is water when at least this share of it is
RISEN_FROM = 0.5  # ... after a frame with at most this share of water ...
RISE_S = 1.5  # ... no longer than this before
ARRIVED = 0.9  # the camera has arrived when the share reaches this part of the highest share that follows
HOLD_S = 0.5  # ... which stays water for at least this long
MORE_S = 1.5  # a run that ends while the water is coming in (its share rising by ...
RISING = 0.2  # ... this much over RISE_S) is read on this much further
FLIGHT_S = 4.0  # a splash found less than this before an arrival is the diver the camera followed


def thumb_size(width: int, height: int) -> tuple[int, int]:
    """The colour frames' size for an upright ``width`` x ``height`` video."""
    return THUMB_WIDTH, max(8, round(THUMB_WIDTH * height / width))


def shares(bgr: np.ndarray) -> tuple[float, float]:
    """The shares of a small BGR frame that are water and that are white as spray and foam are
    (and a white wall, a shirt: :func:`arrival` counts it only where the frame has just been
    water), letterbox bars left out; both NaN for a frame with almost no picture (less than
    ``PICTURE`` of it: a black frame, a fade from black), which shows neither water nor
    anything else."""
    hue, saturation, value = cv2.split(cv2.cvtColor(bgr, cv2.COLOR_BGR2HSV))
    picture = value >= BLACK
    if picture.mean() < PICTURE:
        return math.nan, math.nan
    water = (hue >= WATER_HUE[0]) & (hue <= WATER_HUE[1]) & (saturation >= WATER_SATURATION) & picture
    spray = (saturation < SPRAY_SATURATION) & (value >= SPRAY_VALUE) & picture
    return float(water.sum() / picture.sum()), float(spray.sum() / picture.sum())


def arrival(times: Sequence[float], shares: Sequence[float],
            sprays: Sequence[float] | None = None) -> Entry | None:
    """Where the frame, having been mostly not water, has filled with water that stays, as an
    entry: the first frame whose share of water reaches ``ARRIVED`` of the share it reaches
    over the ``HOLD_S`` from it (its highest: a slow-motion replay is still filling the frame
    half a second on), when it holds at least ``FILLED`` and so does every frame of those,
    counting the share of spray (``sprays``, of :func:`shares`) as water, the
    share was ``RISEN_FROM`` or less within ``RISE_S`` before, and some frame between shows
    the water part way in (a black frame, whose share is NaN, is neither water nor not: a fade
    from black onto the pool is no arrival). None when the run shows no such arrival. The
    confidence is the part of the frame the water took over."""
    times = np.asarray(times, np.float64)
    shares = np.asarray(shares, np.float64)
    wet = shares + (np.asarray(sprays, np.float64) if sprays is not None else 0.0)
    if len(times) < 4:
        return None
    step = float(np.median(np.diff(times)))
    hold, rise = max(2, round(HOLD_S / step)), max(1, round(RISE_S / step))
    for i in range(1, len(shares) - hold + 1):
        if np.isnan(shares[i: i + hold]).any():  # a black frame in the hold: not known to be water
            continue
        level = float(shares[i: i + hold].max())
        if shares[i] < FILLED or wet[i: i + hold].min() < FILLED or shares[i] < ARRIVED * level:
            continue
        low = np.flatnonzero(shares[max(0, i - rise): i] <= RISEN_FROM)
        if not len(low):
            continue
        between = shares[max(0, i - rise) + int(low[-1]) + 1: i]
        # a camera sweeps the water in: some frame on the way shows part of it (a cut, a
        # light switched on or a lens uncovered bring it in one step)
        if not ((between > RISEN_FROM) & (between < ARRIVED * level)).any():
            continue
        before = float(np.nanmin(shares[max(0, i - rise): i]))
        taken = (level - before) / level
        return Entry(float(times[i]), round(min(1.0, taken), 3),
                     {"water_before": round(before, 3), "water_after": round(level, 3)}, cue="water")
    return None


def still_coming(times: Sequence[float], shares: Sequence[float],
                 sprays: Sequence[float] | None = None) -> bool:
    """Whether a run ends while the water is coming in: it shows no arrival yet
    (:func:`arrival`), and its share of water rose by ``RISING`` or more over its last
    ``RISE_S``."""
    if len(shares) < 2:
        return False
    step = float(np.median(np.diff(np.asarray(times, np.float64))))
    recent = np.asarray(shares[-max(2, round(RISE_S / step)):], np.float64)
    return bool(recent[-1] - recent.min() >= RISING) and arrival(times, shares, sprays) is None


def without_flights(entries: Sequence[Entry]) -> list[Entry]:
    """``entries`` less each splash found within ``FLIGHT_S`` before an arrival at the water
    or ``detect.SAME_ENTRY_S`` after it: a camera that follows the diver shows them in flight,
    whose burst of change the splash search can take for an entry, on the way to that same
    entry; and the splash after it is that same entry, placed by the cue less sure of it."""
    arrivals = [e.time_s for e in entries if e.cue == "water"]
    return [e for e in entries if e.cue == "water"
            or not any(-SAME_ENTRY_S < t - e.time_s <= FLIGHT_S for t in arrivals)]

"""Finding the diver's entry into the water: plain functions over cheap signals, no I/O.

Two passes, so that a 200 MB file is not decoded whole to find two seconds in it:

1. **Coarse, over the compressed stream** (:func:`activity`, :func:`candidates`): the size of
   each compressed frame is what the encoder needed to describe the change since the frames
   it refers to; a splash (a burst of white, textured change) makes frames larger for about a
   second. Reading packet sizes is demuxing only, no decoding. Keyframes are left out (their
   size says "keyframe", not "motion"), the sizes are summed over 0.8 s (which evens out the
   frame types and outlasts a one-frame lighting step) and compared on a log scale with their
   median over the surrounding 8 s, so a busy video is not one long peak. A keyframe off the
   stream's regular spacing is a scene cut (encoders start a new picture there): the shot that
   follows is new content, not an entry, so the stretch from just before a cut to 2.5 s after
   it makes no candidate (nor, in a nearby candidate's run, an entry: :func:`around_a_cut`).
   The strongest few peaks, apart from one another, are the candidates.
2. **Fine, over small grayscale frames around each candidate** (:func:`find_entry`): the
   change between consecutive frames, less each frame's median change (lighting, noise) and
   each place's usual change (rippling water), summed over cells; a splash is a burst of
   change that stays in one place for a quarter of a second and is a large share of all the
   change in the frame (camera shake, a cut and a lighting step change everything at once),
   and that turns the place white: part of it becomes as bright as the frame's brightest
   pixels (spray and foam), which a moving pattern, sensor noise or a swimmer's arm does not.
   The entry is where that burst begins, or later, where the place turns white and stays so
   (a body falling through the place, kept there by a camera that follows it, begins the burst
   before the splash does); the confidence grows with how far the burst stands out from the
   place's own noise and how much of the frame's change it holds, and falls when another place
   far from it changes nearly as much while it lasts (swimmers' strokes, a second swimmer's
   start: a dive's splash is alone). A burst in a frame where nothing moved before it
   (a held frame starting to move: no diver fell into it) or one already under way as the run
   begins (not seen to begin) is not trusted. Every candidate is looked at, so that a video of
   several dives lists each of them (:func:`listed`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import cv2
import numpy as np

SMALL_WIDTH = 160  # the fine pass's frames: 160 pixels wide, grayscale
CELL = 8  # pixels of a small frame per cell side
SUM_S = 0.8  # the coarse signal sums packet sizes over this long
BASELINE_S = 8.0  # ... and compares them with their median over this long
CUT_BEFORE_S = 0.8  # no candidate from this long before a scene cut ...
CUT_AFTER_S = 2.5  # ... to this long after it
SUSTAIN_S = 0.25  # a splash keeps changing the same place for at least this long
ONSET_SHARE = 0.25  # before the entry, the splash's place changes by less than this share of the burst ...
ONSET_WITHIN_S = 1.0  # ... which looks for that quiet step at most this long before the burst's most lasting part
RIVAL_AFTER_S = 0.5  # the splash lasts from its onset to this long after its most lasting part
MOVING_S = 0.6  # the frame's change before the burst is its mean over this long
CANDIDATES = 5
MIN_STRENGTH = 0.09  # a peak less than this (log ratio: 9 %) above its surroundings is no candidate
CANDIDATE_GAP_S = 2.5
BEFORE_S = 2.5  # the fine pass looks this long before a candidate's coarse peak
AFTER_S = 2.0  # ... and this long after
BRIGHTEST = 95  # a splash turns part of its place as bright as this percentile of the frame's pixels:
WHITENING_FLOOR = 0.02  # ... a share this small or smaller is no whitening (a camera's pan makes as much) ...
WHITENING_FULL = 0.08  # ... and from this share it is a splash's; between, the confidence grows in proportion
WHITE_STEP = 0.2  # a place that, after the burst begins, turns this much more of itself white (as BRIGHTEST) ...
WHITE_WITHIN_S = 1.5  # ... within this long, and stays so, is where the splash begins
STANDOUT_FLOOR = 4.0  # a burst less than this many times its place's noise is that place's own churn
RIVAL_FULL = 0.4  # a lasting burst elsewhere while the splash lasts, up to this share of the splash's, takes
RIVAL_NONE = 0.6  # ... nothing from the confidence, and from this share all of it: the splash is not alone
MOVING_BEFORE = 0.05  # a frame changing less than this share of the burst's change before it shows no one falling
CONFIDENT = 0.35  # below it an entry is not trusted: neither listed nor scored as detected
SAME_ENTRY_S = 2.0  # entries found this close together (one splash, seen by overlapping runs) are one entry


@dataclasses.dataclass(frozen=True)
class Candidate:
    time_s: float  # where the coarse signal peaks (the splash's loudest, just after the entry)
    strength: float  # log-ratio to the surrounding median


@dataclasses.dataclass(frozen=True)
class Entry:
    time_s: float
    confidence: float  # 0..1
    features: dict[str, float] = dataclasses.field(default_factory=dict, compare=False)
    cue: str = dataclasses.field(default="splash", compare=False)  # "splash", or "water" (:mod:`inference.water`)

    def as_dict(self) -> dict:
        """The job record's form: seconds from the video's start and confidence, 3 decimals."""
        return {"entry_s": round(self.time_s, 3), "confidence": round(self.confidence, 3)}


# -- 1. coarse: packet sizes ------------------------------------------------------------

def _rolling(values: np.ndarray, width: int, reduce) -> np.ndarray:
    """``reduce`` over a centred window of ``width`` samples (edges repeat)."""
    width = max(1, min(width, len(values)))
    padded = np.pad(values, (width // 2, width - 1 - width // 2), mode="edge")
    return reduce(np.lib.stride_tricks.sliding_window_view(padded, width), axis=-1)


def activity(sizes: Sequence[int], keyframes: Sequence[bool], fps: float) -> np.ndarray:
    """Per frame: how much more the encoder spent around it than around its surroundings.

    (N,) packet sizes in bytes, (N,) keyframe flags -> (N,) log ratio; 0 is ordinary.
    """
    size = np.asarray(sizes, np.float64)
    key = np.asarray(keyframes, bool)
    if len(size) == 0:
        return size
    if key.all():  # an intra-only stream: sizes still follow the detail on screen
        key = np.zeros_like(key)
    typical = np.median(size[~key])
    size = np.where(key, typical, size)
    summed = _rolling(size, max(1, round(SUM_S * fps)), np.sum)
    level = np.log1p(summed)
    signal = level - _rolling(level, max(1, round(BASELINE_S * fps)), np.median)
    for span in _around_cuts(scene_cuts(keyframes), fps):
        signal[span.start: span.stop] = -np.inf
    return signal


def _around_cuts(cuts: Sequence[int], fps: float) -> list[range]:
    """The frames from ``CUT_BEFORE_S`` before each of the scene ``cuts`` (frame indices) to
    ``CUT_AFTER_S`` after it: the shot that follows a cut is new content, not an entry."""
    return [range(max(0, math.floor(cut - CUT_BEFORE_S * fps)), math.ceil(cut + CUT_AFTER_S * fps))
            for cut in cuts]


def around_a_cut(time_s: float, cuts: Sequence[int], fps: float) -> bool:
    """Whether ``time_s`` lies where :func:`activity` makes no candidate around one of the
    scene ``cuts``: a splash the fine pass finds there (in the run of a candidate nearby) is the
    new shot's content too."""
    frame = round(time_s * fps)
    return any(frame in span for span in _around_cuts(cuts, fps))


def scene_cuts(keyframes: Sequence[bool]) -> list[int]:
    """Frames whose keyframe comes sooner after the one before than the stream's keyframe
    spacing: x264 and most encoders start a new keyframe where the picture changes whole.
    A stream with a fixed spacing (phones) or every frame a keyframe has none."""
    keys = np.flatnonzero(np.asarray(keyframes, bool))
    if len(keys) < 3:
        return []
    gaps = np.diff(keys)
    spacing = int(gaps.max())
    return [int(k) for k, gap in zip(keys[1:], gaps, strict=True) if gap < spacing - 1]


def candidates(signal: np.ndarray, fps: float, count: int = CANDIDATES,
               gap_s: float = CANDIDATE_GAP_S) -> list[Candidate]:
    """The ``count`` highest peaks of ``signal`` at least ``gap_s`` apart and at least
    ``MIN_STRENGTH`` high, strongest first."""
    remaining = np.asarray(signal, np.float64).copy()
    gap = max(1, round(gap_s * fps))
    found = []
    while len(found) < count and len(remaining) and np.isfinite(remaining).any():
        i = int(np.nanargmax(remaining))
        if not math.isfinite(remaining[i]) or remaining[i] < MIN_STRENGTH:
            break
        found.append(Candidate(i / fps, float(remaining[i])))
        remaining[max(0, i - gap): i + gap + 1] = -np.inf
    return found


def run_around(candidate: Candidate, fps: float, frame_count: int) -> range:
    """The frames the fine pass looks at for ``candidate``."""
    return range(max(0, math.floor((candidate.time_s - BEFORE_S) * fps)),
                 min(frame_count, math.ceil((candidate.time_s + AFTER_S) * fps) + 1))


# -- 2. fine: small grayscale frames -------------------------------------------------------

def small_size(width: int, height: int) -> tuple[int, int]:
    """The fine pass's frame size for an upright ``width`` x ``height`` video: 160 pixels wide."""
    return SMALL_WIDTH, max(CELL * 3, round(SMALL_WIDTH * height / width))


def _steady_change(frames: np.ndarray) -> np.ndarray:
    """(T, H, W) uint8 -> (T-1, H, W) change from each frame to the next, with each frame's
    brightness brought to one level and the camera's shift between them undone (phase
    correlation), less the frame's median change: a lighting change moves every pixel."""
    g = frames.astype(np.float32)
    g *= 128 / np.maximum(g.mean(axis=(1, 2), keepdims=True), 1.0)
    h, w = g.shape[1:]
    window = cv2.createHanningWindow((w, h), cv2.CV_32F)
    diff = np.empty((len(g) - 1, h, w), np.float32)
    for k in range(len(g) - 1):
        # OpenCV 5 multiplies both frames by ``window`` in place here when their size needs no
        # padding for its DFT (160x90, 160x120: landscape videos): there the frames compared
        # below are windowed, from the second step on the earlier one twice (it was the later
        # one of the step before), so their edges count for little; portrait frames are
        # compared whole. The thresholds were set on this.
        (dx, dy), _ = cv2.phaseCorrelate(g[k], g[k + 1], window)
        moved = cv2.warpAffine(g[k], np.float32([[1, 0, dx], [0, 1, dy]]), (w, h), borderMode=cv2.BORDER_REPLICATE)
        diff[k] = np.abs(g[k + 1] - moved)
    return np.maximum(diff - np.median(diff.reshape(len(diff), -1), axis=1)[:, None, None], 0)


def _per_cell(values: np.ndarray) -> np.ndarray:
    """(T, H, W) -> (T, H/CELL, W/CELL): ``values`` summed over each CELL x CELL cell (a last
    partial row or column of cells left out)."""
    t, h, w = values.shape
    gh, gw = h // CELL, w // CELL
    return values[:, : gh * CELL, : gw * CELL].reshape(t, gh, CELL, gw, CELL).sum(axis=(2, 4))


def _cell_change(frames: np.ndarray) -> np.ndarray:
    """(T, H, W) uint8 -> (T-1, H/CELL, W/CELL): :func:`_steady_change` summed per cell."""
    return _per_cell(_steady_change(frames))


def _neighbourhood(cells: np.ndarray) -> np.ndarray:
    """Sum over each cell's 3x3 neighbourhood. (T, gh, gw) -> (T, gh, gw)"""
    padded = np.pad(cells, ((0, 0), (1, 1), (1, 1)))
    out = np.zeros_like(cells)
    for dy in range(3):
        for dx in range(3):
            out += padded[:, dy: dy + cells.shape[1], dx: dx + cells.shape[2]]
    return out


def find_entry(times: Sequence[float], frames: Sequence[np.ndarray]) -> Entry | None:
    """The most likely entry among consecutive small grayscale ``frames`` shown at ``times``
    (seconds), or None when they are too few to tell."""
    times = np.asarray(times, np.float64)
    if len(frames) < 8:
        return None
    step = float(np.median(np.diff(times)))
    sustain = max(2, round(SUSTAIN_S / step))
    stacked = np.stack(frames)
    change = _cell_change(stacked)  # change[k]: frame k -> k+1
    if change.shape[1] < 3 or change.shape[2] < 3 or len(change) <= sustain:
        return None
    usual = np.median(change, axis=0)  # each place's ordinary change (water, a walker passing)
    local = _neighbourhood(np.maximum(change - usual, 0))
    total = np.maximum(change - usual, 0).sum(axis=(1, 2)) + 1e-6
    # a burst that lasts: the least change of the next `sustain` steps, per place
    lasting = np.lib.stride_tricks.sliding_window_view(local, sustain, axis=0).min(axis=-1)
    k, y, x = np.unravel_index(int(np.argmax(lasting)), lasting.shape)
    series = local[:, y, x]
    peak = float(series[k: k + sustain].max())
    # the entry: where the place's change last stood low before the lasting burst. A splash
    # grows over a few frames (more of them at 60 fps), so its sharpest rise comes late; the
    # last quiet step before it does not, whatever the frame rate.
    level = float(lasting[k, y, x])
    first = max(0, k - round(ONSET_WITHIN_S / step))
    quiet_steps = np.flatnonzero(series[first: k + 1] < ONSET_SHARE * level)
    onset = first + (int(quiet_steps[-1]) + 1 if len(quiet_steps) else 0)
    # a body falling through the place (a camera that follows it keeps it there) begins the
    # burst before the splash does; the splash begins where the place turns white
    white = _white(stacked)
    white_at, white_end = (y, x), k + sustain
    turned = _turns_white(white, y, x, range(onset + 1, onset + 1 + round(WHITE_WITHIN_S / step)), sustain)
    if turned is not None and turned[0] > onset + 1:
        onset, white_at, white_end = turned[0] - 1, turned[1:], turned[0] - 1 + 2 * sustain
    # the place's own noise, away from the burst's lasting part (a slow rise into it counts as
    # noise: a splash is sudden)
    quiet = np.concatenate([series[: max(0, k - sustain)], series[k + 4 * sustain:]])
    noise = float(np.median(quiet)) + float(np.median(np.abs(quiet - np.median(quiet)))) if len(quiet) >= 4 else peak
    burst = slice(k, k + sustain)
    share = float(series[burst].sum() / total[burst].sum())
    standout = level / (noise + 1e-3 * peak + 1.0)
    whitening = _whitening(white, *white_at, onset, white_end, sustain)
    splash_end = max(k + sustain, white_end)
    rival = _rival(lasting, y, x, slice(onset, splash_end + round(RIVAL_AFTER_S / step))) / (level + 1e-6)
    before = total[max(0, onset - round(MOVING_S / step)): onset]
    moving = float(before.mean() / np.median(total[burst])) if len(before) else 0.0
    # a burst already under way as the frames begin was not seen to begin: its onset is where
    # they start, not where the place stopped being quiet, and what it is is not known
    seen = bool(onset >= sustain)
    trust = confidence(standout, share, whitening, rival, moving) if seen else 0.0
    return Entry(float(times[onset + 1]), trust,
                 {"standout": round(standout, 2), "share": round(share, 3), "peak": round(peak, 1),
                  "whitening": round(whitening, 3), "rival": round(rival, 3), "moving": round(moving, 3),
                  "seen_begin": seen})


def _rival(lasting: np.ndarray, y: int, x: int, during: slice) -> float:
    """The strongest lasting burst ``during`` those steps at a place whose 3x3 cells do not
    overlap those around cell (y, x): what else in the frame changes as the splash does."""
    rows, cols = np.ogrid[: lasting.shape[1], : lasting.shape[2]]
    apart = (np.abs(rows - y) > 2) | (np.abs(cols - x) > 2)
    window = lasting[during]
    return float(window[:, apart].max()) if apart.any() and len(window) else 0.0


def _white(frames: np.ndarray) -> np.ndarray:
    """(T, H, W) uint8 -> (T, H, W) bool: each frame's pixels among its brightest (``BRIGHTEST``
    percentile), which spray and foam are. Percentiles of each frame of its own, so a lighting
    change whitens nothing."""
    brightest = np.percentile(frames.reshape(len(frames), -1), BRIGHTEST, axis=1)
    return frames > brightest[:, None, None]


def _turns_white(white: np.ndarray, y: int, x: int, steps: range, sustain: int) -> tuple[int, int, int] | None:
    """The first of ``steps`` (frame indices) at which a place whose 3x3 cells overlap those
    around cell (y, x) has ``WHITE_STEP`` more of it :func:`_white` in each of the ``sustain``
    frames from it than in any of the ``2 * sustain`` frames before it: (frame, cell row, cell
    column); None when none does."""
    around = _neighbourhood(_per_cell(white)) / (9 * CELL * CELL)  # the white share of each cell's 3x3
    t, gh, gw = around.shape
    rows, cols = np.ogrid[:gh, :gw]
    near = (np.abs(rows - y) <= 2) & (np.abs(cols - x) <= 2)
    for step in range(max(1, steps.start), min(steps.stop, t - sustain + 1)):
        held = around[step: step + sustain].min(axis=0)
        before = around[max(0, step - 2 * sustain): step].max(axis=0)
        raised = np.where(near, held - before, -np.inf)
        if raised.max() >= WHITE_STEP:
            row, col = np.unravel_index(int(np.argmax(raised)), raised.shape)
            return step, int(row), int(col)
    return None


def _whitening(white: np.ndarray, y: int, x: int, onset: int, end: int, before: int) -> float:
    """How much more of the 3x3 cells around cell (y, x) is :func:`_white` from the entry
    (frame ``onset + 1``) to frame ``end`` than it ever was before the entry (the whitest
    ``before`` consecutive frames up to it), less how much that share flickered from frame to
    frame before the entry: spray turns a place white that was not white. A place that was as
    white earlier in the run, or whose whiteness flickers (a moving pattern, sensor noise on a
    highlight), is no whitening."""
    place = white[:, max(0, (y - 1) * CELL): (y + 2) * CELL, max(0, (x - 1) * CELL): (x + 2) * CELL]
    share = place.reshape(len(white), -1).mean(axis=1)
    after, earlier = share[onset + 1: end + 1], share[: onset + 1]
    if not len(after) or not len(earlier):
        return 0.0
    whitest = np.lib.stride_tricks.sliding_window_view(earlier, min(before, len(earlier))).mean(axis=-1).max()
    flicker = float(np.median(np.abs(np.diff(earlier)))) if len(earlier) > 1 else 0.0
    return float(after.mean() - whitest - flicker)


def confidence(standout: float, share: float, whitening: float, rival: float, moving: float) -> float:
    """0..1 from how far the lasting burst stands out of the place's noise (x times), which
    share of the frame's change it holds, how much of its place it turns white, how strong the
    strongest lasting burst elsewhere is while it lasts (a share of its own: a dive's splash
    is alone; swimmers' strokes and a second swimmer's start are not), and how much the frame
    changed before it (a share of the burst's: a diver falls into the frame before the splash,
    where a still picture that starts to move shows nothing falling)."""
    if moving < MOVING_BEFORE:
        return 0.0
    by_standout = 1 - math.exp(-max(0.0, standout - STANDOUT_FLOOR) / 4)
    by_share = min(1.0, max(0.0, share - 0.15) / 0.25)
    by_white = min(1.0, max(0.0, whitening - WHITENING_FLOOR) / (WHITENING_FULL - WHITENING_FLOOR))
    by_alone = min(1.0, max(0.0, RIVAL_NONE - rival) / (RIVAL_NONE - RIVAL_FULL))
    return round(by_standout * by_share * by_white * by_alone, 3)


def distinct(entries: Sequence[Entry | None]) -> list[Entry]:
    """The entries found, in time order, with those less than ``SAME_ENTRY_S`` apart (one
    splash seen by two candidates' overlapping runs) kept once, the most confident."""
    kept: list[Entry] = []
    for found in sorted((e for e in entries if e is not None), key=lambda e: e.time_s):
        if kept and found.time_s - kept[-1].time_s < SAME_ENTRY_S:
            if found.confidence > kept[-1].confidence:
                kept[-1] = found
            continue
        kept.append(found)
    return kept


def listed(entries: Sequence[Entry]) -> list[Entry]:
    """The entries trusted enough to show (``CONFIDENT`` or more), in time order."""
    return sorted((e for e in entries if e.confidence >= CONFIDENT), key=lambda e: e.time_s)


def best(entries: Sequence[Entry | None]) -> Entry | None:
    found = [e for e in entries if e is not None]
    return max(found, key=lambda e: e.confidence, default=None)

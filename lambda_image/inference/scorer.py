"""Video → score: decode, preprocess, C3D-AVG, with the work of decoding and of the network
overlapped.

The file is opened once per job (:meth:`inference.video.RunReader.probed`): the probe, the
entry search and the clips' frames share its container, and the frames the search decoded
are not decoded again for the window. A decoder thread reads the runs of frames the clip
plan needs (a keyframe seek and a short forward decode per clip, from a file or straight
from storage),
resizes them and hands them over through a small bounded queue; the calling thread runs the
backbone on the clips ``CLIP_BATCH`` at a time as soon as their frames have arrived, while the
decoder carries on
(FFmpeg and PyTorch both release the GIL). The clip features are then averaged and put through the head
in float32, whatever dtype the backbone ran in.
"""

from __future__ import annotations

import dataclasses
import functools
import queue
import threading
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch

from divescore.jobs import Stage
from divescore.settings import Settings
from inference import detect, entry, filmstrip, preprocess
from inference.gate import DiveGate
from inference.model import BACKBONE_MEMORY_FORMAT, C3DAVG, NAME, build_model, untrained_state_dicts
from inference.video import ReadStats, RunReader, Source, VideoInfo, VideoLimits, runs_of
from inference.weights import Weights, resolve
from inference.window import NO_DIVE_FOUND, TOO_SHORT, Window, ending_at, is_too_short, whole

ProgressCallback = Callable[[Stage, float], None]

# Clips go through the backbone this many at a time, as soon as their frames have arrived:
# on 2 cores, channels-last, batches of 3 are the fastest of 1, 2, 3 and 6 with AVX-512 and
# with AVX2 kernels (docs/model.md, "Precision and speed"). A batch is what a cancel waits for
# at most.
CLIP_BATCH = 3


# -- dtype ------------------------------------------------------------------------------

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def dtype_of(setting: str) -> torch.dtype:
    """``settings.model_dtype``: float32 (the default: the same score on every CPU) or bfloat16.

    Never chosen from the CPU: bf16 moves a score by up to a few tenths of a point (see
    docs/model.md), so picking it by host would give the same video different scores."""
    return DTYPES[setting]


# -- the result -------------------------------------------------------------------------

@dataclasses.dataclass
class Result:
    score: float
    clip_scores: list[float]
    frames: list[int]  # sampled frame indices in clip order: clip i is frames[16*i : 16*i+16]
    video: VideoInfo
    timings: dict[str, float]  # seconds
    filmstrip: bytes  # JPEG
    window: Window  # the stretch scored, and how it was chosen
    entries: list[detect.Entry] = dataclasses.field(default_factory=list)  # found and trusted, in time order
    dive_probability: float | None = None  # from the gate, when it is on
    read: ReadStats = dataclasses.field(default_factory=ReadStats)  # what decoding the clips did (frames, seeks)
    detect_read: ReadStats = dataclasses.field(default_factory=ReadStats)  # ... and finding the entry


# -- decoding in a thread -----------------------------------------------------------------

_DONE = object()


class _Decoder:
    """Iterate over ``(index, resized RGB frame)`` of ``runs``, read by a background thread
    (``reader`` is used by nothing else meanwhile)."""

    def __init__(self, reader: RunReader, runs: Sequence[range], buffer: int = 32):
        self._reader, self._runs = reader, runs
        self._queue: queue.Queue = queue.Queue(maxsize=buffer)
        self._stop = threading.Event()
        self.seconds = 0.0
        self._thread = threading.Thread(target=self._run, name="decoder", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        started = time.perf_counter()
        frames = self._reader.read(self._runs)
        try:
            for frame in frames:
                if not self._put((frame.index, preprocess.resize_frame(frame.image))):
                    break
        except Exception as err:
            self._put(err)
        finally:
            frames.close()
            self.seconds = time.perf_counter() - started
            self._put(_DONE)

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self):
        while True:
            item = self._queue.get()
            if item is _DONE:
                return
            if isinstance(item, Exception):
                raise item
            yield item

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


# -- the scorer ---------------------------------------------------------------------------

class Scorer:
    """Scores video files with one loaded model. Safe to reuse for every invocation."""

    def __init__(self, model: C3DAVG, weights: Weights, dtype: torch.dtype = torch.float32,
                 gate: DiveGate | None = None):
        """``model`` as :func:`inference.model.build_model` gives it for ``dtype``: only the
        backbone (99.9 % of the work) runs in ``dtype`` (bf16 when asked), in channels-last,
        the layout oneDNN's convolutions are fastest in; the head stays float32 for the
        score's precision."""
        self.model = model
        self.weights = weights
        self.dtype = dtype
        self.gate = gate

    @property
    def model_info(self) -> dict:
        return {
            "name": NAME,
            "weights": self.weights.name,
            "calibrated": self.weights.calibrated,
            "dtype": str(self.dtype).removeprefix("torch."),
        }

    def clip_features(self, clips: Sequence[Sequence[np.ndarray]]) -> torch.Tensor:
        """N clips of 16 cropped RGB frames -> (N, 8192) float32 features, in one batch."""
        batch = torch.stack([preprocess.clip_tensor(frames) for frames in clips])  # (N, C, T, H, W)
        batch = batch.to(dtype=self.dtype, memory_format=BACKBONE_MEMORY_FORMAT)
        with torch.inference_mode():
            return self.model.clip_features(batch).float()

    def score(self, source: Source, limits: VideoLimits, on_progress: ProgressCallback | None = None,
              entry_s: float | None = None, found: detect.Entry | None = None) -> Result:
        """Score a video file or a seekable binary file object: the training window ending at
        ``entry_s`` (seconds) when given, else at ``found`` (an entry an earlier search of the
        same video listed: no search again), else at the most confident entry found in the
        video, else the whole video (see :mod:`inference.window`). Raises an
        :mod:`inference.errors` class for one that cannot be scored."""
        report = on_progress or (lambda stage, fraction: None)
        started = time.perf_counter()
        with RunReader.probed(source, limits) as reader:
            probed = time.perf_counter()
            report(Stage.DECODING, 0.0)
            window, entries = choose_window(reader, entry_s, found, on_frame=lambda: report(Stage.DECODING, 0.0))
            detect_seconds = time.perf_counter() - probed
            detect_read = dataclasses.replace(reader.stats)
            plan = window.clips()
            wanted = sorted({i for clip in plan for i in clip})
            strip_indices = set(filmstrip.pick(wanted))
            # Identical clips (short videos) are computed once; clips are ready in order of their last frame.
            pending = sorted({tuple(clip) for clip in plan}, key=lambda clip: clip[-1])
            clip_count = len(pending)
            crops: dict[int, np.ndarray] = {}
            thumbnails: dict[int, np.ndarray] = {}
            features: dict[tuple[int, ...], torch.Tensor] = {}  # (8192,) per distinct clip
            network_seconds = 0.0

            ready: list[tuple[int, ...]] = []  # clips whose frames have all arrived, not yet computed
            decoder = _Decoder(reader, runs_of(wanted))
            try:
                for count, (index, frame) in enumerate(decoder, start=1):
                    report(Stage.DECODING, len(features) / clip_count)  # lets a cancel stop the decode
                    crops[index] = preprocess.center_crop(frame).copy()
                    if index in strip_indices:
                        thumbnails[index] = frame
                    while pending and pending[0][-1] <= index:
                        ready.append(pending.pop(0))
                    if len(ready) >= CLIP_BATCH or (ready and not pending):
                        t = time.perf_counter()
                        batch = self.clip_features([[crops[i] for i in clip] for clip in ready])
                        features.update(zip(ready, batch, strict=True))
                        network_seconds += time.perf_counter() - t
                        ready = []
                        report(Stage.SCORING if count == len(wanted) else Stage.DECODING, len(features) / clip_count)
            finally:
                decoder.close()
            info, read = reader.info, reader.stats.since(detect_read)

        dive_probability = None
        if self.gate is not None:
            by_start = sorted(features)
            middle = by_start[max(0, len(by_start) // 2 - 1): len(by_start) // 2 + 1]
            dive_probability = self.gate.check([[crops[i] for i in clip] for clip in middle])

        t = time.perf_counter()
        per_clip = torch.stack([features[tuple(clip)] for clip in plan])  # (6, 8192)
        with torch.inference_mode():
            clip_scores = self.model.head(per_clip)  # (6,)
            score = self.model.head(per_clip.mean(0, keepdim=True))[0]
        network_seconds += time.perf_counter() - t
        jpeg = filmstrip.encode([thumbnails[i] for i in sorted(thumbnails)])

        return Result(
            score=float(score),
            clip_scores=[float(s) for s in clip_scores],
            frames=[i for clip in plan for i in clip],
            video=info,
            timings={
                "detect_s": round(detect_seconds, 3),
                "decode_s": round(decoder.seconds, 3),  # overlaps inference_s
                "probe_s": round(probed - started, 3),
                "inference_s": round(network_seconds, 3),
                "pipeline_s": round(time.perf_counter() - started, 3),
            },
            filmstrip=jpeg,
            window=window,
            entries=entries,
            dive_probability=dive_probability,
            read=read,
            detect_read=detect_read,
        )


def choose_window(reader: RunReader, entry_s: float | None, found: detect.Entry | None = None,
                  on_frame: Callable[[], None] = lambda: None) -> tuple[Window, list[detect.Entry]]:
    """The window to score and the entries the search listed (:func:`inference.detect.listed`;
    none when it did not run). ``given`` when ``entry_s`` is set; ``detected`` ending at
    ``found`` when set, else at the most confident entry the search lists; otherwise
    ``whole``: ``too_short`` (no search: whatever the entry, its window would cover the whole
    video) or ``no_dive_found``. ``on_frame`` as for :func:`inference.entry.search`."""
    info = reader.info
    if entry_s is not None:
        return ending_at(entry_s, info.fps, info.frames, "given"), []
    if found is not None:
        return ending_at(found.time_s, info.fps, info.frames, "detected", found.confidence), []
    if is_too_short(info.frames, info.fps):
        return whole(info.frames, info.fps, TOO_SHORT), []
    entries = detect.listed(entry.search(reader, on_frame=on_frame))
    best = detect.best(entries)
    if best is None:
        return whole(info.frames, info.fps, NO_DIVE_FOUND), []
    return ending_at(best.time_s, info.fps, info.frames, "detected", best.confidence), entries


@functools.cache
def _load(weights: Weights, dtype: torch.dtype) -> Scorer:
    gate = DiveGate.load(weights.gate) if weights.gate else None
    return Scorer(build_model(weights, dtype), weights, dtype, gate)


def load_scorer(settings: Settings) -> Scorer:
    """The scorer for ``settings``'s weights and dtype, loaded once per process."""
    return _load(resolve(settings, untrained_state_dicts), dtype_of(settings.model_dtype))

"""Reading videos with PyAV (FFmpeg's libraries): what a file holds (:func:`probe`) and the
frames asked for (:func:`read_runs`), decoding only the stretches that hold them.

A *run* is a range of frame indices; an index is a frame's position in a sequential decode
(the first frame the decoder outputs is 0), which is what every caller means by "frame 40".
For each run the reader seeks to the keyframe at or before the run's first frame and decodes
forward to its last; when that keyframe is not past what it has already decoded it decodes
on instead, so no frame is decoded twice and no seek is made per frame (on H.264 per-frame
seeking was measured 4-35x slower than one sequential pass).

A decoded frame's index comes from its timestamp, ``(pts - first pts) / frame duration``,
which holds for a constant frame rate. Where that cannot be trusted the reader decodes
sequentially instead, counting frames as they come: a file without an index to seek with
(a WebM as browsers' MediaRecorder writes it: no cues, no duration), a frame rate the
stream does not state, or timestamps that turn out irregular or a seek that lands wrong
while reading (it then carries on sequentially from the start for the frames still wanted).
Both ways give the same frames.

Frames are BGR ``(H, W, 3)`` uint8, turned upright when the file says it is rotated (a
portrait phone video), as :func:`inference.preprocess.resize_frame` takes them. ``source``
is a path or a seekable binary file object (:class:`inference.storage.RangedObject` reads
an S3 object through ranged GETs).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Iterable, Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO

import av
import cv2
import numpy as np

from divescore.settings import Settings
from inference import errors

# A frame smaller than this on either side holds nothing a model could score.
MIN_FRAME_SIDE = 32
# Used for the duration check when a file does not state a usable frame rate.
ASSUMED_FPS = 30.0
# FFmpeg opens still images as one-frame videos; these are their codecs.
STILL_IMAGE_CODECS = frozenset({"png", "mjpeg", "webp", "tiff", "gif", "bmp", "jpegls", "qoi", ""})
# How far off a whole frame a timestamp may sit (as a share of a frame) and still count as
# that frame: containers with a millisecond time base round 30 fps timestamps to 33 or 34 ms.
TIMESTAMP_SLACK = 0.25
# Times a seek may land after the run it was for before the reader gives up on seeking.
SEEK_RETRIES = 2
READ_BUFFER_BYTES = 64 * 1024  # what PyAV reads from a file object at a time (its default, 32 KiB, means many calls)

Source = str | Path | BinaryIO


@dataclasses.dataclass(frozen=True)
class VideoLimits:
    max_seconds: float
    max_pixels: int
    min_frames: int

    @classmethod
    def from_settings(cls, settings: Settings) -> VideoLimits:
        return cls(settings.max_video_seconds, settings.max_video_pixels, settings.min_video_frames)


@dataclasses.dataclass(frozen=True)
class VideoInfo:
    frames: int
    fps: float
    width: int  # as displayed: a portrait video's rotation already applied
    height: int
    codec: str = ""  # FFmpeg's decoder name, e.g. "h264", "hevc", "vp9"
    rotation: int = 0  # degrees counterclockwise the frames are turned to be shown upright

    @property
    def duration_seconds(self) -> float:
        return self.frames / self.fps

    def as_dict(self) -> dict:
        return {"frames": self.frames, "fps": round(self.fps, 3), "width": self.width, "height": self.height,
                "duration_s": round(self.duration_seconds, 3), "codec": self.codec, "rotation": self.rotation}


@dataclasses.dataclass(frozen=True)
class Frame:
    index: int  # position in a sequential decode, from 0
    seconds: float  # presentation time after the first frame's
    image: np.ndarray  # (H, W, 3) BGR uint8, upright


# -- opening and probing ---------------------------------------------------------------------

def open_video(source: Source) -> av.container.InputContainer:
    if not isinstance(source, (str, Path)):
        source.seek(0)
    try:
        container = av.open(source if not isinstance(source, Path) else str(source), "r",
                            buffer_size=READ_BUFFER_BYTES)
    except (av.FFmpegError, UnicodeDecodeError, IndexError, ValueError):
        raise errors.NotAVideo(
            "The file could not be read as a video (unknown format, damaged, or without a video track). "
            "Upload an MP4, MOV, WebM or MKV video."
        ) from None
    if not container.streams.video:
        container.close()
        raise errors.NotAVideo("The file has no video track. Upload a video file.")
    return container


def _quarter_turns(degrees: float) -> int:
    return round(degrees / 90.0) % 4 * 90 if math.isfinite(degrees) else 0


def _stream_fps(stream) -> Fraction | None:
    for rate in (stream.average_rate, stream.base_rate, stream.guessed_rate):
        if rate and 0 < rate <= 1000:
            return Fraction(rate)
    return None


def probe(source: Source, limits: VideoLimits) -> VideoInfo:
    """The file's frame count, frame rate, size and rotation, checked against ``limits``
    before any frame is decoded. Raises the :mod:`inference.errors` class that says what is
    wrong."""
    container = open_video(source)
    try:
        return _probe_open(container, limits)
    finally:
        container.close()


def _probe_open(container, limits: VideoLimits) -> VideoInfo:
    """:func:`probe` of an open container (left open, its first frame decoded)."""
    stream = _decoding(container)
    context = stream.codec_context
    width, height = context.width, context.height
    if width <= 0 or height <= 0:
        raise errors.NotAVideo("The file has no readable video track. Upload a video file.")
    _check_resolution(width, height, limits)
    rate = _stream_fps(stream)
    fps = float(rate) if rate else ASSUMED_FPS
    frames = _announced_frames(container, stream, fps)
    if frames <= 0:  # the container does not say: count packets (no decoding), within the duration limit
        frames = _count_packets(container, stream, limit=math.ceil(limits.max_seconds * fps) + 1)
    rotation = _first_frame_rotation(container, stream)
    codec = context.name or ""
    if rotation in (90, 270):
        width, height = height, width
    info = VideoInfo(frames=frames, fps=fps, width=width, height=height, codec=codec, rotation=rotation)
    _check_length(info, limits)
    return info


def _announced_frames(container, stream, fps: float) -> int:
    if stream.frames > 0:
        return stream.frames
    if stream.duration and stream.time_base:
        seconds = float(stream.duration * stream.time_base)
    elif container.duration:
        seconds = container.duration / av.time_base
    else:
        return 0
    return round(seconds * fps)


def _count_packets(container, stream, limit: int) -> int:
    count = 0
    try:
        for packet in container.demux(stream):
            if packet.size:
                count += 1
                if count > limit:
                    raise errors.VideoTooLong(
                        "The video is longer than the longest accepted duration. Trim it to the dive."
                    )
    except av.FFmpegError:
        pass  # a damaged tail: what was counted is what there is
    container.seek(0)
    return count


def _first_frame_rotation(container, stream) -> int:
    """The display rotation, read from the first decoded frame's side data (FFmpeg copies
    the stream's display matrix onto every frame); 0 when no frame decodes (found later)."""
    try:
        for frame in container.decode(stream):
            return _quarter_turns(frame.rotation or 0)
    except av.FFmpegError:
        pass
    return 0


def _check_resolution(width: int, height: int, limits: VideoLimits) -> None:
    if width * height > limits.max_pixels:
        raise errors.ResolutionTooLarge(
            f"The video is {width}x{height} pixels; the largest accepted frame has {limits.max_pixels:,} pixels "
            "(3840x2160). Export it at 1080p or 4K and upload it again."
        )
    if min(width, height) < MIN_FRAME_SIDE:
        raise errors.ResolutionTooSmall(
            f"The video is {width}x{height} pixels; frames need at least {MIN_FRAME_SIDE} pixels on each side."
        )


def _check_length(info: VideoInfo, limits: VideoLimits) -> None:
    if info.frames == 0:
        raise errors.NoFrames("The video contains no frames. Upload a video of the dive.")
    if info.frames == 1 and info.codec in STILL_IMAGE_CODECS:
        raise errors.NotAVideo("The file is a still image, not a video. Upload a video of the dive.")
    if info.duration_seconds > limits.max_seconds:
        raise errors.VideoTooLong(
            f"The video lasts {info.duration_seconds:.1f} s; the longest accepted is {limits.max_seconds:g} s. "
            "Trim it to the dive and upload it again."
        )
    if info.frames < limits.min_frames:
        raise errors.VideoTooShort(
            f"The video has {info.frames} frame(s) ({info.duration_seconds:.2f} s); at least {limits.min_frames} "
            "are needed. Upload a video that shows the whole dive."
        )


# -- runs -------------------------------------------------------------------------------------

def runs_of(indices: Iterable[int]) -> list[range]:
    """Sorted, distinct ``indices`` as the fewest runs of consecutive frames."""
    runs: list[range] = []
    for index in sorted(set(indices)):
        if runs and runs[-1].stop == index:
            runs[-1] = range(runs[-1].start, index + 1)
        else:
            runs.append(range(index, index + 1))
    return runs


def _merged(runs: Iterable[range]) -> list[range]:
    return runs_of(i for run in runs for i in run if i >= 0)


# -- reading ----------------------------------------------------------------------------------

@dataclasses.dataclass
class ReadStats:
    """What a read did: for tests, logs and the benchmark."""

    decoded: int = 0  # frames out of the decoder, counting any decoded again after a fallback
    seeks: int = 0
    sequential: bool = False  # the sequential pass read (all or the rest of) the frames
    reused: int = 0  # frames served from an earlier read's decode (:meth:`RunReader.read`'s ``keep_bytes``)

    def since(self, before: ReadStats) -> ReadStats:
        """What was done after ``before`` (a copy of these stats taken earlier)."""
        return ReadStats(self.decoded - before.decoded, self.seeks - before.seeks, self.sequential,
                         self.reused - before.reused)


class _Irregular(Exception):
    """Timestamps or a seek cannot be trusted for this file: read it sequentially instead."""


@dataclasses.dataclass(frozen=True)
class _Decoded:
    """A frame as the decoder gave it, not yet converted."""

    index: int
    seconds: float
    frame: av.VideoFrame


def read_runs(source: Source, runs: Iterable[range], info: VideoInfo, *, seek: bool = True,
              stats: ReadStats | None = None, gray_size: tuple[int, int] | None = None) -> Iterator[Frame]:
    """Each frame of ``runs`` once, in increasing index order.

    ``info`` is what :func:`probe` found. A stream that ends a few frames before
    ``info.frames`` (an estimated count) repeats its last frame for the indices past its end;
    one that ends far earlier is a truncated file (:class:`errors.VideoTruncated`).
    ``seek=False`` reads sequentially (the reference the seeking path is tested against).
    ``gray_size`` (upright width, height): frames come as small grayscale images, scaled by
    FFmpeg straight from the decoder's output (no full-size BGR copy), for the entry detector.
    """
    with RunReader(source, info, seek=seek, stats=stats) as reader:
        yield from reader.read(runs, gray_size=gray_size)


class RunReader:
    """:func:`read_runs` for a caller that asks for runs one after another, in any order (a
    job: the entry search, strongest candidate first, then the clips): the container stays
    open between them, so each request costs only its seek and decode, not opening the file
    and decoding its first frame again. A request for frames before the last one read seeks
    back. :meth:`probed` opens the file once for the probe and every read after it.

    A read may keep the frames it decodes (``keep_bytes``: the entry search keeps its last
    run's frames, which the window that ends in them needs again); a later read takes the kept
    frames it asks for instead of decoding them again, and lets go of the others. A kept
    frame is the decoder's own frame, so what it becomes is what decoding it again gives."""

    def __init__(self, source: Source, info: VideoInfo, *, seek: bool = True, stats: ReadStats | None = None,
                 container: av.container.InputContainer | None = None):
        self.source, self.info, self.seek = source, info, seek
        self.stats = stats if stats is not None else ReadStats()
        self.container = container  # an open container to start from (see :meth:`probed`)
        self.seeking: _SeekingReader | None = None
        self.kept: dict[int, _Decoded] = {}
        self.kept_bytes = 0

    @classmethod
    def probed(cls, source: Source, limits: VideoLimits, **options) -> RunReader:
        """A reader of ``source``, opened once: :func:`probe`'s checks (and errors) first,
        then the same container serves every read; ``reader.info`` is what the probe found."""
        container = open_video(source)
        try:
            info = _probe_open(container, limits)
        except BaseException:
            container.close()
            raise
        return cls(source, info, container=container, **options)

    def __enter__(self) -> RunReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.kept, self.kept_bytes = {}, 0
        if self.container is not None:
            self.container.close()
            self.container = None

    def opened(self) -> av.container.InputContainer:
        """The container, opened if it is not yet (for a caller that reads its index)."""
        if self.container is None:
            self.container = open_video(self.source)
        return self.container

    def read(self, runs: Iterable[range], *, gray_size: tuple[int, int] | None = None,
             keep_bytes: int = 0) -> Iterator[Frame]:
        """Each frame of ``runs`` once, in increasing index order: BGR frames, or small
        grayscale ones of ``gray_size`` (see :func:`read_runs`). With ``keep_bytes``, the
        decoded frames are kept for a later read until they hold that many bytes."""
        wanted = _merged(runs)
        kept, self.kept, self.kept_bytes = self.kept, {}, 0
        reused = {i: kept[i] for run in wanted for i in run if i in kept}
        decoding = self._decode(runs_of(i for run in wanted for i in run if i not in reused))
        image = functools.partial(_upright, rotation=self.info.rotation, gray_size=gray_size)
        for run in wanted:
            for index in run:
                item = reused.pop(index, None)
                if item is None:
                    item = next(decoding)
                else:
                    self.stats.reused += 1
                if keep_bytes:
                    self._keep(item, keep_bytes)
                yield Frame(item.index, item.seconds, image(item.frame))

    def _keep(self, item: _Decoded, limit: int) -> None:
        size = sum(plane.buffer_size for plane in item.frame.planes)
        if self.kept_bytes + size <= limit:
            self.kept[item.index] = item
            self.kept_bytes += size

    def _decode(self, wanted: list[range]) -> Iterator[_Decoded]:
        if not wanted:
            return
        done = -1  # the highest index yielded
        if self.seeking is None and self.seek:
            container = self.opened()
            try:
                self.seeking = _SeekingReader(container, _decoding(container), self.info, self.stats)
            except _Irregular:
                self.seek = False
        if self.seeking is not None:
            try:
                for item in self.seeking.frames(wanted):
                    done = item.index
                    yield item
                return
            except _Irregular:  # from here on, this file is read sequentially
                self.seeking, self.seek = None, False
        remaining = [r for r in (range(max(r.start, done + 1), r.stop) for r in wanted) if r]
        if self.container is not None:  # a sequential pass counts frames from the top, in a fresh container
            self.container.close()
        self.container = open_video(self.source)
        self.stats.sequential = True
        yield from _sequential(self.container, _decoding(self.container), remaining, self.info, self.stats)


def _decoding(container):
    """The video stream, set up for decoding with FFmpeg's threads (before its first frame:
    the decoder's threads are fixed once it is open)."""
    stream = container.streams.video[0]
    if not stream.codec_context.is_open:
        stream.thread_type = "AUTO"
    return stream


def read_frames(source: Source, indices: Iterable[int], expected_frames: int) -> Iterator[tuple[int, np.ndarray]]:
    """``(index, frame)`` for each wanted index, in increasing order (see :func:`read_runs`)."""
    info = probe_for_reading(source, expected_frames)
    for frame in read_runs(source, runs_of(indices), info):
        yield frame.index, frame.image


def probe_for_reading(source: Source, expected_frames: int) -> VideoInfo:
    """The :class:`VideoInfo` reading needs when only the frame count is known."""
    container = open_video(source)
    try:
        stream = container.streams.video[0]
        rate = _stream_fps(stream)
        rotation = _first_frame_rotation(container, stream)
        return VideoInfo(frames=expected_frames, fps=float(rate) if rate else ASSUMED_FPS,
                         width=stream.codec_context.width, height=stream.codec_context.height,
                         codec=stream.codec_context.name or "", rotation=rotation)
    finally:
        container.close()


def _upright(frame: av.VideoFrame, rotation: int, gray_size: tuple[int, int] | None = None) -> np.ndarray:
    if gray_size is None:
        image = frame.to_ndarray(format="bgr24")
    else:
        width, height = gray_size if rotation in (0, 180) else gray_size[::-1]
        image = frame.reformat(width=width, height=height, format="gray", interpolation="AREA").to_ndarray()
    if rotation == 90:
        return cv2.rotate(image, cv2.ROTATE_90_COUNTERCLOCKWISE)
    if rotation == 180:
        return cv2.rotate(image, cv2.ROTATE_180)
    if rotation == 270:
        return cv2.rotate(image, cv2.ROTATE_90_CLOCKWISE)
    return image


def _decoded(container, stream, stats: ReadStats) -> Iterator[av.VideoFrame]:
    """The stream's frames from where the container stands; a damaged packet ends it."""
    try:
        for packet in container.demux(stream):
            for frame in packet.decode():
                stats.decoded += 1
                yield frame
    except av.FFmpegError:
        return


def _sequential(container, stream, runs: Sequence[range], info: VideoInfo, stats: ReadStats) -> Iterator[_Decoded]:
    """One pass from the start, counting frames."""
    wanted = iter([i for run in runs for i in run])
    target = next(wanted, None)
    position = -1
    first_pts = None
    last: _Decoded | None = None
    for decoded in _decoded(container, stream, stats):
        position += 1
        if first_pts is None:
            first_pts = decoded.pts or 0
        if target is None:
            return
        if position == target:
            last = _Decoded(position, _seconds(decoded, first_pts, stream), decoded)
            yield last
            target = next(wanted, None)
            if target is None:
                return
    if target is not None:
        yield from _fill_missing([target, *wanted], last, decoded=position + 1, expected=info.frames)


def _seconds(frame: av.VideoFrame, first_pts: int, stream) -> float:
    if frame.pts is None or not stream.time_base:
        return 0.0
    return float((frame.pts - first_pts) * stream.time_base)


class _SeekingReader:
    """Keyframe seeks, frame indices from timestamps (see the module's docstring)."""

    LANDED_LATE = "landed late"

    def __init__(self, container, stream, info: VideoInfo, stats: ReadStats):
        self.container, self.stream, self.info, self.stats = container, stream, info, stats
        rate = _stream_fps(stream)
        if container.duration is None:
            raise _Irregular()  # a live-style file (MediaRecorder's WebM): seeking in it scans and misses
        try:  # Matroska reads cues that follow the clusters only when first asked to seek
            container.seek(0, backward=True, stream=stream)
        except av.FFmpegError:
            raise _Irregular() from None
        keyframes = sorted(e.timestamp for e in stream.index_entries if e.is_keyframe and not e.is_discard)
        if rate is None or not stream.time_base or not keyframes:
            raise _Irregular()  # nothing to seek with, or no frame duration to count by
        self.step = 1 / (rate * stream.time_base)  # one frame, in time-base ticks
        self.keyframes = keyframes
        self.decoded = _decoded(container, stream, stats)
        first = next(self.decoded, None)
        if first is None or first.pts is None:
            raise _Irregular()  # nothing decodes from the start: the sequential pass says why
        self.first_pts = first.pts
        # Index timestamps are decode times in MP4 (a B-frame delay before presentation) and
        # presentation times elsewhere; the first keyframe is frame 0 either way.
        self.delay = first.pts - keyframes[0]
        self.pending: av.VideoFrame | None = first  # decoded, not yet looked at
        self.position = -1  # index of the last frame looked at
        self.last: _Decoded | None = None

    def frames(self, runs: Sequence[range]) -> Iterator[_Decoded]:
        for run in runs:
            yield from self._run(run)

    def _index(self, frame: av.VideoFrame) -> int:
        if frame.pts is None:
            raise _Irregular()
        offset = (frame.pts - self.first_pts) / self.step
        index = round(offset)
        if abs(offset - index) > TIMESTAMP_SLACK:
            raise _Irregular()
        return index

    def _keyframe_before(self, start: int, back: int) -> tuple[int, int] | None:
        """(timestamp, estimated index) of the keyframe ``back`` keyframes before the last
        one at or before frame ``start``."""
        indices = [(t, round((t + self.delay - self.first_pts) / self.step)) for t in self.keyframes]
        at_or_before = [k for k in indices if k[1] <= start]
        return at_or_before[-1 - back] if len(at_or_before) > back else None

    def _run(self, run: range) -> Iterator[_Decoded]:
        for back in range(SEEK_RETRIES + 1):
            keyframe = self._keyframe_before(run.start, back)
            behind = run.start <= self.position  # asked for after a later run
            if keyframe is None and (behind or back):
                raise _Irregular()
            landing = None
            if keyframe is not None and (behind or back or keyframe[1] > self.position + 1):
                # The keyframe lies past what was decoded (or the run lies before it): jump
                # there. Otherwise decoding on from here reaches the run without decoding any
                # frame twice.
                try:
                    # by its presentation time: MP4's seek compares those, not the index's decode times
                    self.container.seek(keyframe[0] + self.delay, backward=True, any_frame=False, stream=self.stream)
                except av.FFmpegError:
                    raise _Irregular() from None
                self.stats.seeks += 1
                self.decoded = _decoded(self.container, self.stream, self.stats)
                self.pending = None
                self.position = keyframe[1] - 1
                landing = keyframe[1]
            outcome = yield from self._decode_run(run, landing)
            if outcome is not self.LANDED_LATE:
                return
        raise _Irregular()

    def _decode_run(self, run: range, landing: int | None):
        expected = None if landing is not None else self.position + 1
        while self.position < run.stop - 1:
            decoded = self.pending if self.pending is not None else next(self.decoded, None)
            self.pending = None
            if decoded is None:
                break
            index = self._index(decoded)
            if expected is None:  # the first frame after a seek
                if index > run.start:
                    return self.LANDED_LATE
                expected = index
            if index != expected:
                raise _Irregular()  # a gap or a repeat: the timestamps do not count frames
            self.position, expected = index, index + 1
            if index >= run.start:
                self.last = _Decoded(index, float((decoded.pts - self.first_pts) * self.stream.time_base), decoded)
                yield self.last
        missing = [i for i in run if i > self.position]
        if missing:  # the stream ended before the run did
            if expected is None or self.last is None:
                raise _Irregular()  # a seek past the end: only a sequential pass can count the frames
            yield from _fill_missing(missing, self.last, decoded=self.position + 1, expected=self.info.frames)
        return None


def _count_tolerance(expected_frames: int) -> int:
    # Some containers (Matroska, WebM) only estimate their frame count from the duration, so
    # the stream may end a few frames early without the file being damaged.
    return max(3, expected_frames // 50)


def _fill_missing(missing: list[int], last: _Decoded | None, *, decoded: int, expected: int) -> Iterator[_Decoded]:
    if last is None:
        raise errors.NoFrames(
            "No frame of the video could be decoded; the file is damaged or incomplete. Upload it again."
        )
    if expected - decoded > _count_tolerance(expected):
        raise errors.VideoTruncated(
            f"The video stops after {decoded} of the {expected} frames it announces; the file is truncated or "
            "damaged. Upload the complete file."
        )
    for index in missing:
        yield _Decoded(index, last.seconds, last.frame)

""":class:`RunReader`: the frames of the runs a job asks for, from one open container, by
keyframe seeks (:mod:`inference.video.seeking`) or, where those cannot be trusted, one
sequential pass that counts frames; and the frames a read keeps for a later one."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable, Iterator, Sequence

import av
import cv2
import numpy as np

from inference.video.decoding import Decoded, ReadStats, decoded_frames, fill_missing
from inference.video.packets import packet_sizes
from inference.video.probe import Source, VideoInfo, VideoLimits, open_video, probe, video_stream
from inference.video.runs import merged, runs_of
from inference.video.seeking import Irregular, SeekingReader


@dataclasses.dataclass(frozen=True)
class Frame:
    index: int  # position in a sequential decode, from 0
    seconds: float  # presentation time after the first frame's
    image: np.ndarray  # (H, W, 3) BGR uint8 upright, or (h, w) uint8 grayscale (``gray_size``)
    colour: np.ndarray | None = None  # with ``colour_size``: (h, w, 3) BGR uint8 upright, small


class RunReader:
    """The frames of runs asked for one after another, in any order (a job: the entry search,
    strongest candidate first, then the clips): the container stays open between them, so each
    request costs only its seek and decode, not opening the file and decoding its first frame
    again. A request for frames before the last one read seeks back. :meth:`probed` opens the
    file once for the probe and every read after it.

    ``info`` is what the probe found. A stream that ends a few frames before ``info.frames``
    (an estimated count) repeats its last frame for the indices past its end; one that ends far
    earlier is a truncated file (:class:`errors.VideoTruncated`). ``seek=False`` reads
    sequentially (the reference the seeking path is tested against).

    A read may keep the frames it decodes (``keep_bytes``: the entry search keeps its last
    run's frames, which the window that ends in them needs again); a later read takes the kept
    frames it asks for instead of decoding them again, and lets go of the others. A kept
    frame is the decoder's own frame, so what it becomes is what decoding it again gives."""

    def __init__(self, source: Source, info: VideoInfo, *, seek: bool = True, stats: ReadStats | None = None,
                 container: av.container.InputContainer | None = None):
        self.source, self.info, self.seek = source, info, seek
        self.stats = stats if stats is not None else ReadStats()
        self.container = container  # an open container to start from (see :meth:`probed`)
        self.seeking: SeekingReader | None = None
        # a source that fetches ahead (:class:`inference.storage.RangedObject`) is told where runs end
        self._read_ahead_until = getattr(source, "read_ahead_until", None)
        self.kept: dict[int, Decoded] = {}
        self.kept_bytes = 0

    @classmethod
    def probed(cls, source: Source, limits: VideoLimits, **options) -> RunReader:
        """A reader of ``source``, opened once: the probe's checks (and errors) first, then
        the same container serves every read; ``reader.info`` is what the probe found."""
        container = open_video(source)
        try:
            info = probe(container, limits)
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

    def packet_sizes(self) -> tuple[np.ndarray, np.ndarray]:
        """(N,) bytes per video packet in decode order, (N,) keyframe flags, from this
        reader's container (:mod:`inference.video.packets`): no frame is decoded."""
        return packet_sizes(self._opened(), self.info.frames)

    def read(self, runs: Iterable[range], *, gray_size: tuple[int, int] | None = None,
             colour_size: tuple[int, int] | None = None, keep_bytes: int = 0) -> Iterator[Frame]:
        """Each frame of ``runs`` once, in increasing index order. Frames are BGR
        ``(H, W, 3)`` uint8, turned upright when the file says it is rotated (a portrait phone
        video), as :func:`inference.preprocess.resize_frame` takes them; with ``gray_size``
        (upright width, height) they come as small grayscale images, scaled by FFmpeg straight
        from the decoder's output (no full-size BGR copy), for the entry detector, and with
        ``colour_size`` each also as a small BGR image in ``colour``. With ``keep_bytes``, the
        decoded frames are kept for a later read until they hold that many bytes."""
        wanted = merged(runs)
        kept, self.kept, self.kept_bytes = self.kept, {}, 0
        reused = {i: kept[i] for run in wanted for i in run if i in kept}
        decoding = self._decode(runs_of(i for run in wanted for i in run if i not in reused))
        image = functools.partial(_upright, rotation=self.info.rotation, gray_size=gray_size)
        colour = functools.partial(_upright, rotation=self.info.rotation, small_size=colour_size)
        for run in wanted:
            for index in run:
                item = reused.pop(index, None)
                if item is None:
                    item = next(decoding)
                else:
                    self.stats.reused += 1
                if keep_bytes:
                    self._keep(item, keep_bytes)
                yield Frame(item.index, item.seconds, image(item.frame),
                            colour(item.frame) if colour_size is not None else None)

    def _opened(self) -> av.container.InputContainer:
        """The container, opened if it is not yet."""
        if self.container is None:
            self.container = open_video(self.source)
        return self.container

    def _keep(self, item: Decoded, limit: int) -> None:
        size = sum(plane.buffer_size for plane in item.frame.planes)
        if self.kept_bytes + size <= limit:
            self.kept[item.index] = item
            self.kept_bytes += size

    def _decode(self, wanted: list[range]) -> Iterator[Decoded]:
        if not wanted:
            return
        done = -1  # the highest index yielded
        if self.seeking is None and self.seek:
            container = self._opened()
            try:
                self.seeking = SeekingReader(container, video_stream(container), self.info, self.stats,
                                             self._read_ahead_until)
            except Irregular:
                self.seek = False
        if self.seeking is not None:
            try:
                for item in self.seeking.frames(wanted):
                    done = item.index
                    yield item
                return
            except Irregular:  # from here on, this file is read sequentially
                self.seeking, self.seek = None, False
        remaining = [r for r in (range(max(r.start, done + 1), r.stop) for r in wanted) if r]
        if self._read_ahead_until is not None:  # a sequential pass reads on to the end
            self._read_ahead_until(None)
        if self.container is not None:  # a sequential pass counts frames from the top, in a fresh container
            self.container.close()
        self.container = open_video(self.source)
        self.stats.sequential = True
        yield from _sequential(self.container, video_stream(self.container), remaining, self.info, self.stats)


def _upright(frame: av.VideoFrame, rotation: int, gray_size: tuple[int, int] | None = None,
             small_size: tuple[int, int] | None = None) -> np.ndarray:
    """The frame upright: full-size BGR, or scaled by FFmpeg to ``gray_size`` grayscale or
    ``small_size`` BGR (upright width, height)."""
    if gray_size is None and small_size is None:
        image = frame.to_ndarray(format="bgr24")
    else:
        size = gray_size or small_size
        width, height = size if rotation in (0, 180) else size[::-1]
        image = frame.reformat(width=width, height=height, format="gray" if gray_size else "bgr24",
                               interpolation="AREA").to_ndarray()
    if rotation == 90:
        return cv2.rotate(image, cv2.ROTATE_90_COUNTERCLOCKWISE)
    if rotation == 180:
        return cv2.rotate(image, cv2.ROTATE_180)
    if rotation == 270:
        return cv2.rotate(image, cv2.ROTATE_90_CLOCKWISE)
    return image


def _sequential(container, stream, runs: Sequence[range], info: VideoInfo, stats: ReadStats) -> Iterator[Decoded]:
    """One pass from the start, counting frames."""
    wanted = iter([i for run in runs for i in run])
    target = next(wanted, None)
    position = -1
    first_pts = None
    last: Decoded | None = None
    for decoded in decoded_frames(container, stream, stats):
        position += 1
        if first_pts is None:
            first_pts = decoded.pts or 0
        if target is None:
            return
        if position == target:
            last = Decoded(position, _seconds(decoded, first_pts, stream), decoded)
            yield last
            target = next(wanted, None)
            if target is None:
                return
    if target is not None:
        yield from fill_missing([target, *wanted], last, decoded=position + 1, expected=info.frames)


def _seconds(frame: av.VideoFrame, first_pts: int, stream) -> float:
    if frame.pts is None or not stream.time_base:
        return 0.0
    return float((frame.pts - first_pts) * stream.time_base)

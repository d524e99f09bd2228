"""Reading runs by keyframe seeks, a frame's index from its timestamp (see :mod:`inference.video`).

:class:`SeekingReader` raises :class:`Irregular` when the file's index, frame rate or
timestamps cannot be trusted to count frames by; its caller then reads sequentially."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import av
import numpy as np

from inference.video.decoding import Decoded, ReadStats, decoded_frames, fill_missing
from inference.video.packets import INDEX_SHARE, shown
from inference.video.probe import VideoInfo, stream_fps

# How far off a whole frame a timestamp may sit (as a share of a frame) and still count as
# that frame: containers with a millisecond time base round 30 fps timestamps to 33 or 34 ms.
TIMESTAMP_SLACK = 0.25
# Times a seek may land after the run it was for before the reader gives up on seeking.
SEEK_RETRIES = 2
# A decoder takes in a few packets past a frame before it gives the frame back (B-frames
# reordered, frames in flight on its threads): where a run's bytes end is reckoned this many
# frames past its last frame.
DECODER_LEAD_FRAMES = 8


class Irregular(Exception):
    """Timestamps or a seek cannot be trusted for this file: read it sequentially instead."""


class SeekingReader:
    """Keyframe seeks, frame indices from timestamps, over one open container."""

    LANDED_LATE = "landed late"

    def __init__(self, container, stream, info: VideoInfo, stats: ReadStats,
                 read_ahead_until: Callable[[int | None], None] | None = None):
        """``read_ahead_until(offset)`` is told, before each run is read, the byte offset where
        the packets that run needs end (:meth:`inference.storage.RangedObject.read_ahead_until`),
        when the container's index gives every packet's position."""
        self.container, self.stream, self.info, self.stats = container, stream, info, stats
        rate = stream_fps(stream)
        if container.duration is None:
            raise Irregular()  # a live-style file (MediaRecorder's WebM): seeking in it scans and misses
        try:  # Matroska reads cues that follow the clusters only when first asked to seek
            container.seek(0, backward=True, stream=stream)
        except av.FFmpegError:
            raise Irregular() from None
        entries = shown(stream.index_entries)
        keyframes = sorted(e.timestamp for e in entries if e.is_keyframe)
        if rate is None or not stream.time_base or not keyframes:
            raise Irregular()  # nothing to seek with, or no frame duration to count by
        self.step = 1 / (rate * stream.time_base)  # one frame, in time-base ticks
        self.keyframes = keyframes
        # each packet's decode time and where its bytes end; said to ``read_ahead_until`` only
        # when the index is a sample table with every packet's position (Matroska's cues list
        # keyframes only)
        self.packet_times = np.fromiter((e.timestamp for e in entries), np.int64, len(entries))
        self.packet_ends = np.fromiter((e.pos + e.size for e in entries), np.int64, len(entries))
        every_packet = len(entries) >= INDEX_SHARE * info.frames and all(e.pos >= 0 for e in entries)
        self.read_ahead_until = read_ahead_until if every_packet else None
        self.decoded = decoded_frames(container, stream, stats)
        first = next(self.decoded, None)
        if first is None or first.pts is None:
            raise Irregular()  # nothing decodes from the start: the sequential pass says why
        self.first_pts = first.pts
        # Index timestamps are decode times in MP4 (a B-frame delay before presentation) and
        # presentation times elsewhere; the first keyframe is frame 0 either way.
        self.delay = first.pts - keyframes[0]
        self.pending: av.VideoFrame | None = first  # decoded, not yet looked at
        self.position = -1  # index of the last frame looked at
        self.last: Decoded | None = None

    def frames(self, runs: Sequence[range]) -> Iterator[Decoded]:
        for run in runs:
            yield from self._run(run)

    def _index(self, frame: av.VideoFrame) -> int:
        if frame.pts is None:
            raise Irregular()
        offset = (frame.pts - self.first_pts) / self.step
        index = round(offset)
        if abs(offset - index) > TIMESTAMP_SLACK:
            raise Irregular()
        return index

    def _keyframe_before(self, start: int, back: int) -> tuple[int, int] | None:
        """(timestamp, estimated index) of the keyframe ``back`` keyframes before the last
        one at or before frame ``start``."""
        indices = [(t, round((t + self.delay - self.first_pts) / self.step)) for t in self.keyframes]
        at_or_before = [k for k in indices if k[1] <= start]
        return at_or_before[-1 - back] if len(at_or_before) > back else None

    def _bytes_end(self, last: int) -> int:
        """Where the packets end that the decoder needs to give back frame ``last`` (the
        index lists decode times: frame 0's is ``first_pts - delay``)."""
        until = self.first_pts - self.delay + (last + DECODER_LEAD_FRAMES) * self.step
        return int(self.packet_ends[self.packet_times <= until].max(initial=0))

    def _run(self, run: range) -> Iterator[Decoded]:
        for back in range(SEEK_RETRIES + 1):
            keyframe = self._keyframe_before(run.start, back)
            behind = run.start <= self.position  # asked for after a later run
            if keyframe is None and (behind or back):
                raise Irregular()
            landing = None
            if keyframe is not None and (behind or back or keyframe[1] > self.position + 1):
                # The keyframe lies past what was decoded (or the run lies before it): jump
                # there. Otherwise decoding on from here reaches the run without decoding any
                # frame twice.
                try:
                    # by its presentation time: MP4's seek compares those, not the index's decode times
                    self.container.seek(keyframe[0] + self.delay, backward=True, any_frame=False, stream=self.stream)
                except av.FFmpegError:
                    raise Irregular() from None
                self.stats.seeks += 1
                self.decoded = decoded_frames(self.container, self.stream, self.stats)
                self.pending = None
                self.position = keyframe[1] - 1
                landing = keyframe[1]
            if self.read_ahead_until is not None:
                self.read_ahead_until(self._bytes_end(run.stop - 1))
            outcome = yield from self._decode_run(run, landing)
            if outcome is not self.LANDED_LATE:
                return
        raise Irregular()

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
                raise Irregular()  # a gap or a repeat: the timestamps do not count frames
            self.position, expected = index, index + 1
            if index >= run.start:
                self.last = Decoded(index, float((decoded.pts - self.first_pts) * self.stream.time_base), decoded)
                yield self.last
        missing = [i for i in run if i > self.position]
        if missing:  # the stream ended before the run did
            if expected is None or self.last is None:
                raise Irregular()  # a seek past the end: only a sequential pass can count the frames
            yield from fill_missing(missing, self.last, decoded=self.position + 1, expected=self.info.frames)
        return None

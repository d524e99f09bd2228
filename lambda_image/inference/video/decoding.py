"""What both ways of reading share: the decoder's frames as they come (:func:`decoded_frames`),
each with its index once placed (:class:`Decoded`), the count of what a read did
(:class:`ReadStats`), and a stream that ends before the frame count its container announced
(:func:`fill_missing`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import av

from inference import errors


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


@dataclasses.dataclass(frozen=True)
class Decoded:
    """A frame as the decoder gave it, not yet converted."""

    index: int  # position in a sequential decode, from 0
    seconds: float  # presentation time after the first frame's
    frame: av.VideoFrame


def decoded_frames(container, stream, stats: ReadStats) -> Iterator[av.VideoFrame]:
    """The stream's frames from where the container stands; a damaged packet ends it."""
    try:
        for packet in container.demux(stream):
            for frame in packet.decode():
                stats.decoded += 1
                yield frame
    except av.FFmpegError:
        return


def count_tolerance(expected_frames: int) -> int:
    """How many frames short of its announced count a stream may end and not be truncated:
    some containers (Matroska, WebM) only estimate their frame count from the duration, so
    the stream may end a few frames early without the file being damaged."""
    return max(3, expected_frames // 50)


def fill_missing(missing: list[int], last: Decoded | None, *, decoded: int, expected: int) -> Iterator[Decoded]:
    """The ``missing`` indices past the stream's end, as repeats of its ``last`` frame, when
    the stream (``decoded`` frames) ends within :func:`count_tolerance` of the ``expected``
    count; otherwise the file is truncated (or nothing decoded at all)."""
    if last is None:
        raise errors.NoFrames(
            "No frame of the video could be decoded; the file is damaged or incomplete. Upload it again."
        )
    if expected - decoded > count_tolerance(expected):
        raise errors.VideoTruncated(
            f"The video stops after {decoded} of the {expected} frames it announces; the file is truncated or "
            "damaged. Upload the complete file."
        )
    for index in missing:
        yield Decoded(index, last.seconds, last.frame)

"""The compressed frames' sizes, without decoding and, where the container has an index,
without reading the frames: the entry detector's cheap first pass (:mod:`inference.detect`),
read through :meth:`inference.video.RunReader.packet_sizes`.

An MP4 or MOV file lists every sample's size and keyframe flag in its sample table, which
FFmpeg reads when it opens the file (PyAV's ``stream.index_entries``): the sizes of a 200 MB
file cost the few hundred kilobytes of its index, not its 200 MB. A container whose index is
missing or holds only keyframes (Matroska and WebM cues; MediaRecorder's WebM has none) is
demuxed instead: every packet is read, none decoded.
"""

from __future__ import annotations

import av
import numpy as np

INDEX_SHARE = 0.9  # an index listing fewer of the announced frames than this is not a sample table


def packet_sizes(container: av.container.InputContainer, expected_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """(N,) bytes per video packet in decode order, (N,) keyframe flags, from a container
    already open (a job's one container), wherever it stands: demuxing starts from the top and
    leaves it at its end. (Not a second container: two over one file object would move each
    other's read position.)"""
    found = _indexed(container, expected_frames)
    if found is None:
        container.seek(0)
        found = _demuxed(container, container.streams.video[0])
    return found


def shown(entries) -> list:
    """The index ``entries`` of the frames a stream shows: those an edit list hides (a video
    trimmed without re-encoding keeps the frames from the keyframe before its cut, which
    decoding needs) are marked as discarded."""
    return [e for e in entries if not e.is_discard]


def _indexed(container: av.container.InputContainer, expected_frames: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The sizes from the container's index (nothing is read), or None when the index is not
    a sample table."""
    entries = shown(container.streams.video[0].index_entries)
    if len(entries) < INDEX_SHARE * expected_frames or all(e.is_keyframe for e in entries[1:]):
        return None
    entries.sort(key=lambda e: e.timestamp)
    return (np.fromiter((e.size for e in entries), np.int64, len(entries)),
            np.fromiter((e.is_keyframe for e in entries), bool, len(entries)))


def _demuxed(container, stream) -> tuple[np.ndarray, np.ndarray]:
    found, keys = [], []
    try:
        for packet in container.demux(stream):
            if packet.size:
                found.append(packet.size)
                keys.append(packet.is_keyframe)
    except av.FFmpegError:
        pass  # a damaged tail: the sizes up to it
    return np.asarray(found, np.int64), np.asarray(keys, bool)

"""The compressed frames' sizes, read by demuxing only (no decoding): the entry detector's
cheap first pass (:mod:`inference.detect`)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from inference import errors


def sizes(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(N,) bytes per video packet in stream order, (N,) keyframe flags.

    OpenCV's FFmpeg backend hands out the undecoded packets when ``CAP_PROP_FORMAT`` is -1:
    a pass costs reading the file, not decoding it.
    """
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    try:
        if not capture.isOpened() or not capture.set(cv2.CAP_PROP_FORMAT, -1):
            raise errors.NotAVideo("The file could not be read as a video. Upload an MP4, MOV, WebM or MKV video.")
        found, keys = [], []
        while capture.grab():
            ok, packet = capture.retrieve()
            found.append(packet.size if ok else 0)
            keys.append(bool(capture.get(cv2.CAP_PROP_LRF_HAS_KEY_FRAME)))
    finally:
        capture.release()
    return np.asarray(found, np.int64), np.asarray(keys, bool)

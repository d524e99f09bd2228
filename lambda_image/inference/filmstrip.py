"""A small JPEG strip of frames the model saw, so a result shows what was scored."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from divescore.settings import Settings

FRAMES = 8
JPEG_QUALITY = 80


def pick(indices: Sequence[int], count: int = FRAMES) -> list[int]:
    """``count`` of the sorted ``indices``, evenly spread, first and last included."""
    unique = sorted(set(indices))
    if len(unique) <= count:
        return unique
    step = (len(unique) - 1) / (count - 1)
    return [unique[round(i * step)] for i in range(count)]


def encode(frames_rgb: Sequence[np.ndarray]) -> bytes:
    """Frames of one size side by side, as a JPEG. [(H, W, 3) RGB] -> (H, n*W, 3) -> bytes"""
    strip = cv2.cvtColor(np.hstack(frames_rgb), cv2.COLOR_RGB2BGR)
    ok, buffer = cv2.imencode(".jpg", strip, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise RuntimeError("OpenCV could not encode the filmstrip")
    return buffer.tobytes()


def upload(s3, settings: Settings, job_id: str, jpeg: bytes) -> str:
    """Store the strip under ``results/{job_id}/``; returns its key (clients get a pre-signed URL)."""
    key = settings.filmstrip_key(job_id)
    s3.put_object(Bucket=settings.bucket, Key=key, Body=jpeg, ContentType="image/jpeg")
    return key

"""Reading video files with OpenCV: what a file holds (:func:`probe`) and the frames we need
(:func:`read_frames`).

Frames are read by one sequential pass of ``grab()`` (demux + decode) and ``retrieve()``
(colour conversion) only for the frames we keep. Seeking is never used: on H.264 each seek
decodes again from the previous keyframe, 4-35x slower than a sequential pass. Only one
full-size frame is held at a time, so memory stays bounded whatever the file's size.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Iterator
from pathlib import Path

import cv2
import numpy as np

from divescore.settings import Settings
from inference import errors

# A frame smaller than this on either side holds nothing a model could score.
MIN_FRAME_SIDE = 32
# Used for the duration check when a file does not state a usable frame rate.
ASSUMED_FPS = 30.0
# FFmpeg opens still images as one-frame videos; these are their codec tags as OpenCV reports them.
STILL_IMAGE_CODECS = frozenset({"MPNG", "MJPG", "webp", "tiff", "gif", ""})


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
    width: int
    height: int
    codec: str = ""  # OpenCV's FOURCC tag, e.g. "h264", "FMP4"

    @property
    def duration_seconds(self) -> float:
        return self.frames / self.fps

    def as_dict(self) -> dict:
        return {"frames": self.frames, "fps": round(self.fps, 3), "width": self.width, "height": self.height,
                "duration_s": round(self.duration_seconds, 3), "codec": self.codec}


def _open(path: str | Path) -> cv2.VideoCapture:
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    if not capture.isOpened():
        capture.release()
        raise errors.NotAVideo(
            "The file could not be read as a video (unknown format, damaged, or without a video track). "
            "Upload an MP4, MOV, WebM or MKV video."
        )
    return capture


def probe(path: str | Path, limits: VideoLimits) -> VideoInfo:
    """The file's frame count, frame rate and size, checked against ``limits`` before any
    decoding. Raises the :mod:`inference.errors` class that says what is wrong."""
    capture = _open(path)
    try:
        width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        fps = capture.get(cv2.CAP_PROP_FPS)
        if not math.isfinite(fps) or not 0 < fps <= 1000:
            fps = ASSUMED_FPS
        if width <= 0 or height <= 0:
            raise errors.NotAVideo("The file has no readable video track. Upload a video file.")
        _check_resolution(width, height, limits)
        frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        if frames <= 0:  # the container does not say: count by decoding, within the duration limit
            frames = _count_by_grabbing(capture, limit=math.ceil(limits.max_seconds * fps) + 1)
        codec = _fourcc(capture)
    finally:
        capture.release()
    info = VideoInfo(frames=frames, fps=fps, width=width, height=height, codec=codec)
    _check_length(info, limits)
    return info


def _fourcc(capture: cv2.VideoCapture) -> str:
    tag = int(capture.get(cv2.CAP_PROP_FOURCC)) & 0xFFFFFFFF
    return tag.to_bytes(4, "little").decode("latin-1").strip("\0 ")


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


def _count_by_grabbing(capture: cv2.VideoCapture, limit: int) -> int:
    count = 0
    while count <= limit and capture.grab():
        count += 1
    if count > limit:
        raise errors.VideoTooLong("The video is longer than the longest accepted duration. Trim it to the dive.")
    return count


def read_frames(path: str | Path, indices: Iterable[int], expected_frames: int) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(index, frame)`` for each wanted index, in increasing order; frames are BGR
    ``(H, W, 3)`` uint8 as OpenCV decodes them.

    ``expected_frames`` is the count :func:`probe` found. A stream that ends a few frames
    early (an estimated count) repeats its last frame for the missing indices; one that ends
    far earlier is a truncated file.
    """
    wanted = sorted(set(indices))
    capture = _open(path)
    try:
        position = -1  # index of the frame the capture stands on
        last_frame = None
        for done, index in enumerate(wanted):
            while position < index and capture.grab():
                position += 1
            ok, frame = capture.retrieve() if position == index else (False, None)
            if not ok:
                yield from _fill_missing(wanted[done:], last_frame, decoded=position + 1, expected=expected_frames)
                return
            last_frame = frame
            yield index, frame
    finally:
        capture.release()


def _count_tolerance(expected_frames: int) -> int:
    # Some containers (Matroska, WebM) only estimate their frame count from the duration, so
    # the stream may end a few frames early without the file being damaged.
    return max(3, expected_frames // 50)


def _fill_missing(missing: list[int], last_frame, *, decoded: int, expected: int):
    if last_frame is None:
        raise errors.NoFrames(
            "No frame of the video could be decoded; the file is damaged or incomplete. Upload it again."
        )
    if expected - decoded > _count_tolerance(expected):
        raise errors.VideoTruncated(
            f"The video stops after {decoded} of the {expected} frames it announces; the file is truncated or "
            "damaged. Upload the complete file."
        )
    for index in missing:
        yield index, last_frame

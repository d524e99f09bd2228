"""Opening a video and what it holds: :func:`probe` reads the frame count, frame rate, size,
codec and rotation of an open container and checks them against :class:`VideoLimits` before
any frame is decoded, raising the :mod:`inference.errors` class that says what is wrong."""

from __future__ import annotations

import dataclasses
import math
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO

import av

from divescore.settings import Settings
from inference import errors
from inference.video.packets import shown

# A frame smaller than this on either side holds nothing a model could score.
MIN_FRAME_SIDE = 32
# Used for the duration check when a file does not state a usable frame rate.
ASSUMED_FPS = 30.0
# FFmpeg opens still images as one-frame videos; these are their codecs.
STILL_IMAGE_CODECS = frozenset({"png", "mjpeg", "webp", "tiff", "gif", "bmp", "jpegls", "qoi", ""})
READ_BUFFER_BYTES = 64 * 1024  # what PyAV reads from a file object at a time (its default, 32 KiB, means many calls)

# A path, or a seekable binary file object (:class:`inference.storage.RangedObject` reads an
# S3 object through ranged GETs).
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


def video_stream(container):
    """The video stream, set up for decoding with FFmpeg's threads (before its first frame:
    the decoder's threads are fixed once it is open)."""
    stream = container.streams.video[0]
    if not stream.codec_context.is_open:
        stream.thread_type = "AUTO"
    return stream


def stream_fps(stream) -> Fraction | None:
    """The frame rate the stream states, or None when it states none that is usable."""
    for rate in (stream.average_rate, stream.base_rate, stream.guessed_rate):
        if rate and 0 < rate <= 1000:
            return Fraction(rate)
    return None


def probe(container: av.container.InputContainer, limits: VideoLimits) -> VideoInfo:
    """What the open ``container`` holds, checked against ``limits``; the container is left
    open with its first frame decoded."""
    stream = video_stream(container)
    context = stream.codec_context
    width, height = context.width, context.height
    if width <= 0 or height <= 0:
        raise errors.NotAVideo("The file has no readable video track. Upload a video file.")
    _check_resolution(width, height, limits)
    rate = stream_fps(stream)
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


def _quarter_turns(degrees: float) -> int:
    return round(degrees / 90.0) % 4 * 90 if math.isfinite(degrees) else 0


def _announced_frames(container, stream, fps: float) -> int:
    if stream.frames > 0:
        return _shown(stream)
    if stream.duration and stream.time_base:
        seconds = float(stream.duration * stream.time_base)
    elif container.duration:
        seconds = container.duration / av.time_base
    else:
        return 0
    return round(seconds * fps)


def _shown(stream) -> int:
    """The frames a stream with a frame count shows. A video trimmed without re-encoding (as
    ``ffmpeg -ss ... -c copy`` writes it) counts the frames its edit list hides too
    (:func:`inference.video.packets.shown`)."""
    entries = stream.index_entries
    if len(entries) != stream.frames:  # no sample table to tell
        return stream.frames
    return len(shown(entries))


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

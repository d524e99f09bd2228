"""The benchmark's videos, generated with the ffmpeg binary that ships in imageio-ffmpeg
(never downloaded), and kept in ``.cache/bench/`` so later runs skip the encoding.

H.264 with x264's ``superfast`` preset: CABAC, B-frames and the deblocking filter, as phones
and cameras write it, so decoding costs what it costs on real uploads. The large file gets a
little temporal noise, like a camera sensor's, so that it really uses its 16 Mbit/s.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import time
from pathlib import Path

import imageio_ffmpeg

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()
ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "bench"


@dataclasses.dataclass(frozen=True)
class VideoSpec:
    name: str
    width: int
    height: int
    seconds: float
    fps: int = 25
    bitrate: str | None = None  # None: x264's default quality (CRF 23)
    noise: int = 0
    max_bytes: int | None = None  # stop writing at this size (ffmpeg -fs)
    gop: int | None = None  # frames between keyframes; None: x264's default (250, 10 s at 25 fps)

    @property
    def frames(self) -> int:
        return round(self.seconds * self.fps)

    def filename(self) -> str:
        parts = [self.name, f"{self.width}x{self.height}", f"{self.frames}f", f"{self.fps}fps"]
        if self.bitrate:
            parts.append(self.bitrate)
        if self.noise:
            parts.append(f"n{self.noise}")
        if self.max_bytes:
            parts.append(f"max{self.max_bytes}")
        if self.gop:
            parts.append(f"g{self.gop}")
        return "-".join(parts) + ".mp4"


def ffmpeg_command(spec: VideoSpec, path: Path) -> list[str]:
    source = f"testsrc2=size={spec.width}x{spec.height}:rate={spec.fps}"
    if spec.noise:
        source += f",noise=alls={spec.noise}:allf=t"
    rate = ["-b:v", spec.bitrate, "-maxrate", spec.bitrate, "-bufsize", spec.bitrate] if spec.bitrate else []
    size_cap = ["-fs", str(spec.max_bytes)] if spec.max_bytes else []
    keyframes = ["-g", str(spec.gop), "-keyint_min", str(spec.gop)] if spec.gop else []
    return [
        FFMPEG,
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        source,
        "-frames:v",
        str(spec.frames),
        "-c:v",
        "libx264",
        "-preset",
        "superfast",
        *rate,
        *keyframes,
        "-pix_fmt",
        "yuv420p",
        "-movflags",
        "+faststart",
        *size_cap,
        "-f",
        "mp4",
        str(path),
    ]


def ensure(spec: VideoSpec, cache: Path = CACHE) -> Path:
    """The video for ``spec``, generated the first time (written aside, then renamed)."""
    path = cache / spec.filename()
    if path.is_file():
        return path
    cache.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        subprocess.run(ffmpeg_command(spec, partial), check=True, stdin=subprocess.DEVNULL)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def decode_seconds(path: Path) -> float:
    """How long the ffmpeg command-line tool takes only to decode ``path`` (``-f null``):
    the floor for anything that has to look at every frame."""
    started = time.perf_counter()
    subprocess.run(
        [FFMPEG, "-hide_banner", "-loglevel", "error", "-i", str(path), "-f", "null", "-"],
        check=True,
        stdin=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


# -- the benchmark's videos ---------------------------------------------------------------


def clip_720p(seconds: float) -> VideoSpec:
    """The pipeline-overhead clip: 5 s of 720p H.264."""
    return VideoSpec("clip", 1280, 720, seconds)


def big_1080p(seconds: float, bitrate: str, max_bytes: int, gop: int | None = None) -> VideoSpec:
    """The large upload: 1080p at 16 Mbit/s, just under the upload limit in a full run; a
    keyframe every 10 s (x264's default), or every ``gop`` frames (phones: one a second)."""
    return VideoSpec("big", 1920, 1080, seconds, bitrate=bitrate, noise=12, max_bytes=max_bytes, gop=gop)


def short_clip(seconds: float) -> VideoSpec:
    """A queued job for latency and throughput: small frames, so the model dominates."""
    return VideoSpec("short", 640, 360, seconds)

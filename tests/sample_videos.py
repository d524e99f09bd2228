"""Video files for tests, made with the ffmpeg binary that ships in imageio-ffmpeg."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import imageio_ffmpeg


def _ffmpeg(*args: str) -> None:
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-y", *args], check=True)


def small_video(path: Path) -> Path:
    """A 2 s, 25 fps test pattern (50 frames, about 15 kB): enough frames for the model."""
    _ffmpeg("-f", "lavfi", "-i", "testsrc=duration=2:size=176x144:rate=25", "-pix_fmt", "yuv420p", str(path))
    return path


def large_video(path: Path, min_bytes: int) -> Path:
    """A real video of at least ``min_bytes``: noise at the highest quality barely compresses."""
    seconds = 2
    while True:
        _ffmpeg("-f", "lavfi", "-i", "testsrc2=size=480x360:rate=25,noise=alls=80:allf=t", "-t", str(seconds),
                "-c:v", "mpeg4", "-q:v", "1", "-pix_fmt", "yuv420p", str(path))
        if path.stat().st_size >= min_bytes:
            return path
        seconds *= 2


def not_a_video(path: Path, size: int = 64 * 1024) -> Path:
    """Random bytes: what the function cannot decode, whatever the file is called."""
    path.write_bytes(os.urandom(size))
    return path


def sparse_file(path: Path, size: int) -> Path:
    """A file of ``size`` bytes that takes no disk space (for size limits)."""
    with open(path, "wb") as f:
        f.truncate(size)
    return path

"""Test videos, generated here and never downloaded: OpenCV's writer for MPEG-4 Part 2, the
``ffmpeg`` binary shipped in the PyPI package imageio-ffmpeg for H.264 and for the odd files.

    make_video(path, seconds=2.0, fps=25, size=(320, 240), codec="mp4v" | "h264" | "mpeg4")
    make_encoded(path, kind, seconds=4.0, gop=25)   # the formats the seeking decoder must read
                                                    # exactly: FORMATS
    make_rotated(path, degrees=90)                  # a phone's portrait video (display matrix)

and one maker per bad input (``BAD_INPUTS``: name → maker(path) → path), each writing a file
that a video pipeline must turn away with a clear reason.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import cv2
import imageio_ffmpeg
import numpy as np

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()
CODECS = ("mp4v", "h264", "mpeg4")


def frame(i: int, size: tuple[int, int]) -> np.ndarray:
    """Frame ``i`` of a moving test pattern, BGR uint8 (height, width, 3): a colour gradient,
    a square crossing it and a stripe moving down, so that consecutive frames differ."""
    width, height = size
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    image = np.empty((height, width, 3), np.uint8)
    image[..., 0] = (x + 3 * i) % 256
    image[..., 1] = (y + 5 * i) % 256
    image[..., 2] = ((x + y) / 2 + 7 * i) % 256
    side = max(1, min(width, height) // 4)
    left = (i * max(1, width // 25)) % max(1, width - side)
    image[height // 3: height // 3 + side, left: left + side] = (255, 255, 255)
    row = (i * 3) % height
    image[row: row + 2] = 0
    return image


def make_video(path: str | Path, seconds: float = 2.0, fps: float = 25, size: tuple[int, int] = (320, 240),
               codec: str = "mp4v") -> Path:
    """A video of ``round(seconds * fps)`` frames (at least one) of the test pattern.

    ``mp4v``: MPEG-4 Part 2 by OpenCV's writer (index at the end of the file); ``h264``:
    libx264 by ffmpeg, index at the start (``+faststart``) as phones and web exports write it;
    ``mpeg4``: MPEG-4 Part 2 by ffmpeg, which accepts sizes OpenCV's writer refuses (1x1).
    """
    path = Path(path)
    count = max(1, round(seconds * fps))
    if codec == "mp4v":
        # OpenCV picks the container from the name's extension, which an upload's name may lack.
        written = path if path.suffix == ".mp4" else path.with_name(path.name + ".mp4")
        writer = cv2.VideoWriter(str(written), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
        if not writer.isOpened():
            raise RuntimeError(f"OpenCV cannot write mp4v at {size}")
        for i in range(count):
            writer.write(frame(i, size))
        writer.release()
        return written.replace(path)
    if codec not in CODECS:
        raise ValueError(f"codec must be one of {CODECS}")
    width, height = size
    if codec == "h264":
        pixel_format = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
        encoder = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", pixel_format, "-movflags", "+faststart"]
    else:
        encoder = ["-c:v", "mpeg4", "-q:v", "5"]
    command = [FFMPEG, "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "bgr24",
               "-s", f"{width}x{height}", "-r", str(fps), "-i", "-", *encoder, "-f", "mp4", str(path)]
    with subprocess.Popen(command, stdin=subprocess.PIPE) as ffmpeg:
        for i in range(count):  # one frame at a time: memory stays small for long videos
            ffmpeg.stdin.write(frame(i, size).tobytes())
        ffmpeg.stdin.close()
    if ffmpeg.returncode != 0:
        raise RuntimeError(f"ffmpeg failed ({ffmpeg.returncode}) writing {path}")
    return path


# kind → (encoder options, container, whether the file goes through a pipe: no index, no duration)
FORMATS: dict[str, tuple[list[str], str, bool]] = {
    # B-frames (x264's ultrafast preset has none) and an edit list, index first
    "h264_bframes": (["-c:v", "libx264", "-preset", "veryfast", "-bf", "3", "-pix_fmt", "yuv420p",
                      "-movflags", "+faststart"], "mp4", False),
    # the index (moov) after the media data, as cameras and many editors write it
    "h264_index_at_end": (["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p"], "mp4", False),
    "hevc": (["-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error", "-tag:v", "hvc1",
              "-pix_fmt", "yuv420p"], "mp4", False),
    "vp9_webm": (["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-pix_fmt", "yuv420p"],
                 "webm", False),
    "mjpeg_avi": (["-c:v", "mjpeg", "-q:v", "5", "-pix_fmt", "yuvj420p"], "avi", False),
    # as a browser's MediaRecorder writes it: streamed (no cues, no duration), timestamps in
    # milliseconds that do not fall on a regular grid
    "webm_recorder": (["-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-pix_fmt", "yuv420p",
                       "-live", "1"], "webm", True),
}


def make_encoded(path: str | Path, kind: str, seconds: float = 4.0, fps: float = 25, size: tuple[int, int] = (160, 120),
                 gop: int = 25) -> Path:
    """``round(seconds * fps)`` frames of the test pattern in one of :data:`FORMATS`, with a
    keyframe every ``gop`` frames."""
    path = Path(path)
    options, container, streamed = FORMATS[kind]
    width, height = size
    timing = []
    if kind == "webm_recorder":  # jitter of up to 0.6 frame, as a recorder stamping frames as they come
        timing = ["-vf", f"settb=1/1000,setpts='(N+0.3*mod(N*7\\,3))/{fps}/TB'", "-fps_mode", "passthrough",
                  "-enc_time_base", "1/1000"]
    command = [FFMPEG, "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "bgr24",
               "-s", f"{width}x{height}", "-r", str(fps), "-i", "pipe:0", *timing, *options, "-g", str(gop),
               "-f", container, "pipe:1" if streamed else str(path)]
    with open(path if streamed else os.devnull, "wb") as out, \
            subprocess.Popen(command, stdin=subprocess.PIPE, stdout=out) as ffmpeg:
        for i in range(max(1, round(seconds * fps))):
            ffmpeg.stdin.write(frame(i, size).tobytes())
        ffmpeg.stdin.close()
    if ffmpeg.returncode != 0:
        raise RuntimeError(f"ffmpeg failed ({ffmpeg.returncode}) writing {path}")
    return path


def make_rotated(path: str | Path, degrees: int = 90, seconds: float = 2.0, size: tuple[int, int] = (160, 96)) -> Path:
    """A landscape-encoded H.264 file whose display matrix turns it ``degrees`` counterclockwise,
    as a phone held upright records it."""
    path = Path(path)
    plain = make_video(path.with_name(path.name + ".plain.mp4"), seconds=seconds, size=size, codec="h264")
    _ffmpeg("-display_rotation", str(degrees), "-i", str(plain), "-c", "copy", "-f", "mp4", str(path))
    plain.unlink()
    return path


def _ffmpeg(*args: str) -> None:
    subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def _mp4_boxes(data: bytes) -> list[tuple[bytes, int, int]]:
    """(type, offset, size) of an MP4 file's top-level boxes."""
    boxes, offset = [], 0
    while offset + 8 <= len(data):
        size = int.from_bytes(data[offset:offset + 4], "big")
        boxes.append((data[offset + 4:offset + 8], offset, size))
        if size < 8:
            break
        offset += size
    return boxes


def make_large_video(path: str | Path, min_bytes: int) -> Path:
    """A real video of at least ``min_bytes`` (to exercise multipart uploads): noise at the
    highest quality barely compresses, so its size grows with its length."""
    path = Path(path)
    seconds = 2
    while True:
        _ffmpeg("-f", "lavfi", "-i", "testsrc2=size=480x360:rate=25,noise=alls=80:allf=t", "-t", str(seconds),
                "-c:v", "mpeg4", "-q:v", "1", "-pix_fmt", "yuv420p", "-f", "mp4", str(path))
        if path.stat().st_size >= min_bytes:
            return path
        seconds *= 2


def make_detailed(path: str | Path, size: tuple[int, int], frames: int = 3) -> Path:
    """H.264 frames with fine detail (ffmpeg's testsrc2: text, thin lines, a colour wheel) and a
    camera sensor's noise: what a resize that does not smooth before shrinking gets wrong."""
    width, height = size
    _ffmpeg("-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate=25,noise=alls=20:allf=t",
            "-frames:v", str(frames), "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
            "-f", "mp4", str(path))
    return Path(path)


def make_sparse(path: str | Path, size: int) -> Path:
    """A file of ``size`` bytes that takes no disk space (for the size limits)."""
    path = Path(path)
    with open(path, "wb") as f:
        f.truncate(size)
    return path


# -- bad inputs -------------------------------------------------------------------------

def make_random_bytes(path: str | Path, size: int = 64 * 1024, seed: int = 0) -> Path:
    path = Path(path)
    path.write_bytes(np.random.default_rng(seed).bytes(size))
    return path


def make_empty(path: str | Path) -> Path:
    path = Path(path)
    path.write_bytes(b"")
    return path


def make_png(path: str | Path) -> Path:
    path = Path(path)
    ok, data = cv2.imencode(".png", frame(0, (64, 48)))
    assert ok
    path.write_bytes(data.tobytes())
    return path


def make_pdf(path: str | Path) -> Path:
    path = Path(path)
    path.write_bytes(
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
        b"trailer<</Root 1 0 R>>\n%%EOF\n"
    )
    return path


def make_truncated(path: str | Path) -> Path:
    """The first half of a 2 s H.264 MP4 whose index comes first: it opens, announces 50
    frames, and its data stops halfway (an interrupted upload or copy)."""
    path = Path(path)
    make_video(path, seconds=2.0, size=(160, 120), codec="h264")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def make_moov_cut(path: str | Path) -> Path:
    """An MP4 cut in the middle of its ``moov`` atom (the index): no reader can find the frames."""
    path = Path(path)
    make_video(path, seconds=2.0, size=(160, 120), codec="h264")
    data = path.read_bytes()
    moov = next((offset, size) for kind, offset, size in _mp4_boxes(data) if kind == b"moov")
    path.write_bytes(data[: moov[0] + moov[1] // 2])
    return path


def make_header_only(path: str | Path) -> Path:
    """An MP4 whose index announces 50 frames and whose media data is gone: zero frames decode."""
    path = Path(path)
    make_video(path, seconds=2.0, size=(160, 120), codec="h264")
    data = path.read_bytes()
    mdat = next(offset for kind, offset, _ in _mp4_boxes(data) if kind == b"mdat")
    path.write_bytes(data[:mdat])
    return path


def make_audio_only(path: str | Path, seconds: float = 1.0) -> Path:
    """An MP4 with an AAC sine tone and no video track."""
    path = Path(path)
    _ffmpeg("-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}", "-c:a", "aac", "-f", "mp4", str(path))
    return path


def make_one_frame(path: str | Path) -> Path:
    return make_video(path, seconds=0.04, fps=25, size=(160, 120))


def make_short(path: str | Path, seconds: float = 0.2) -> Path:
    return make_video(path, seconds=seconds, fps=25, size=(160, 120))


def make_tiny(path: str | Path) -> Path:
    """A 1x1-pixel video (MPEG-4 Part 2 through ffmpeg; OpenCV's writer refuses the size)."""
    return make_video(path, seconds=1.0, fps=25, size=(1, 1), codec="mpeg4")


def make_8k(path: str | Path) -> Path:
    """Two black 7680x4320 frames: a real 8K file, small and quick to write."""
    path = Path(path)
    _ffmpeg("-f", "lavfi", "-i", "color=c=black:s=7680x4320:r=25:d=0.08", "-c:v", "libx264", "-preset",
            "ultrafast", "-pix_fmt", "yuv420p", "-f", "mp4", str(path))
    return path


def files_to_submit(folder: Path, multipart_threshold_bytes: int) -> dict[str, Path]:
    """What a person submits through the page or the CLI: a small video, a broken one, a text
    file, and a video just large enough for a multipart upload."""
    (folder / "notes.txt").write_text("not a video")
    return {
        "small": make_video(folder / "dive.mp4", seconds=2, size=(176, 144), codec="h264"),
        "broken": make_random_bytes(folder / "broken.mp4"),
        "text": folder / "notes.txt",
        "large": make_large_video(folder / "large.mp4", multipart_threshold_bytes + 1),
    }


BAD_INPUTS: dict[str, Callable[[Path], Path]] = {
    "random_bytes": make_random_bytes,
    "empty": make_empty,
    "png": make_png,
    "pdf": make_pdf,
    "truncated": make_truncated,
    "moov_cut": make_moov_cut,
    "header_only": make_header_only,
    "audio_only": make_audio_only,
    "one_frame": make_one_frame,
    "short_0.2s": make_short,
    "tiny_1x1": make_tiny,
    "8k": make_8k,
}

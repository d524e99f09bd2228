"""Generated dive videos with a known entry, for the entry detector's tests and the benchmark.

A pool seen from the side: sky, a tower with a platform on the left, rippling water below.
A diver stands on the platform, jumps, turns in the air, enters the water at ``entry_s`` and
raises a splash that rises, falls back and leaves foam. Everything is a function of time, so the
same scene rendered at 25, 50 or 100 fps shows the same motion. Distractors, each optional:
camera shake, a person walking along the deck, lighting changes (slow drifts and sudden steps),
and a second fall cut away before it reaches the water (the video cuts to a crowd shot).

Frames are drawn with numpy (BGR uint8) and encoded with the ``ffmpeg`` binary of the PyPI
package imageio-ffmpeg (a dev dependency: only tests and the benchmark generate videos).
This module lives in ``bench/`` because both ``tests/`` and ``bench/`` use it and the benchmark
must not import from the tests; it is not in ``divescore/`` because that package ships in both
images and the services image has no numpy (nor either image imageio-ffmpeg).
"""

from __future__ import annotations

import dataclasses
import math
import subprocess
from pathlib import Path

import numpy as np

GRAVITY = 9.81  # m/s²
PLATFORM_M = 10.0  # the diver falls this far (10 m platform)
TAKEOFF_UP_MPS = 3.0  # upward speed at take-off
SPLASH_S = 1.6  # how long the splash and foam last after the entry


def flight_seconds(height_m: float = PLATFORM_M, up_mps: float = TAKEOFF_UP_MPS) -> float:
    """Take-off to entry: solve h + v t - g t²/2 = 0."""
    return (up_mps + math.sqrt(up_mps**2 + 2 * GRAVITY * height_m)) / GRAVITY


@dataclasses.dataclass(frozen=True)
class Scene:
    """One video's script. Times in seconds from the start of the video."""

    seconds: float
    fps: float
    entry_s: float | None = None  # None: no dive
    size: tuple[int, int] = (320, 180)  # width, height
    shake_px: float = 0.0  # camera shake amplitude
    walker: bool = False  # a person walking along the deck
    lighting: bool = False  # slow brightness drifts and two sudden steps
    cutaway_fall_s: float | None = None  # a second diver takes off here; the video cuts before the water
    seed: int = 0
    extra_entries_s: tuple[float, ...] = ()  # more dives from the same platform, entering the water then
    follow: bool = False  # a broadcast camera: it tilts down with the diver and arrives at the water with them

    @property
    def entries_s(self) -> list[float]:
        """Every dive's entry, in time order."""
        return sorted(([self.entry_s] if self.entry_s is not None else []) + list(self.extra_entries_s))

    @property
    def frames(self) -> int:
        return round(self.seconds * self.fps)

    @property
    def entry_frame(self) -> int | None:
        """The first frame at or after the entry (the frame an annotator would mark)."""
        return None if self.entry_s is None else math.ceil(self.entry_s * self.fps - 1e-9)

    def name(self) -> str:
        parts = [f"{self.seconds:g}s", f"{self.fps:g}fps", f"entry{self.entry_s:g}" if self.entry_s else "nodive"]
        parts += [f"entry{t:g}" for t in self.extra_entries_s]
        parts += [p for p, on in (("shake", self.shake_px), ("walker", self.walker), ("light", self.lighting),
                                  ("cutaway", self.cutaway_fall_s is not None), ("follow", self.follow)) if on]
        return "-".join(parts) + f"-s{self.seed}"


class _Geometry:
    """Where things are, in pixels, for a frame size."""

    def __init__(self, width: int, height: int):
        self.w, self.h = width, height
        self.water_y = int(height * 0.68)
        self.platform_y = int(height * 0.22)
        self.platform_x1 = int(width * 0.28)  # the platform's end, over the water
        self.metre = (self.water_y - self.platform_y) / PLATFORM_M  # pixels per metre
        self.deck_y = self.water_y - 1


def _background(g: _Geometry, rng: np.random.Generator) -> np.ndarray:
    """The still parts: sky, stands, tower and platform. (H, W, 3) float32 BGR."""
    image = np.empty((g.h, g.w, 3), np.float32)
    rows = np.linspace(0.0, 1.0, g.water_y)[:, None]
    image[: g.water_y] = (np.array([230, 200, 170]) * (1 - rows) + np.array([200, 190, 180]) * rows)[:, None, :]
    # stands in the distance: blocks of colour behind the pool
    stands_top = int(g.h * 0.45)
    for x in range(0, g.w, 8):
        shade = rng.uniform(90, 160)
        image[stands_top: g.water_y - 4, x: x + 8] = (shade, shade * 0.9, shade * 1.1)
    tower_x0 = max(0, g.platform_x1 - int(g.w * 0.12))
    image[g.platform_y: g.water_y, tower_x0: tower_x0 + max(3, g.w // 40)] = (120, 120, 125)
    image[g.platform_y: g.platform_y + max(2, g.h // 60), :g.platform_x1] = (60, 60, 70)
    return image


def _water(g: _Geometry, t: float) -> np.ndarray:
    """The water at time ``t``: blue with small ripples drifting. (water rows, W, 3) float32."""
    y = np.arange(g.h - g.water_y, dtype=np.float32)[:, None]
    x = np.arange(g.w, dtype=np.float32)[None, :]
    ripple = 10 * np.sin(x * 0.21 + y * 0.9 - t * 2.3) * np.sin(x * 0.05 - y * 0.3 + t * 1.1)
    water = np.empty((g.h - g.water_y, g.w, 3), np.float32)
    water[..., 0] = 170 + ripple
    water[..., 1] = 120 + ripple * 0.8
    water[..., 2] = 40 + ripple * 0.3
    return water


def _disc(image: np.ndarray, cx: float, cy: float, r: float, colour, alpha: float = 1.0) -> None:
    h, w = image.shape[:2]
    x0, x1 = max(0, int(cx - r - 1)), min(w, int(cx + r + 2))
    y0, y1 = max(0, int(cy - r - 1)), min(h, int(cy + r + 2))
    if x0 >= x1 or y0 >= y1:
        return
    yy, xx = np.mgrid[y0:y1, x0:x1]
    inside = ((xx - cx) ** 2 + (yy - cy) ** 2) <= r * r
    patch = image[y0:y1, x0:x1]
    patch[inside] = patch[inside] * (1 - alpha) + np.asarray(colour, np.float32) * alpha


def _body(image: np.ndarray, cx: float, cy: float, length: float, angle: float, clip_y: int | None = None) -> None:
    """A diver: a row of skin-coloured discs along a rotating axis, cut at the water line."""
    for k in np.linspace(-0.5, 0.5, 7):
        x = cx + k * length * math.sin(angle)
        y = cy + k * length * math.cos(angle)
        if clip_y is not None and y > clip_y:
            continue
        _disc(image, x, y, max(1.2, length * 0.11), (120, 160, 215))


def _height_m(since_takeoff: float) -> float:
    """How high above the water the diver is ``since_takeoff`` seconds after the jump."""
    return PLATFORM_M + TAKEOFF_UP_MPS * since_takeoff - GRAVITY * since_takeoff**2 / 2


def _diver_position(g: _Geometry, since_takeoff: float, x_start: float) -> tuple[float, float, float]:
    """(x, y of the body's centre, rotation) ``since_takeoff`` seconds after the jump."""
    height = _height_m(since_takeoff)
    x = x_start + 1.2 * g.metre * since_takeoff
    return x, g.water_y - height * g.metre - 0.9 * g.metre, since_takeoff * 2.5 * math.pi


def _splash(image: np.ndarray, g: _Geometry, x: float, since_entry: float, rng_seed: int) -> None:
    """Droplets thrown up from the entry point, falling back; foam that spreads and fades."""
    if since_entry < 0 or since_entry > SPLASH_S:
        return
    rng = np.random.default_rng(rng_seed)
    count = 120
    up = rng.uniform(2.0, 6.0, count) * g.metre  # px/s
    side = rng.normal(0.0, 0.8, count) * g.metre
    born = rng.uniform(0.0, 0.25, count)  # droplets leave over the first quarter second
    size = rng.uniform(0.8, 2.2, count) * max(1.0, g.w / 320)
    for i in range(count):
        age = since_entry - born[i]
        if age < 0:
            continue
        rise = up[i] * age - GRAVITY * g.metre * age**2 / 2
        if rise < 0:
            continue
        _disc(image, x + side[i] * age, g.water_y - rise, size[i], (250, 250, 250), 0.9)
    fade = max(0.0, 1 - since_entry / SPLASH_S)
    spread = (0.5 + 2.0 * min(1.0, since_entry / 0.4)) * g.metre
    y0, y1 = g.water_y, min(g.h, g.water_y + max(2, int(g.h * 0.05)))
    x0, x1 = max(0, int(x - spread)), min(g.w, int(x + spread))
    if x0 < x1:
        foam = image[y0:y1, x0:x1]
        foam[:] = foam * (1 - 0.8 * fade) + 245 * 0.8 * fade


def _walker(image: np.ndarray, g: _Geometry, t: float) -> None:
    """A person walking along the deck, back and forth across the frame."""
    span = g.w * 0.8
    phase = (t * 0.06 * g.w) % (2 * span)
    x = g.w * 0.1 + (phase if phase < span else 2 * span - phase)
    bob = abs(math.sin(t * 6.0)) * g.h * 0.01
    height = g.h * 0.16
    for k in np.linspace(0, 1, 6):
        _disc(image, x, g.deck_y - bob - k * height, g.h * 0.02, (40, 60, 150))
    _disc(image, x, g.deck_y - bob - height * 1.1, g.h * 0.025, (110, 150, 200))


def _brightness(t: float, seconds: float) -> float:
    """Slow drifts plus two sudden steps (clouds, lights switched)."""
    level = 1 + 0.12 * math.sin(t * 0.7) + 0.06 * math.sin(t * 2.9)
    if seconds * 0.3 <= t < seconds * 0.55:
        level *= 0.75
    if t >= seconds * 0.8:
        level *= 1.2
    return level


def _crowd(g: _Geometry, t: float, rng_seed: int) -> np.ndarray:
    """The shot a broadcast cuts to: the stands, panning slowly."""
    rng = np.random.default_rng(rng_seed)
    tiles = rng.uniform(40, 220, (g.h // 6 + 2, g.w // 6 + 3, 3)).astype(np.float32)
    image = np.repeat(np.repeat(tiles, 6, axis=0), 6, axis=1)
    offset = int(t * 8) % 6
    return image[: g.h, offset: offset + g.w]


class Renderer:
    """Frames of a :class:`Scene`, one at a time."""

    def __init__(self, scene: Scene):
        self.scene = scene
        width, height = scene.size
        # a following camera looks at part of a world three frames tall, whose lower third is water
        self.g = _Geometry(width, height * 3 if scene.follow else height)
        self.rng = np.random.default_rng(scene.seed)
        self.background = _background(self.g, self.rng)
        self.shake = self.rng.normal(0, 1, (int(scene.seconds * 8) + 4, 2))  # 8 shake knots a second
        self.flight = flight_seconds()
        self.stand_x = self.g.platform_x1 - self.g.metre * 0.6

    def _shake_offset(self, t: float) -> tuple[int, int]:
        if not self.scene.shake_px:
            return 0, 0
        knot = t * 8
        i = int(knot)
        a = knot - i
        dx, dy = self.shake[i] * (1 - a) + self.shake[i + 1] * a
        return round(float(dx) * self.scene.shake_px), round(float(dy) * self.scene.shake_px)

    def _draw_dive(self, image: np.ndarray, entry_s: float, t: float, seed: int) -> None:
        g = self.g
        takeoff = entry_s - self.flight
        if t < takeoff - 3:
            return
        length = g.metre * 1.8
        if t < takeoff:  # standing at the end of the platform, a small bounce just before the jump
            bounce = max(0.0, math.sin((t - takeoff) * 6)) * g.metre * 0.1 if t > takeoff - 0.6 else 0.0
            _body(image, self.stand_x, g.platform_y - length / 2 - bounce, length, 0.0)
            return
        x, y, angle = _diver_position(g, t - takeoff, self.stand_x)
        if t < entry_s + 0.3:  # the last of the body goes under
            _body(image, x, y, length, angle if t < entry_s - 0.25 else 0.0, clip_y=g.water_y)
        _splash(image, g, _diver_position(g, self.flight, self.stand_x)[0], t - entry_s, seed)

    def frame(self, i: int) -> np.ndarray:
        """Frame ``i`` (BGR uint8, (H, W, 3))."""
        s, g = self.scene, self.g
        t = i / s.fps
        cut = s.cutaway_fall_s
        if cut is not None and cut + self.flight * 0.6 <= t < cut + self.flight * 0.6 + 2.5:
            image = _crowd(g, t, s.seed + 7)
        else:
            image = self.background.copy()
            image[g.water_y:] = _water(g, t)
            if s.walker:
                _walker(image, g, t)
            for n, entry_s in enumerate(s.entries_s):
                self._draw_dive(image, entry_s, t, s.seed + 1 + 10 * n)
            if cut is not None and t < cut + self.flight * 0.6:
                # the same jump, seen until the cut; this diver never reaches the water on screen
                self._draw_dive(image, cut + self.flight, t, s.seed + 2)
        if s.lighting:
            image *= _brightness(t, s.seconds)
        dx, dy = self._shake_offset(t)
        if dx or dy:
            image = np.roll(image, (dy, dx), axis=(0, 1))
        if s.follow:
            top = self._camera_top(t)
            image = image[top: top + s.size[1]]
        return np.clip(image, 0, 255).astype(np.uint8)

    def _camera_top(self, t: float) -> int:
        """A following camera's top row in the world: on the platform before the take-off,
        then down with the fall, so that it looks at the water (nine tenths of the frame) from
        the entry on."""
        g, height = self.g, self.scene.size[1]
        start, end = max(0.0, g.platform_y - height / 2), g.water_y - 0.1 * height
        entry_s = self.scene.entry_s
        if entry_s is None:
            return round(start)
        since = t - (entry_s - self.flight)
        fallen = 0.0 if since <= 0 else min(1.0, 1 - _height_m(since) / PLATFORM_M)
        return round(start + (end - start) * max(0.0, fallen))


def write(scene: Scene, path: str | Path, crf: int = 23, gop: int | None = None,
          keyframes_at: tuple[int, ...] = ()) -> Path:
    """Encode ``scene`` as an H.264 MP4 (x264 ``veryfast``, B-frames, as phones write it);
    a keyframe every ``gop`` frames (None: x264's default, up to 250), and one at each frame
    of ``keyframes_at`` besides (where an encoder starts one at a scene cut)."""
    import imageio_ffmpeg  # dev dependency

    path = Path(path)
    width, height = scene.size
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
               "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{width}x{height}", "-r", f"{scene.fps:g}", "-i", "-",
               "-c:v", "libx264", "-preset", "veryfast", "-crf", str(crf), "-pix_fmt", "yuv420p",
               *(["-g", str(gop), "-keyint_min", str(gop)] if gop else []),
               *(["-force_key_frames", "expr:" + "+".join(f"eq(n,{n})" for n in keyframes_at)] if keyframes_at else []),
               "-movflags", "+faststart", "-f", "mp4", str(path)]
    renderer = Renderer(scene)
    with subprocess.Popen(command, stdin=subprocess.PIPE) as ffmpeg:
        for i in range(scene.frames):
            ffmpeg.stdin.write(renderer.frame(i).tobytes())
        ffmpeg.stdin.close()
    if ffmpeg.returncode != 0:
        raise RuntimeError(f"ffmpeg failed ({ffmpeg.returncode}) writing {path}")
    return path


def three_dives() -> Scene:
    """A 36 s video of three dives from the platform, 11-12 s apart, a person walking the deck."""
    return Scene(36.0, 25, 8.3, extra_entries_s=(19.7, 31.2), walker=True, seed=21)


def corpus(seed: int = 0) -> list[Scene]:
    """The detector's test corpus: dives at different times in 10-60 s videos at 25, 30 and
    60 fps, each with some distractors, and videos of the same scene without a dive."""
    rng = np.random.default_rng(seed)
    scenes = []
    lengths = (10, 15, 20, 30, 45, 60)
    for n in range(24):
        seconds = float(lengths[n % len(lengths)])
        fps = (25, 30, 60)[n % 3]
        entry = round(float(rng.uniform(4.5, seconds - 2.0)), 3)
        cutaway = None
        if n % 4 == 1:  # the second diver falls well away from the real dive, and the video cuts
            options = [s for s in (entry - 9.0, entry + 4.0) if 0.5 < s < seconds - 4.5]
            cutaway = options[0] if options else None
        scenes.append(Scene(seconds, fps, entry, shake_px=(0.0, 1.5, 3.0)[n % 3 if n % 2 else 0],
                            walker=n % 2 == 0, lighting=n % 3 != 1, cutaway_fall_s=cutaway, seed=seed * 100 + n))
    for n in range(6):
        seconds = float((10, 20, 30, 45, 60, 15)[n])
        scenes.append(Scene(seconds, (25, 30, 60)[n % 3], None, shake_px=(0.0, 2.0)[n % 2], walker=True,
                            lighting=True, cutaway_fall_s=seconds / 2 if n % 2 else None, seed=seed * 100 + 50 + n))
    return scenes

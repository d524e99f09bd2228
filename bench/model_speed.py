"""1. Model throughput against the machine's limit, and what bf16 would do to a score.

The C3D-AVG forward on 6 clips (96 frames) as achieved GFLOP/s, divided by the GFLOP/s of the
fastest dense float32 kernel the same libraries run on this CPU, measured in the same run:
how much of what the machine can do the network gets. The reference is the faster of a
4096x4096 ``torch.mm`` (PyTorch's BLAS) and the same product as a 1x1x1 convolution
(4096 -> 4096 channels over 4096 positions, oneDNN): on some CPUs (AMD's, with AVX-512) the
BLAS leaves vector units idle that oneDNN's convolutions use, and the model then "beats" an
mm-only reference. The theoretical FMA peak from the CPU's flags, cores and clock is printed
beside it; a ratio over 1.0 means the reference is wrong, and the row says so.
FLOPs are counted by PyTorch's ``FlopCounterMode`` on the real architecture (77.0 GFLOP per
16x112x112 clip; MTL-AQA's figure is 77.1).

bf16 error: clips of a decoded video, each scored in float32 and with bf16's arithmetic
emulated on float32 kernels (:mod:`bench.precision`), so the figure is measured the same
way on every CPU; in points, and against the spread of the float32 scores.

Timings are the best of a few rounds after a warm-up, the references and every model variant
taking turns: the machine is shared, and the best run is the one least disturbed by others.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch

from bench import videos
from bench.machine import clock_mhz, cpu_flags, fma_peak_gflops
from bench.report import Metric, Spec, at_least, at_most

# A share of the machine's peak: over 1.0 is impossible, so the reference would be wrong.
TARGET = at_least(0.85, ceiling=1.0)
BF16_MAX_VS_SPREAD = 0.1
WEIGHTS_CACHE = Path(__file__).resolve().parent.parent / ".cache" / "weights"

REFERENCE_FP32 = Spec("matmul_gflops_fp32", "dense reference fp32 (fastest of mm, 1x1x1 conv)", "GFLOP/s")
FMA_PEAK_FP32 = Spec("fma_peak_gflops_fp32", "theoretical FMA peak fp32 (flags, cores, clock)", "GFLOP/s")
MODEL_FP32 = Spec("model_vs_matmul_fp32", "C3D fp32 / dense reference", "ratio", TARGET)
MODEL_FP32_CL3D = Spec("model_vs_matmul_fp32_cl3d", "C3D fp32 + channels_last_3d / dense reference", "ratio", TARGET)
MODEL_FUNCTION = Spec("model_vs_matmul_function", "C3D as the function runs it / dense reference", "ratio", TARGET)
BF16_ERROR = Spec("bf16_error_points", "bf16 vs fp32: largest score change", "points")
BF16_ERROR_VS_SPREAD = Spec(
    "bf16_error_vs_spread", "bf16 largest score change / spread of fp32 scores", "ratio", at_most(BF16_MAX_VS_SPREAD)
)
SPECS = (REFERENCE_FP32, FMA_PEAK_FP32, MODEL_FP32, MODEL_FP32_CL3D, MODEL_FUNCTION, BF16_ERROR, BF16_ERROR_VS_SPREAD)
VARIANTS = {MODEL_FP32: False, MODEL_FP32_CL3D: True}  # channels_last_3d or not, float32


def best_seconds_interleaved(runs: dict[object, tuple[Callable[[], object], int]], rounds: int) -> dict:
    """The best time of each run, taken in rounds: every run once (or its count of times) per
    round, after one warm-up each. Interleaving spreads the other users of a shared machine
    over all the runs alike, instead of one run taking a whole disturbed minute."""
    for run, _ in runs.values():
        run()
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(rounds):
        for key, (run, times) in runs.items():
            for _ in range(times):
                started = time.perf_counter()
                run()
                best[key] = min(best[key], time.perf_counter() - started)
    return best


def dense_kernels(n: int) -> dict[str, Callable[[], torch.Tensor]]:
    """The same n x n x n float32 product (2 n³ FLOPs) through PyTorch's BLAS and through oneDNN."""
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=generator)
    b = torch.randn(n, n, generator=generator)
    side = int(n**0.5)
    assert side * side == n, "n must be a square: the convolution's positions are side x side"
    conv = torch.nn.Conv3d(n, n, kernel_size=1, bias=False).eval()
    x = torch.randn(1, n, 1, side, side, generator=generator)  # (N, C, T, H, W): n channels, n positions
    conv_cl = torch.nn.Conv3d(n, n, kernel_size=1, bias=False).eval().to(memory_format=torch.channels_last_3d)
    x_cl = x.to(memory_format=torch.channels_last_3d)

    def run(module, inputs):
        def forward():
            with torch.inference_mode():
                return module(inputs)

        return forward

    return {
        "mm": lambda: torch.mm(a, b),
        "1x1x1 conv": run(conv, x),
        "1x1x1 conv channels_last_3d": run(conv_cl, x_cl),
    }


def forward_flops(model_class, clips: int) -> float:
    """FLOPs of one C3D-AVG forward on ``clips`` clips (backbone per clip + head), counted on
    the meta device: no memory, no arithmetic."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        model = model_class().eval()
        x = torch.empty(clips, 3, 16, 112, 112)
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        model(x)
    return float(counter.get_total_flops())


def random_clips(clips: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(1)
    return torch.randn(clips, 3, 16, 112, 112, generator=generator)  # (N, C, T, H, W)


def random_frames(clips: int) -> list[list[np.ndarray]]:
    """16 cropped RGB uint8 frames per clip, as the scorer receives them."""
    rng = np.random.default_rng(2)
    return [[rng.integers(0, 256, (112, 112, 3), dtype=np.uint8) for _ in range(16)] for _ in range(clips)]


def decoded_clips(clips: int) -> list[torch.Tensor]:
    """``clips`` consecutive 16-frame clips of a generated video, decoded and preprocessed as
    the function does it."""
    from divescore.settings import Settings
    from inference import preprocess
    from inference.video import RunReader, VideoLimits

    spec = videos.VideoSpec("bf16-inputs", 320, 240, seconds=clips * 16 / 25, noise=12)
    path = videos.ensure(spec)
    with RunReader.probed(path, VideoLimits.from_settings(Settings())) as reader:
        crops = [preprocess.center_crop(preprocess.resize_frame(frame.image))
                 for frame in reader.read([range(spec.frames)])]
    return [preprocess.clip_tensor(crops[i:i + 16]) for i in range(0, clips * 16, 16)]


def measure(ctx) -> Iterator[Metric]:
    from bench import precision
    from divescore.settings import Settings
    from inference.model import C3DAVG, build_model, untrained_state_dicts
    from inference.scorer import CLIP_BATCH, Scorer, dtype_of
    from inference.weights import generated_weights

    plan = ctx.plan
    weights = generated_weights(WEIGHTS_CACHE, untrained_state_dicts)
    clips = plan.model_clips
    flops = forward_flops(C3DAVG, clips)
    clip_flops = forward_flops(C3DAVG, 2) - forward_flops(C3DAVG, 1)
    n = plan.matmul_size

    runs: dict[object, tuple[Callable[[], object], int]] = {}  # key -> (run, times per round)
    work: dict[Spec, tuple[float, str]] = {}  # key -> (FLOPs, what)
    kernels = dense_kernels(n)
    for name, kernel in kernels.items():
        runs[name] = (kernel, plan.matmul_repeats)

    inputs = random_clips(clips)
    for spec, channels_last in VARIANTS.items():
        model = build_model(weights)
        fmt = torch.channels_last_3d if channels_last else torch.contiguous_format
        model.backbone.to(memory_format=fmt)
        x = inputs.to(memory_format=fmt)

        def forward(model=model, x=x):
            with torch.inference_mode():
                return model.head(model.clip_features(x).mean(0, keepdim=True))[0]

        runs[spec] = (forward, 1)
        work[spec] = (flops, f"{clips} clip(s) as one batch")

    # What the function itself runs: its default dtype and layout, CLIP_BATCH clips at a time.
    dtype = dtype_of(Settings().model_dtype)
    scorer = Scorer(build_model(weights, dtype), weights, dtype)
    layout = "contiguous" if scorer.model.backbone.conv1.weight.is_contiguous() else "channels_last_3d"
    frames = random_frames(clips)
    name = str(dtype).removeprefix("torch.")
    runs[MODEL_FUNCTION] = (lambda: [scorer.clip_features(frames[i: i + CLIP_BATCH])
                                     for i in range(0, clips, CLIP_BATCH)], 1)
    work[MODEL_FUNCTION] = (clip_flops * clips,
                            f"default: {name}, {layout}; {clips} clip(s) in batches of {CLIP_BATCH}")

    best = best_seconds_interleaved(runs, plan.model_repeats)
    kernel_gflops = {name: 2 * n**3 / best[name] / 1e9 for name in kernels}
    fastest = max(kernel_gflops, key=kernel_gflops.get)
    reference = kernel_gflops[fastest]
    threads = torch.get_num_threads()
    mhz = clock_mhz()
    peak, formula = fma_peak_gflops(cpu_flags(), threads, mhz) if mhz else (None, "no clock in /proc/cpuinfo")
    figures: dict = {
        "reference_gflops": kernel_gflops,
        "reference_kernel": fastest,
        "fma_peak_gflops": peak,
        "gflop_per_clip": clip_flops / 1e9,
        "function": {"dtype": name, "layout": layout},
    }
    ctx.series["model"] = figures
    yield REFERENCE_FP32.of(
        reference,
        f"{fastest} fastest ({', '.join(f'{k} {v:.0f}' for k, v in kernel_gflops.items())}); "
        f"{n}³, best of {plan.model_repeats * plan.matmul_repeats}, interleaved with the model runs",
    )
    if peak is None:
        yield FMA_PEAK_FP32.failed(formula)
    else:
        yield FMA_PEAK_FP32.of(peak, f"{formula}; the reference reaches {reference / peak:.2f} of it")
    for spec, (flop_count, what) in work.items():
        gflops = flop_count / best[spec] / 1e9
        figures[spec.key] = {"seconds": best[spec], "gflops": gflops}
        note = f"{what} in {best[spec]:.2f} s = {gflops:.0f} GFLOP/s, reference {reference:.0f}"
        metric = spec.of(gflops / reference, note)
        if metric.reference_wrong:
            metric = spec.of(metric.value, f"over 1.0: the reference ({fastest}) is not this CPU's peak; {metric.note}")
        yield metric

    # bf16: what it would do to a score, on any CPU (emulated on float32 kernels).
    error = precision.score_error(build_model(weights), precision.emulate_bf16(build_model(weights)),
                                  decoded_clips(plan.bf16_clips))
    figures["bf16_error"] = {"max_points": error.max_points, "median_points": error.median_points,
                             "spread_points": error.spread_points, "clips": error.clips}
    yield BF16_ERROR.of(
        error.max_points,
        f"{error.clips} clips of a decoded 320x240 video, each scored alone; median {error.median_points:.3f} points; "
        "generated weights; bf16 emulated on fp32 kernels (the same on every CPU)",
    )
    yield BF16_ERROR_VS_SPREAD.of(error.max_vs_spread, f"fp32 scores spread (std) {error.spread_points:.2f} points")

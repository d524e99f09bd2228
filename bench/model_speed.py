"""1. Model throughput against the machine's limit.

The C3D-AVG forward on 6 clips (96 frames) as achieved GFLOP/s, divided by the GFLOP/s of a
4096x4096 matrix multiply in the same dtype, measured in the same run: how much of what
this CPU can do the network gets. FLOPs are counted by PyTorch's ``FlopCounterMode`` on the
real architecture (77.0 GFLOP per 16x112x112 clip; MTL-AQA's figure is 77.1).

Timings are the best of a few rounds after a warm-up, the matmul and every model variant
taking turns: the machine is shared, and the best run is the one least disturbed by others.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch

from bench.machine import has_bf16
from bench.report import Metric, Spec, at_least, at_most

TARGET = at_least(0.85)
BF16_SCORE_TOLERANCE_PERCENT = 0.5
WEIGHTS_CACHE = Path(__file__).resolve().parent.parent / ".cache" / "weights"

MATMUL_FP32 = Spec("matmul_gflops_fp32", "matmul 4096² fp32", "GFLOP/s")
MODEL_FP32 = Spec("model_vs_matmul_fp32", "C3D fp32 / matmul fp32", "ratio", TARGET)
MODEL_FP32_CL3D = Spec("model_vs_matmul_fp32_cl3d", "C3D fp32 + channels_last_3d / matmul fp32", "ratio", TARGET)
MODEL_BF16_CL3D = Spec("model_vs_matmul_bf16_cl3d", "C3D bf16 + channels_last_3d / matmul bf16", "ratio", TARGET)
MODEL_FUNCTION = Spec("model_vs_matmul_function", "C3D as the function runs it / matmul", "ratio", TARGET)
BF16_DIFFERENCE = Spec(
    "bf16_score_difference", "bf16 vs fp32 score difference", "%", at_most(BF16_SCORE_TOLERANCE_PERCENT)
)
SPECS = (MATMUL_FP32, MODEL_FP32, MODEL_FP32_CL3D, MODEL_BF16_CL3D, MODEL_FUNCTION, BF16_DIFFERENCE)
VARIANTS = {
    MODEL_FP32: (torch.float32, False),
    MODEL_FP32_CL3D: (torch.float32, True),
    MODEL_BF16_CL3D: (torch.bfloat16, True),
}


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


def matmul(dtype: torch.dtype, n: int) -> Callable[[], torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=generator).to(dtype)
    b = torch.randn(n, n, generator=generator).to(dtype)
    return lambda: torch.mm(a, b)


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


def measure(ctx) -> Iterator[Metric]:
    from inference.model import C3DAVG, build_model
    from inference.scorer import Scorer, choose_dtype
    from inference.weights import generated_weights

    from divescore.settings import Settings

    plan = ctx.plan
    weights = generated_weights(WEIGHTS_CACHE)
    clips = plan.model_clips
    flops = forward_flops(C3DAVG, clips)
    clip_flops = forward_flops(C3DAVG, 2) - forward_flops(C3DAVG, 1)
    bf16 = has_bf16()
    n = plan.matmul_size

    runs: dict[object, tuple[Callable[[], object], int]] = {}  # key -> (run, times per round)
    work: dict[object, tuple[torch.dtype, float, str]] = {}  # key -> (dtype, FLOPs, what)
    for dtype in [torch.float32, torch.bfloat16] if bf16 else [torch.float32]:
        runs[dtype] = (matmul(dtype, n), plan.matmul_repeats)

    inputs = random_clips(clips)
    forwards = {}
    for spec, (dtype, channels_last) in VARIANTS.items():
        if dtype == torch.bfloat16 and not bf16:
            continue
        model = build_model(weights)
        fmt = torch.channels_last_3d if channels_last else torch.contiguous_format
        model.backbone.to(dtype=dtype, memory_format=fmt)
        x = inputs.to(dtype=dtype, memory_format=fmt)

        def forward(model=model, x=x):
            with torch.inference_mode():
                # The head sees float32 whatever the backbone ran in, as in the scorer.
                return model.head(model.clip_features(x).float().mean(0, keepdim=True))[0]

        forwards[spec] = forward
        runs[spec] = (forward, 1)
        work[spec] = (dtype, flops, f"{clips} clip(s) as one batch")

    # What the function itself runs: its default dtype and layout, one clip at a time.
    dtype = choose_dtype(Settings().model_dtype)
    scorer = Scorer(build_model(weights), weights, dtype)
    layout = "contiguous" if scorer.model.backbone.conv1.weight.is_contiguous() else "channels_last_3d"
    frames = random_frames(clips)
    name = str(dtype).removeprefix("torch.")
    runs[MODEL_FUNCTION] = (lambda: [scorer.clip_features(f) for f in frames], 1)
    work[MODEL_FUNCTION] = (
        dtype,
        clip_flops * clips,
        f"default (DIVESCORE_MODEL_DTYPE=auto): {name}, {layout}; {clips} clip(s) one at a time",
    )

    best = best_seconds_interleaved(runs, plan.model_repeats)
    limit = {d: 2 * n**3 / best[d] / 1e9 for d in runs if isinstance(d, torch.dtype)}
    figures: dict = {
        "matmul_gflops": {str(d).removeprefix("torch."): g for d, g in limit.items()},
        "gflop_per_clip": clip_flops / 1e9,
        "function": {"dtype": name, "layout": layout},
    }
    ctx.series["model"] = figures
    yield MATMUL_FP32.of(
        limit[torch.float32],
        f"best of {plan.model_repeats * plan.matmul_repeats}, interleaved with the model runs",
    )
    for spec in (*VARIANTS, MODEL_FUNCTION):
        if spec not in work:
            yield spec.skipped("CPU has no native bf16 (avx512_bf16/amx_bf16); emulated bf16 is far slower than fp32")
            continue
        dtype, flop_count, what = work[spec]
        gflops = flop_count / best[spec] / 1e9
        figures[spec.key] = {"seconds": best[spec], "gflops": gflops}
        yield spec.of(
            gflops / limit[dtype],
            f"{what} in {best[spec]:.2f} s = {gflops:.0f} GFLOP/s, matmul {limit[dtype]:.0f}",
        )

    if bf16:
        reference = float(forwards[MODEL_FP32]())
        difference = abs(float(forwards[MODEL_BF16_CL3D]()) - reference) / max(abs(reference), 1e-9) * 100
        yield BF16_DIFFERENCE.of(difference, f"same {clips} clips, generated weights; fp32 score {reference:.4f}")
    else:
        yield BF16_DIFFERENCE.skipped("no native bf16 on this CPU, so the function runs fp32")

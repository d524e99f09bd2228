"""1. Model throughput against the machine's limit.

The C3D-AVG forward on 6 clips (96 frames) as achieved GFLOP/s, divided by the GFLOP/s of a
4096x4096 matrix multiply in the same dtype, measured in the same run: how much of what
this CPU can do the network gets. FLOPs are counted by PyTorch's ``FlopCounterMode`` on the
real architecture (77.0 GFLOP per 16x112x112 clip; MTL-AQA's figure is 77.1).

Timings are the best of a few repeats after a warm-up: the machine is shared, and the best
run is the one least disturbed by others.
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


def best_seconds(run: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        run()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best


def matmul_gflops(dtype: torch.dtype, n: int, repeats: int) -> float:
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=generator).to(dtype)
    b = torch.randn(n, n, generator=generator).to(dtype)
    return 2 * n**3 / best_seconds(lambda: torch.mm(a, b), repeats) / 1e9


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
    figures: dict[str, dict] = {}
    ctx.series["model"] = figures

    # The matmul is sampled between the model runs and its best taken: the machine's limit,
    # whichever moment the other users of the machine left it alone.
    dtypes = [torch.float32, torch.bfloat16] if bf16 else [torch.float32]
    matmul = dict.fromkeys(dtypes, 0.0)
    samples = 0

    def sample_matmul() -> None:
        nonlocal samples
        samples += 1
        for d in dtypes:
            matmul[d] = max(matmul[d], matmul_gflops(d, plan.matmul_size, plan.matmul_repeats))

    timed: list[tuple[Spec, torch.dtype, float, float, str]] = []  # spec, dtype, seconds, flops, what
    skipped: dict[Spec, Metric] = {}
    inputs = random_clips(clips)
    scores = {}
    for spec, (dtype, channels_last) in VARIANTS.items():
        if dtype == torch.bfloat16 and not bf16:
            skipped[spec] = spec.skipped(
                "CPU has no native bf16 (avx512_bf16/amx_bf16); emulated bf16 is far slower than fp32"
            )
            continue
        sample_matmul()
        model = build_model(weights)
        fmt = torch.channels_last_3d if channels_last else torch.contiguous_format
        model.backbone.to(dtype=dtype, memory_format=fmt)
        x = inputs.to(dtype=dtype, memory_format=fmt)

        def forward(model=model, x=x):
            with torch.inference_mode():
                # The head sees float32 whatever the backbone ran in, as in the scorer.
                return model.head(model.clip_features(x).float().mean(0, keepdim=True))[0]

        seconds = best_seconds(forward, plan.model_repeats)
        scores[spec] = float(forward())
        timed.append((spec, dtype, seconds, flops, f"{clips} clip(s) as one batch"))
        del model

    # What the function itself runs: its default dtype and layout, one clip at a time.
    sample_matmul()
    dtype = choose_dtype(Settings().model_dtype)
    scorer = Scorer(build_model(weights), weights, dtype)
    weight = scorer.model.backbone.conv1.weight
    layout = "contiguous" if weight.is_contiguous() else "channels_last_3d"
    frames = random_frames(clips)
    seconds = best_seconds(lambda: [scorer.clip_features(f) for f in frames], plan.model_repeats)
    name = str(dtype).removeprefix("torch.")
    timed.append(
        (
            MODEL_FUNCTION,
            dtype,
            seconds,
            clip_flops * clips,
            f"default (DIVESCORE_MODEL_DTYPE=auto): {name}, {layout}; {clips} clip(s) one at a time",
        )
    )
    sample_matmul()

    figures["matmul_gflops"] = {str(k).removeprefix("torch."): v for k, v in matmul.items()}
    figures["gflop_per_clip"] = clip_flops / 1e9
    figures["function"] = {"dtype": name, "layout": layout}
    yield MATMUL_FP32.of(
        matmul[torch.float32],
        f"best of {samples} samples of {plan.matmul_repeats} taken between the model runs",
    )
    measured = {spec: (dtype, seconds, work, what) for spec, dtype, seconds, work, what in timed}
    for spec in (*VARIANTS, MODEL_FUNCTION):
        if spec in skipped:
            yield skipped[spec]
            continue
        dtype, seconds, work, what = measured[spec]
        gflops = work / seconds / 1e9
        figures[spec.key] = {"seconds": seconds, "gflops": gflops}
        yield spec.of(
            gflops / matmul[dtype],
            f"{what} in {seconds:.2f} s = {gflops:.0f} GFLOP/s, matmul {matmul[dtype]:.0f}",
        )

    if bf16:
        reference = scores[MODEL_FP32]
        difference = abs(scores[MODEL_BF16_CL3D] - reference) / max(abs(reference), 1e-9) * 100
        yield BF16_DIFFERENCE.of(difference, f"same {clips} clips, generated weights; fp32 score {reference:.4f}")
    else:
        yield BF16_DIFFERENCE.skipped("no native bf16 on this CPU, so the function runs fp32")

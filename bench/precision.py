"""How far bfloat16 moves a score, measurable on any CPU.

Where the CPU has AVX512-BF16 or AMX, the backbone's bf16 convolutions run natively (oneDNN):
bf16 operands, products summed in float32, each layer's output rounded to bf16. Without those
instructions PyTorch runs bf16 convolutions on a generic path, several hundred times slower
than float32 (minutes a clip), too slow to measure an error over many inputs. So the error is
measured with the same arithmetic on float32 kernels (:func:`emulate_bf16`): weights and input
rounded to bf16, each convolution's output rounded to bf16. A product of two bf16 numbers is
exact in float32, so only the order of the float32 sums differs from the native path; it
flips individual roundings, so a single clip's error differs between the two, but not the
size of the errors over many clips (docs/model.md gives both, measured on a CPU with bf16).
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Iterable

import torch
from torch import nn

from inference.model import C3DAVG


def round_to_bf16(tensor: torch.Tensor) -> torch.Tensor:
    """The nearest bf16 value of each element (round to nearest even), kept in float32."""
    return tensor.to(torch.bfloat16).to(tensor.dtype)


def emulate_bf16(model: C3DAVG) -> C3DAVG:
    """``model`` with its backbone computing bf16's arithmetic on float32 kernels, changed in
    place (its parameters are replaced, never written to: they may be memory-mapped files).
    The head stays float32, as the scorer runs it."""
    backbone = model.backbone
    for module in backbone.modules():
        if isinstance(module, nn.Conv3d):
            module.weight = nn.Parameter(round_to_bf16(module.weight.detach()), requires_grad=False)
            module.bias = nn.Parameter(round_to_bf16(module.bias.detach()), requires_grad=False)
            # ReLU and max pooling keep bf16 values exact: only the convolutions round.
            module.register_forward_hook(lambda _module, _inputs, output: round_to_bf16(output))
    backbone.register_forward_pre_hook(lambda _module, inputs: tuple(round_to_bf16(x) for x in inputs))
    return model


@dataclasses.dataclass(frozen=True)
class ScoreError:
    """bf16 against float32 over many clips, in score points."""

    clips: int
    max_points: float
    median_points: float
    spread_points: float  # the standard deviation of the float32 scores: the score's own scale

    @property
    def max_vs_spread(self) -> float:
        return self.max_points / self.spread_points


def score_error(reference: C3DAVG, bf16: C3DAVG, clips: Iterable[torch.Tensor]) -> ScoreError:
    """Each clip ``(3, 16, 112, 112)`` scored alone (its features through the head) by both models."""
    pairs = []
    with torch.inference_mode():
        for clip in clips:
            batch = clip.unsqueeze(0)  # (1, C, T, H, W)
            pairs.append((float(reference.head(reference.clip_features(batch))[0]),
                          float(bf16.head(bf16.clip_features(batch).float())[0])))
    differences = [abs(b - f) for f, b in pairs]
    return ScoreError(
        clips=len(pairs),
        max_points=max(differences),
        median_points=statistics.median(differences),
        spread_points=statistics.pstdev(f for f, _ in pairs),
    )

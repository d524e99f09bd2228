"""The optional "is this a dive?" gate: the original Sports-1M C3D classifier (``c3d.pickle``,
the weights MTL-AQA's backbone started from), on only when that file sits in the model folder.

A video passes when "diving" is among the classifier's top 5 of 487 sports, averaged over a
couple of clips from the middle of the video. Top 5 rather than top 1 because Sports-1M
splits water sports finely (swimming, synchronized swimming, water polo...) and a
springboard dive is often ranked next to them; the gate is there to turn away videos of
something else entirely, not to judge borderline ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from inference import errors
from inference.model import build_gate_network
from inference.preprocess import raw_clip_tensor
from inference.weights import load_state_dict

DIVING_CLASS = 463  # "diving" in the release's labels.txt (0-based line number)
TOP_K = 5


class DiveGate:
    def __init__(self, network: torch.nn.Module):
        self.network = network

    @classmethod
    def load(cls, path: Path) -> DiveGate:
        return cls(build_gate_network(load_state_dict(path)))

    def dive_probability(self, clips: Sequence[Sequence[np.ndarray]]) -> tuple[float, bool]:
        """(probability of "diving", whether it is in the top 5) for clips of 16 cropped RGB frames."""
        batch = torch.stack([raw_clip_tensor(frames) for frames in clips])  # (N, C, T, H, W)
        with torch.inference_mode():
            probabilities = self.network(batch).softmax(dim=1).mean(0)  # (487,)
        top = probabilities.topk(TOP_K).indices.tolist()
        return float(probabilities[DIVING_CLASS]), DIVING_CLASS in top

    def check(self, clips: Sequence[Sequence[np.ndarray]]) -> float:
        """The probability of "diving"; raises :class:`errors.NotADive` when it is not likely."""
        probability, likely = self.dive_probability(clips)
        if not likely:
            raise errors.NotADive(
                "This video does not look like a dive (a sports classifier did not rank diving among its top "
                f"{TOP_K} guesses). Upload a video of a dive from a springboard or platform."
            )
        return probability

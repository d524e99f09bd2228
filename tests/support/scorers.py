"""The scorers the tests hand the function's worker (through ``inference.worker.Services``):

- ``real_scorer``: C3D-AVG with the generated weights the native stack uses, for the tests
  whose subject is the model, the scoring or the whole path;
- ``tiny_scorer``: the same ``inference.scorer.Scorer`` (probe, entry search, decoding in a
  thread, progress and cancel checks, filmstrip, timings: everything the worker sees) around a
  network that costs nothing, for the tests whose subject is the worker's bookkeeping (claim,
  acknowledgement, retry, cancel, failure codes).
"""

from __future__ import annotations

from pathlib import Path

import torch

from divescore.settings import load
from inference.scorer import Scorer, load_scorer
from inference.weights import Weights
from tests.support.helpers import WEIGHTS_CACHE

FEATURES = 8192  # C3D-AVG's clip features


def real_scorer() -> Scorer:
    """The stack's scorer (float32), its weights generated once per checkout into WEIGHTS_CACHE."""
    return load_scorer(load({}, cache_dir=str(WEIGHTS_CACHE), model_dtype="float32"))


class TinyNetwork(torch.nn.Module):
    """C3D-AVG's interface to the scorer (``backbone``, ``clip_features``, ``head``) for no
    work: a clip's features are its mean value, its score a fractional number from them."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = torch.nn.Identity()

    def clip_features(self, clips: torch.Tensor) -> torch.Tensor:
        """(N, 3, 16, 112, 112) -> (N, 8192)."""
        return clips.float().mean(dim=(1, 2, 3, 4)).unsqueeze(1).expand(-1, FEATURES).contiguous()

    def head(self, features: torch.Tensor) -> torch.Tensor:
        """(N, 8192) -> (N,) scores: 50.125 points, moved a little by the frames."""
        return 50.125 + features.mean(dim=1) / 100


TINY_WEIGHTS = Weights(name="tiny-test-network", backbone=Path("/dev/null"), fc6=Path("/dev/null"),
                       regressor=Path("/dev/null"), calibrated=False,
                       description="no weights: the tests' stand-in for C3D-AVG")


def tiny_scorer() -> Scorer:
    return Scorer(TinyNetwork(), TINY_WEIGHTS, torch.float32)

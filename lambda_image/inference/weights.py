"""Which weights the model runs with, and the files they live in: finding, loading and
storing them. This module knows files, not the network (:mod:`inference.model` builds it,
converts its tensors and makes its untrained weights).

Two kinds, both in the published MTL-AQA file layout (one ``torch.save``'d state dict per
part: ``model_CNN_{tag}.pth``, ``model_my_fc6_{tag}.pth``, ``model_score_regressor_{tag}.pth``):

- real checkpoints in ``settings.model_dir`` (e.g. the authors' epoch-94 files): calibrated;
  an optional Sports-1M ``c3d.pickle`` beside them turns on the "is this a dive" gate;
- otherwise weights generated from a fixed seed into the cache folder on first use. They are
  UNTRAINED: the score they give is a deterministic function of the video with no meaning, and
  every result says ``"calibrated": false``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

from divescore.settings import Settings

FILE_PATTERNS = {
    "backbone": "model_CNN_{tag}.pth",
    "fc6": "model_my_fc6_{tag}.pth",
    "regressor": "model_score_regressor_{tag}.pth",
}
GATE_FILE = "c3d.pickle"
GENERATED_SEED = 20190616  # fixed, so every runtime generates the same untrained weights
GENERATED_TAG = "untrained"

StateDicts = dict[str, dict[str, torch.Tensor]]  # part name -> its state dict
# Makes every part's untrained state dict from a seed (:func:`inference.model.untrained_state_dicts`).
Generate = Callable[[int], StateDicts]


class WeightsError(RuntimeError):
    """The configured weights cannot be used; the message says what to fix."""


@dataclasses.dataclass(frozen=True)
class Weights:
    name: str
    backbone: Path
    fc6: Path
    regressor: Path
    calibrated: bool
    description: str
    gate: Path | None = None
    converted_dir: Path | None = None  # where parts converted to another dtype or layout are cached

    def files(self) -> dict[str, Path]:
        return {part: getattr(self, part) for part in FILE_PATTERNS}

    def converted_path(self, part: str, dtype: torch.dtype) -> Path | None:
        """Where the part's copy converted to ``dtype`` (and the layout it runs in) is cached,
        or None when nowhere."""
        if self.converted_dir is None:
            return None
        name = getattr(self, part).name.removesuffix(".pth")
        return self.converted_dir / f"{name}.{str(dtype).removeprefix('torch.')}.pth"


def save_state_dict(state: dict[str, torch.Tensor], path: Path) -> None:
    """Written aside and renamed; a read-only cache (an image's) is left as it is."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = path.with_name(f".{path.name}.{os.getpid()}.partial")
        torch.save(state, staging)
        os.replace(staging, path)
    except OSError:
        return


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A saved state dict, memory-mapped when the file format allows it (files written by
    ``torch.save`` since PyTorch 1.6); tensors only, never arbitrary pickled objects."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError as err:
        if "mmap" not in str(err):
            raise
        return torch.load(path, map_location="cpu", weights_only=True)  # legacy format: read it whole


# -- real checkpoints -----------------------------------------------------------------

def checkpoint_weights(model_dir: str | Path) -> Weights:
    """The MTL-AQA checkpoints in ``model_dir``; with several epochs, the highest."""
    folder = Path(model_dir)
    if not folder.is_dir():
        raise WeightsError(f"DIVESCORE_MODEL_DIR: {folder} is not a folder")
    tags = _tags_with_all_parts(folder)
    if not tags:
        expected = ", ".join(p.format(tag="94") for p in FILE_PATTERNS.values())
        raise WeightsError(f"DIVESCORE_MODEL_DIR: {folder} holds no complete set of checkpoints ({expected})")
    tag = max(tags, key=lambda t: (t.isdigit(), int(t) if t.isdigit() else 0, t))
    files = {part: folder / pattern.format(tag=tag) for part, pattern in FILE_PATTERNS.items()}
    gate = folder / GATE_FILE
    return Weights(
        name=f"mtl-aqa-{tag}",
        calibrated=True,
        description=f"MTL-AQA C3D-AVG checkpoints '{tag}' from {folder}",
        gate=gate if gate.is_file() else None,
        **files,
    )


def _tags_with_all_parts(folder: Path) -> set[str]:
    found = []
    for pattern in FILE_PATTERNS.values():
        regex = re.compile(re.escape(pattern).replace(re.escape("{tag}"), r"(\w+)") + "$")
        found.append({m.group(1) for f in folder.iterdir() if (m := regex.match(f.name))})
    return set.intersection(*found)


# -- generated, untrained weights -----------------------------------------------------

def default_cache_dir(settings: Settings) -> Path:
    return Path(settings.cache_dir) if settings.cache_dir else Path.home() / ".cache" / "divescore"


def generated_weights(cache_dir: str | Path, generate: Generate, seed: int = GENERATED_SEED) -> Weights:
    """Untrained weights from ``seed`` in ``cache_dir``, stored there the first time from
    ``generate(seed)``."""
    folder = Path(cache_dir) / f"c3d-avg-untrained-seed{seed}"
    if not (folder / "weights.json").is_file():
        _store_generated(folder, generate(seed), seed)
    files = {part: folder / pattern.format(tag=GENERATED_TAG) for part, pattern in FILE_PATTERNS.items()}
    return Weights(
        name=f"untrained-seed{seed}",
        converted_dir=folder,
        calibrated=False,
        description=(
            f"UNTRAINED: generated from seed {seed}, not trained on any dive. Scores are not judges' scores; "
            "set DIVESCORE_MODEL_DIR to the MTL-AQA checkpoints for real ones."
        ),
        **files,
    )


def _store_generated(folder: Path, state_dicts: StateDicts, seed: int) -> None:
    # Written to a temporary folder and renamed into place, so a runtime starting at the
    # same time never reads half-written files.
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".generating-", dir=folder.parent))
    staging.chmod(0o755)  # mkdtemp's 0700 would hide the files from another user (Lambda's runtime user)
    try:
        for part, state in state_dicts.items():
            torch.save(state, staging / FILE_PATTERNS[part].format(tag=GENERATED_TAG))
        (staging / "weights.json").write_text(json.dumps({"seed": seed, "calibrated": False, "trained": False}))
        try:
            os.rename(staging, folder)
        except OSError:
            if not (folder / "weights.json").is_file():
                raise  # not another process winning the race: a real error
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# -- choosing ---------------------------------------------------------------------------

def resolve(settings: Settings, generate: Generate) -> Weights:
    """The checkpoints in ``settings.model_dir`` when it is set, else the generated weights
    in the cache folder (made by ``generate`` the first time)."""
    if settings.model_dir:
        weights = checkpoint_weights(settings.model_dir)
        # Converted copies go to the cache, never into the user's folder (read-only in the image).
        folder = hashlib.sha256(str(weights.backbone.resolve()).encode()).hexdigest()[:16]
        return dataclasses.replace(weights, converted_dir=default_cache_dir(settings) / "converted" / folder)
    return generated_weights(default_cache_dir(settings), generate)

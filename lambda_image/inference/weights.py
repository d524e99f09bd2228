"""Which weights the model runs with, and the files they live in.

Two kinds, both in the published MTL-AQA file layout (one ``torch.save``'d state dict per
part: ``model_CNN_{tag}.pth``, ``model_my_fc6_{tag}.pth``, ``model_score_regressor_{tag}.pth``):

- real checkpoints in ``settings.model_dir`` (e.g. the authors' epoch-94 files): calibrated;
  an optional Sports-1M ``c3d.pickle`` beside them turns on the "is this a dive" gate;
- otherwise weights generated from a fixed seed into the cache folder on first use. They are
  UNTRAINED: the score they give is a deterministic function of the video with no meaning, and
  every result says ``"calibrated": false``.

    python -m inference.weights [--cache-dir DIR]    # generate ahead of time (image build),
                                                     # with the backbone's bf16 copy
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

import torch
from torch import nn

from divescore.settings import Settings

FILE_PATTERNS = {
    "backbone": "model_CNN_{tag}.pth",
    "fc6": "model_my_fc6_{tag}.pth",
    "regressor": "model_score_regressor_{tag}.pth",
}
GATE_FILE = "c3d.pickle"
GENERATED_SEED = 20190616  # fixed, so every runtime generates the same untrained weights
GENERATED_TAG = "untrained"


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

    def state_dict(self, part: str, dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
        """The part's tensors, memory-mapped, in ``dtype`` and with its convolutions in the
        backbone's layout (:data:`inference.model.BACKBONE_MEMORY_FORMAT`). Where the files
        hold another dtype or layout (checkpoints are float32 and contiguous) they come from a
        converted copy, written once to ``converted_dir`` (at image build or on first need) so
        that a cold start maps it instead of converting every tensor."""
        path = getattr(self, part)
        state = load_state_dict(path)
        if not _needs_conversion(state, dtype):
            return state
        converted = self.converted_path(part, dtype)
        if converted is not None and converted.is_file():
            return load_state_dict(converted)
        state = _converted(state, dtype)
        if converted is not None:
            _save_atomically(state, converted)
        return state

    def converted_path(self, part: str, dtype: torch.dtype) -> Path | None:
        if self.converted_dir is None:
            return None
        name = getattr(self, part).name.removesuffix(".pth")
        return self.converted_dir / f"{name}.{str(dtype).removeprefix('torch.')}.pth"


def _needs_conversion(state: dict[str, torch.Tensor], dtype: torch.dtype) -> bool:
    from inference.model import BACKBONE_MEMORY_FORMAT

    return any(t.dtype != dtype or (t.dim() == 5 and not t.is_contiguous(memory_format=BACKBONE_MEMORY_FORMAT))
               for t in state.values() if t.is_floating_point())


def _converted(state: dict[str, torch.Tensor], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    from inference.model import BACKBONE_MEMORY_FORMAT

    return {name: (t.to(dtype=dtype, memory_format=BACKBONE_MEMORY_FORMAT) if t.dim() == 5 else t.to(dtype))
            .detach().clone() for name, t in state.items()}


def _save_atomically(state: dict[str, torch.Tensor], path: Path) -> None:
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


def generated_weights(cache_dir: str | Path, seed: int = GENERATED_SEED) -> Weights:
    """Untrained weights from ``seed``, generated into ``cache_dir`` the first time."""
    folder = Path(cache_dir) / f"c3d-avg-untrained-seed{seed}"
    if not (folder / "weights.json").is_file():
        _generate_into(folder, seed)
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


def generate_state_dicts(seed: int) -> dict[str, dict[str, torch.Tensor]]:
    """Random weights for each part from ``seed``, in about a second.

    He (Kaiming) normal initialisation for the ReLU layers keeps activations at a steady scale
    through the network, so the untrained score still changes with the video (PyTorch's
    default initialisation shrinks them layer by layer until every video scores about the
    same). The regressor keeps PyTorch's default initialisation.
    """
    from inference.model import C3DAVG, PARTS

    with torch.device("meta"):
        model = C3DAVG()
    model.to_empty(device="cpu")  # allocate without the default initialisation we would overwrite
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for module in [*model.backbone.modules(), *model.fc6.modules()]:
            if isinstance(module, (nn.Conv3d, nn.Linear)):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                nn.init.zeros_(module.bias)
        model.regressor.fc_final_score.reset_parameters()
    return {part: getattr(model, part).state_dict() for part in PARTS}


def _generate_into(folder: Path, seed: int) -> None:
    # Written to a temporary folder and renamed into place, so a runtime starting at the
    # same time never reads half-written files.
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".generating-", dir=folder.parent))
    staging.chmod(0o755)  # mkdtemp's 0700 would hide the files from another user (Lambda's runtime user)
    try:
        for part, state in generate_state_dicts(seed).items():
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

def resolve(settings: Settings) -> Weights:
    if settings.model_dir:
        weights = checkpoint_weights(settings.model_dir)
        # Converted copies go to the cache, never into the user's folder (read-only in the image).
        folder = hashlib.sha256(str(weights.backbone.resolve()).encode()).hexdigest()[:16]
        return dataclasses.replace(weights, converted_dir=default_cache_dir(settings) / "converted" / folder)
    return generated_weights(default_cache_dir(settings))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m inference.weights", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache-dir", help="where to generate them (default: DIVESCORE_CACHE_DIR or ~/.cache)")
    args = parser.parse_args(argv)
    from divescore.settings import load

    settings = load()
    weights = generated_weights(args.cache_dir or default_cache_dir(settings))
    for dtype in (torch.float32, torch.bfloat16):  # the backbone's converted copies (written once)
        weights.state_dict("backbone", dtype)
    print(f"{weights.name}: {weights.backbone.parent}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""C3D-AVG (Parmar and Morris, "What and How Well You Performed?", CVPR 2019, MTL-AQA):
the network's parts and :func:`build_model`, which assembles them and loads their weights
(files found by :mod:`inference.weights`) in the memory layout the network runs in; and the
untrained initialisation the default weights are generated with.

The network is three parts, one per published checkpoint file, so those files load with
``strict=True`` unchanged. Attribute names are part of that file format; do not rename them.

- ``backbone``  MTL-AQA's ``C3D_altered``: C3D (Tran et al., ICCV 2015) up to pool5, one
  16x112x112 clip -> 8192 features                              (``model_CNN_*.pth``)
- ``fc6``       MTL-AQA's ``my_fc6``: 8192 -> 4096, ReLU          (``model_my_fc6_*.pth``)
- ``regressor`` MTL-AQA's ``score_regressor``: 4096 -> 1          (``model_score_regressor_*.pth``)

The clips' backbone features are averaged, go through fc6 and the regressor, and the output
is multiplied by 17, the standard deviation training divided the judges' scores by.

    python -m inference.model [--cache-dir DIR]    # generate the untrained weights ahead of
                                                   # time (image build), with the backbone's
                                                   # converted copies
"""

from __future__ import annotations

import argparse
import sys

import torch
from torch import nn

from inference.weights import (
    StateDicts,
    Weights,
    default_cache_dir,
    generated_weights,
    load_state_dict,
    save_state_dict,
)

NAME = "C3D-AVG (MTL-AQA)"
SCORE_STD = 17.0
FEATURES = 8192  # 512 channels x 1 x 4 x 4 after pool5
PARTS = ("backbone", "fc6", "regressor")
SPORTS1M_CLASSES = 487


def _conv(in_channels: int, out_channels: int) -> nn.Conv3d:
    return nn.Conv3d(in_channels, out_channels, kernel_size=(3, 3, 3), padding=(1, 1, 1))


class C3DBackbone(nn.Module):
    """C3D's convolutional part (MTL-AQA's ``C3D_altered``). (N, 3, 16, 112, 112) -> (N, 8192)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = _conv(3, 64)
        self.pool1 = nn.MaxPool3d(kernel_size=(1, 2, 2), stride=(1, 2, 2))
        self.conv2 = _conv(64, 128)
        self.pool2 = nn.MaxPool3d(kernel_size=(2, 2, 2), stride=(2, 2, 2))
        self.conv3a = _conv(128, 256)
        self.conv3b = _conv(256, 256)
        self.pool3 = nn.MaxPool3d(kernel_size=(2, 2, 2), stride=(2, 2, 2))
        self.conv4a = _conv(256, 512)
        self.conv4b = _conv(512, 512)
        self.pool4 = nn.MaxPool3d(kernel_size=(2, 2, 2), stride=(2, 2, 2))
        self.conv5a = _conv(512, 512)
        self.conv5b = _conv(512, 512)
        # Padding H and W: 7x7 -> 4x4, so pool5 gives 512 x 1 x 4 x 4 = 8192 features.
        self.pool5 = nn.MaxPool3d(kernel_size=(2, 2, 2), stride=(2, 2, 2), padding=(0, 1, 1))
        self.relu = nn.ReLU()

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        h = self.pool1(self.relu(self.conv1(clips)))  # (N, 64, 16, 56, 56)
        h = self.pool2(self.relu(self.conv2(h)))  # (N, 128, 8, 28, 28)
        h = self.pool3(self.relu(self.conv3b(self.relu(self.conv3a(h)))))  # (N, 256, 4, 14, 14)
        h = self.pool4(self.relu(self.conv4b(self.relu(self.conv4a(h)))))  # (N, 512, 2, 7, 7)
        h = self.pool5(self.relu(self.conv5b(self.relu(self.conv5a(h)))))  # (N, 512, 1, 4, 4)
        # flatten follows the logical (C, T, H, W) order whatever the memory layout, as
        # the original's view(-1, 8192) did on contiguous tensors.
        return torch.flatten(h, 1)  # (N, 8192)


class Fc6(nn.Module):
    """MTL-AQA's ``my_fc6``. (N, 8192) -> (N, 4096)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(FEATURES, 4096)
        self.relu = nn.ReLU()

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.relu(self.fc(features))


class ScoreRegressor(nn.Module):
    """MTL-AQA's ``score_regressor``. (N, 4096) -> (N, 1), in units of the score's std."""

    def __init__(self) -> None:
        super().__init__()
        self.fc_final_score = nn.Linear(4096, 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc_final_score(features)


class C3DAVG(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.backbone = C3DBackbone()
        self.fc6 = Fc6()
        self.regressor = ScoreRegressor()

    def clip_features(self, clips: torch.Tensor) -> torch.Tensor:
        """(N, 3, 16, 112, 112) -> (N, 8192), one row per clip."""
        return self.backbone(clips)

    def head(self, features: torch.Tensor) -> torch.Tensor:
        """(N, 8192) features -> (N,) scores in points."""
        return self.regressor(self.fc6(features)).squeeze(1) * SCORE_STD

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        """The clips of one video (N, 3, 16, 112, 112) -> its score, a 0-d tensor."""
        return self.head(self.clip_features(clips).mean(0, keepdim=True))[0]


class SportsC3D(C3DBackbone):
    """The original C3D classifier trained on Sports-1M (``c3d.pickle``), for the dive gate.
    (N, 3, 16, 112, 112), RGB 0-255 -> (N, 487) logits."""

    def __init__(self) -> None:
        super().__init__()
        self.fc6 = nn.Linear(FEATURES, 4096)
        self.fc7 = nn.Linear(4096, 4096)
        self.fc8 = nn.Linear(4096, SPORTS1M_CLASSES)
        self.dropout = nn.Dropout(p=0.5)  # no parameters; kept so the layout matches the release

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        h = super().forward(clips)
        h = self.relu(self.fc6(h))
        h = self.relu(self.fc7(h))
        return self.fc8(h)


# The backbone's layout, for its weights and its input: channels-last is what oneDNN's
# convolutions are fastest in, in bf16 and, for a batch of clips, in float32 too (6 clips in
# batches of 3: 1.47 s against 2.09 s contiguous on 2 AVX-512 cores; 2.44 s against 2.67 s with
# AVX2 kernels). A score comes out the same to about 1e-5 points in either layout.
BACKBONE_MEMORY_FORMAT = torch.channels_last_3d


def load_part(weights: Weights, part: str, dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    """The part's tensors, memory-mapped, in ``dtype`` and with its convolutions in the
    backbone's layout (:data:`BACKBONE_MEMORY_FORMAT`). Where the files hold another dtype or
    layout (checkpoints are float32 and contiguous) they come from a converted copy, written
    once to ``weights.converted_dir`` (at image build or on first need) so that a cold start
    maps it instead of converting every tensor; without a place to keep it, converted in
    memory."""
    state = load_state_dict(weights.files()[part])
    if not _needs_conversion(state, dtype):
        return state
    converted = weights.converted_path(part, dtype)
    if converted is not None and converted.is_file():
        return load_state_dict(converted)
    state = _converted(state, dtype)
    if converted is not None:
        save_state_dict(state, converted)
    return state


def _needs_conversion(state: dict[str, torch.Tensor], dtype: torch.dtype) -> bool:
    return any(t.dtype != dtype or (t.dim() == 5 and not t.is_contiguous(memory_format=BACKBONE_MEMORY_FORMAT))
               for t in state.values() if t.is_floating_point())


def _converted(state: dict[str, torch.Tensor], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    return {name: (t.to(dtype=dtype, memory_format=BACKBONE_MEMORY_FORMAT) if t.dim() == 5 else t.to(dtype))
            .detach().clone() for name, t in state.items()}


def build_model(weights: Weights, backbone_dtype: torch.dtype = torch.float32) -> C3DAVG:
    """C3D-AVG in eval mode, with ``weights`` loaded strictly: the backbone in
    ``backbone_dtype`` and :data:`BACKBONE_MEMORY_FORMAT`, the head in float32.

    The modules are made on the meta device and take the loaded tensors as they are
    (``assign=True``, so their dtype and layout are those :func:`load_part` gives): no random
    initialisation to throw away, and memory-mapped files stay mapped instead of being copied.
    """
    with torch.device("meta"):
        model = C3DAVG()
    for part in PARTS:
        dtype = backbone_dtype if part == "backbone" else torch.float32
        getattr(model, part).load_state_dict(load_part(weights, part, dtype), strict=True, assign=True)
    return model.eval()


def build_gate_network(state_dict: dict[str, torch.Tensor]) -> SportsC3D:
    with torch.device("meta"):
        net = SportsC3D()
    net.load_state_dict(state_dict, strict=True, assign=True)
    return net.float().eval()


# -- untrained weights --------------------------------------------------------------------

def untrained_state_dicts(seed: int) -> StateDicts:
    """Random weights for each part from ``seed``, in about a second: what the default
    (untrained) weights are generated with (:func:`inference.weights.generated_weights`).

    He (Kaiming) normal initialisation for the ReLU layers keeps activations at a steady scale
    through the network, so the untrained score still changes with the video (PyTorch's
    default initialisation shrinks them layer by layer until every video scores about the
    same). The regressor keeps PyTorch's default initialisation.
    """
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m inference.model",
                                     description="Generate the default (untrained) weights and the backbone's "
                                                 "converted copies, ahead of time.")
    parser.add_argument("--cache-dir", help="where to generate them (default: DIVESCORE_CACHE_DIR or ~/.cache)")
    args = parser.parse_args(argv)
    from divescore.settings import load

    settings = load()
    weights = generated_weights(args.cache_dir or default_cache_dir(settings), untrained_state_dicts)
    for dtype in (torch.float32, torch.bfloat16):  # the backbone's converted copies (written once)
        load_part(weights, "backbone", dtype)
    print(f"{weights.name}: {weights.backbone.parent}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

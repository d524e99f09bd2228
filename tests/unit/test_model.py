"""The C3D-AVG architecture and its weights files."""

import copy
import json

import pytest
import torch

from divescore.settings import load
from inference.model import (
    BACKBONE_MEMORY_FORMAT,
    C3DAVG,
    PARTS,
    SportsC3D,
    build_model,
    load_part,
    untrained_state_dicts,
)
from inference.weights import (
    FILE_PATTERNS,
    WeightsError,
    checkpoint_weights,
    generated_weights,
    load_state_dict,
    resolve,
)

SEED = 7


@pytest.fixture(scope="module")
def state_dicts():
    """Generated weights of every part (a second or two: made once for this file)."""
    return untrained_state_dicts(SEED)


def _meta_model() -> C3DAVG:
    with torch.device("meta"):
        return C3DAVG()


def _count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_parameter_counts_equal_the_published_ones():
    model = _meta_model()
    assert _count(model.backbone) == 27_655_936
    assert _count(model.fc6) == 33_558_528
    assert _count(model.regressor) == 4_097
    with torch.device("meta"):
        sports = SportsC3D()
    assert _count(sports) == 27_655_936 + 33_558_528 + 4096 * 4096 + 4096 + 4096 * 487 + 487


def test_parameter_names_are_those_of_the_mtl_aqa_files():
    model = _meta_model()
    convs = ["conv1", "conv2", "conv3a", "conv3b", "conv4a", "conv4b", "conv5a", "conv5b"]
    assert list(model.backbone.state_dict()) == [f"{c}.{p}" for c in convs for p in ("weight", "bias")]
    assert list(model.fc6.state_dict()) == ["fc.weight", "fc.bias"]
    assert list(model.regressor.state_dict()) == ["fc_final_score.weight", "fc_final_score.bias"]


def _save_in_published_layout(state_dicts, folder, tag="94"):
    """As MTL-AQA's save_model did: torch.save(part.state_dict(), f"{name}_{epoch}.pth")."""
    folder.mkdir(exist_ok=True)
    for part, state in state_dicts.items():
        torch.save(state, folder / FILE_PATTERNS[part].format(tag=tag))


def test_a_checkpoint_in_the_published_layout_loads_strictly_and_gives_the_same_output(tmp_path, state_dicts):
    in_memory = C3DAVG().eval()
    for part in PARTS:
        getattr(in_memory, part).load_state_dict(state_dicts[part])
    contiguous = copy.deepcopy(in_memory)
    in_memory.backbone.to(memory_format=BACKBONE_MEMORY_FORMAT)  # the layout the function runs in
    _save_in_published_layout(state_dicts, tmp_path / "checkpoints")

    weights = resolve(load({}, model_dir=str(tmp_path / "checkpoints")), untrained_state_dicts)
    assert (weights.name, weights.calibrated, weights.gate) == ("mtl-aqa-94", True, None)
    loaded = build_model(weights)

    clips = torch.randn(1, 3, 16, 112, 112, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        features = loaded.clip_features(clips)
        assert features.shape == (1, 8192) and loaded.head(features).shape == (1,)
        score = loaded(clips)
        assert score.shape == () and torch.equal(score, in_memory(clips))
        assert torch.allclose(score, contiguous(clips), rtol=0, atol=1e-4)  # PyTorch's default layout
    assert all(p.dtype == torch.float32 for p in loaded.parameters())


def test_a_checkpoint_with_other_names_is_refused(tmp_path, state_dicts):
    # As nn.DataParallel would have saved it: every name prefixed with "module."
    renamed = {**state_dicts, "regressor": {f"module.{k}": v for k, v in state_dicts["regressor"].items()}}
    _save_in_published_layout(renamed, tmp_path)
    with pytest.raises(RuntimeError, match="fc_final_score"):
        build_model(checkpoint_weights(tmp_path))


def test_legacy_format_files_load_without_memory_mapping(tmp_path, state_dicts):
    state = state_dicts["regressor"]
    path = tmp_path / "model_score_regressor_1.pth"
    torch.save(state, path, _use_new_zipfile_serialization=False)  # PyTorch < 1.6 wrote this format
    loaded = load_state_dict(path)
    assert torch.equal(loaded["fc_final_score.weight"], state["fc_final_score.weight"])


def test_the_highest_epoch_is_chosen_and_an_incomplete_folder_refused(tmp_path, state_dicts):
    small = {part: {k: v[:1].clone() for k, v in state.items()} for part, state in state_dicts.items()}
    _save_in_published_layout(small, tmp_path, tag="9")
    _save_in_published_layout(small, tmp_path, tag="94")
    (tmp_path / "model_CNN_99.pth").write_bytes(b"")  # no fc6 or regressor for 99
    (tmp_path / "c3d.pickle").write_bytes(b"")
    weights = checkpoint_weights(tmp_path)
    assert weights.name == "mtl-aqa-94" and weights.backbone.name == "model_CNN_94.pth"
    assert weights.gate == tmp_path / "c3d.pickle"
    (tmp_path / "empty").mkdir()
    with pytest.raises(WeightsError, match="no complete set"):
        checkpoint_weights(tmp_path / "empty")
    with pytest.raises(WeightsError, match="not a folder"):
        checkpoint_weights(tmp_path / "missing")


def test_generated_weights_are_deterministic_untrained_and_made_once(tmp_path, state_dicts):
    weights = generated_weights(tmp_path, untrained_state_dicts, seed=SEED)
    assert weights.calibrated is False and "UNTRAINED" in weights.description
    assert sorted(f.name for f in weights.backbone.parent.iterdir()) == [
        "model_CNN_untrained.pth", "model_my_fc6_untrained.pth", "model_score_regressor_untrained.pth",
        "weights.json",
    ]
    assert json.loads((weights.backbone.parent / "weights.json").read_text())["calibrated"] is False
    mtime = weights.backbone.stat().st_mtime_ns
    assert generated_weights(tmp_path, untrained_state_dicts, seed=SEED) == weights
    assert weights.backbone.stat().st_mtime_ns == mtime  # not generated again

    for part in PARTS:  # the same as generating again in memory
        saved = load_part(weights, part)
        assert saved.keys() == state_dicts[part].keys()
        assert all(torch.equal(saved[k], state_dicts[part][k]) for k in saved)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_the_backbone_is_converted_once_to_a_cached_file_then_mapped(tmp_path, state_dicts, dtype):
    """Checkpoints are contiguous float32; the backbone runs channels-last (and in bf16 when
    asked): converted once into a file that later cold starts map."""
    weights = generated_weights(tmp_path, untrained_state_dicts, seed=SEED)
    cached = weights.converted_path("backbone", dtype)
    assert not cached.exists()

    first = load_part(weights, "backbone", dtype)
    assert cached.is_file()
    mtime = cached.stat().st_mtime_ns
    again = load_part(weights, "backbone", dtype)
    assert cached.stat().st_mtime_ns == mtime  # read back, not converted again

    for name, tensor in state_dicts["backbone"].items():
        expected = tensor.to(dtype)
        for loaded in (first[name], again[name]):
            assert loaded.dtype == dtype and torch.equal(loaded, expected)
            if tensor.dim() == 5:  # the layout oneDNN's convolutions are fastest in
                assert loaded.is_contiguous(memory_format=torch.channels_last_3d)
    assert not weights.converted_path("fc6", torch.float32).exists()  # already as it runs: mapped as it is

    model = build_model(weights, dtype)
    assert model.backbone.conv1.weight.dtype == dtype
    assert model.fc6.fc.weight.dtype == model.regressor.fc_final_score.weight.dtype == torch.float32

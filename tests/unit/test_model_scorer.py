"""The scoring pipeline with the real architecture: decode → preprocess → C3D-AVG."""

import copy
import json

import cv2
import numpy as np
import pytest
import torch

from bench import precision
from divescore.jobs import Stage
from divescore.settings import load
from inference import errors, preprocess
from inference.gate import DIVING_CLASS, DiveGate
from inference.model import SportsC3D, build_model
from inference.scorer import Scorer, dtype_of
from inference.video import VideoLimits
from tests.support import videos
from tests.support.helpers import WEIGHTS_CACHE
from tests.support.reading import read_frames

LIMITS = VideoLimits(max_seconds=600, max_pixels=3840 * 2160, min_frames=16)


@pytest.fixture(scope="module")
def video_17(tmp_path_factory):
    """17 frames: six overlapping clips, two of them distinct (starts 0 and 1)."""
    return videos.make_video(tmp_path_factory.mktemp("v") / "dive.mp4", seconds=17 / 25, size=(160, 120),
                             codec="h264")


def test_the_pipeline_scores_what_the_model_gives_for_the_same_frames(scorer, video_17):
    seen = []
    result = scorer.score(video_17, LIMITS, on_progress=lambda stage, fraction: seen.append((stage, fraction)))

    plan = [list(range(16))] * 3 + [list(range(1, 17))] * 3
    assert result.frames == [i for clip in plan for i in clip]
    # The reference: every frame decoded in order and preprocessed; the two distinct clips in
    # one batch; their features averaged with the weights the plan gives them (3 and 3).
    capture = cv2.VideoCapture(str(video_17))
    frames = []
    while (decoded := capture.read())[0]:
        frames.append(preprocess.center_crop(preprocess.resize_frame(decoded[1])))
    capture.release()
    batch = torch.stack([preprocess.clip_tensor(frames[start:start + 16]) for start in (0, 1)])
    with torch.inference_mode():
        features = scorer.model.clip_features(batch)  # (2, 8192)
        expected_clip_scores = scorer.model.head(features).tolist()
        expected_score = float(scorer.model.head(features.mean(0, keepdim=True)))
    # Batched and single-clip convolutions round differently: equal to a thousandth of a point.
    assert result.score == pytest.approx(expected_score, abs=1e-3)
    assert result.clip_scores == pytest.approx([expected_clip_scores[0]] * 3 + [expected_clip_scores[1]] * 3, abs=1e-3)
    assert result.clip_scores[0] == result.clip_scores[2] != result.clip_scores[3]

    assert (result.video.frames, result.video.width, result.video.height) == (17, 160, 120)
    assert set(result.timings) == {"probe_s", "detect_s", "decode_s", "inference_s", "pipeline_s"}
    assert result.window.how == "whole"
    strip = cv2.imdecode(np.frombuffer(result.filmstrip, np.uint8), cv2.IMREAD_COLOR)
    assert strip.shape == (128, 8 * 171, 3)

    stages = [stage for stage, _ in seen]
    assert stages[0] == Stage.DECODING and stages[-1] == Stage.SCORING
    fractions = [fraction for _, fraction in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


@pytest.fixture(scope="module")
def decoded_clips(tmp_path_factory):
    """8 clips of 16 consecutive frames from a decoded H.264 video, as the scorer makes them."""
    path = videos.make_video(tmp_path_factory.mktemp("v") / "long.mp4", seconds=128 / 25, size=(320, 240),
                             codec="h264")
    crops = [preprocess.center_crop(preprocess.resize_frame(frame)) for _, frame in read_frames(path, range(128), 128)]
    return [preprocess.clip_tensor(crops[start:start + 16]) for start in range(0, 128, 16)]


def test_bfloat16_moves_a_score_by_a_small_part_of_the_scores_spread(scorer, decoded_clips):
    # bf16's arithmetic on float32 kernels: the same verdict on every CPU, at float32's speed
    # (the next test checks it is the arithmetic PyTorch's bf16 does).
    bf16 = precision.emulate_bf16(build_model(scorer.weights))
    error = precision.score_error(scorer.model, bf16, decoded_clips)
    print(f"\nbf16 on {error.clips} clips: max {error.max_points:.3f}, median {error.median_points:.3f} points; "
          f"float32 scores spread {error.spread_points:.2f} points")
    # Judged in points against the score's own scale: untrained scores sit near zero, so a
    # relative tolerance would mean nothing.
    assert error.spread_points > 1.0  # the clips differ: the scale is real
    assert error.median_points <= 0.03 * error.spread_points
    assert error.max_points <= 0.1 * error.spread_points


def test_the_emulation_is_the_arithmetic_of_pytorchs_bf16_convolutions(scorer):
    # Every convolution of the backbone on a small input, in real bf16 (native or PyTorch's
    # generic path, whichever this CPU takes: both agree) and emulated.
    generator = torch.Generator().manual_seed(3)
    for name, conv in scorer.model.backbone.named_children():
        if not isinstance(conv, torch.nn.Conv3d):
            continue
        x = precision.round_to_bf16(torch.randn(1, conv.in_channels, 2, 4, 4, generator=generator))
        with torch.inference_mode():
            emulated = precision.round_to_bf16(torch.nn.functional.conv3d(
                x, precision.round_to_bf16(conv.weight), precision.round_to_bf16(conv.bias), padding=1))
            unrounded_weights = precision.round_to_bf16(conv(x))
            real = copy.deepcopy(conv).to(torch.bfloat16)(x.to(torch.bfloat16)).float()
        # Only the order of float32 sums differs, which flips an occasional rounding.
        assert (real == emulated).float().mean() >= 0.995, name
        assert (real == unrounded_weights).float().mean() < 0.9, name  # the check can tell them apart


def test_the_dtype_is_the_setting_never_the_cpu(scorer):
    assert dtype_of(load({}).model_dtype) == torch.float32
    assert dtype_of("bfloat16") == torch.bfloat16
    bf16 = Scorer(build_model(scorer.weights, torch.bfloat16), scorer.weights, torch.bfloat16)
    assert bf16.model_info["dtype"] == "bfloat16" and scorer.model_info["dtype"] == "float32"
    assert bf16.model.backbone.conv1.weight.dtype == torch.bfloat16
    assert bf16.model.fc6.fc.weight.dtype == torch.float32  # the head always runs float32


def _sports_c3d_favouring(label: int) -> SportsC3D:
    """A Sports-1M C3D whose answer does not depend on the video: zero weights, one class's bias high."""
    with torch.device("meta"):
        net = SportsC3D()
    net.to_empty(device="cpu")
    for parameter in net.parameters():
        torch.nn.init.zeros_(parameter)
    with torch.no_grad():
        net.fc8.bias[label] = 10.0
    return net.eval()


def test_the_dive_gate_turns_away_what_is_not_a_dive(scorer, tmp_path):
    video = videos.make_video(tmp_path / "v.mp4", seconds=16 / 25, size=(160, 120))
    tennis = 54  # "tennis" in Sports-1M's labels
    gated = Scorer(scorer.model, scorer.weights, torch.float32, DiveGate(_sports_c3d_favouring(tennis)))
    with pytest.raises(errors.NotADive) as caught:
        gated.score(video, LIMITS)
    assert caught.value.code == "not_a_dive"


def test_the_dive_gate_passes_a_dive():
    gate = DiveGate(_sports_c3d_favouring(DIVING_CLASS))
    clip = [np.zeros((112, 112, 3), np.uint8)] * 16
    assert gate.check([clip]) > 0.9


def test_the_predict_command_scores_a_local_file(monkeypatch, capsys, video_17, tmp_path):
    from client.cli import main

    monkeypatch.setenv("DIVESCORE_CACHE_DIR", str(WEIGHTS_CACHE))
    monkeypatch.setenv("DIVESCORE_MODEL_DTYPE", "float32")

    assert main(["predict", str(video_17), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert isinstance(result["score"], float) and len(result["clip_scores"]) == 6 and len(result["frames"]) == 96
    assert result["model"]["calibrated"] is False and result["video"]["frames"] == 17

    assert main(["predict", str(video_17)]) == 0
    text = capsys.readouterr().out
    assert f"score        {result['score']:.4f}" in text
    assert "calibrated: false" in text and "UNTRAINED" in text
    assert "window       whole video" in text

    assert main(["predict", str(video_17), "--json", "--entry", "0.5"]) == 0
    assert json.loads(capsys.readouterr().out)["window"]["how"] == "given"

    assert main(["predict", str(videos.make_short(tmp_path / "short.mp4"))]) == 1
    assert "video_too_short" in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "missing.mp4")]) == 2


def test_predict_refuses_an_entry_past_the_videos_end_before_loading_the_model(monkeypatch, capsys, tmp_path):
    from client.cli import main
    from inference import scorer

    # GIVEN a 3.4 s video, and a model that must not be needed
    video = videos.make_video(tmp_path / "dive.mp4", seconds=3.4, size=(160, 120))
    monkeypatch.setattr(scorer, "load_scorer", lambda settings: pytest.fail("the model was loaded"))

    # WHEN it is scored with the entry at 9 s, THEN it is refused at once, naming the video's length
    assert main(["predict", str(video), "--entry", "9"]) == 2
    err = capsys.readouterr().err
    assert "past the end of the video, which lasts 3.40 s" in err and "--entry" in err
    assert main(["predict", str(video), "--entry", "-1"]) == 2
    assert "0 or more" in capsys.readouterr().err

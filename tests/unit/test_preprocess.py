"""Frame selection, preprocessing values and shapes, the filmstrip."""

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from inference import filmstrip, preprocess
from inference.preprocess import CLIP_FRAMES, CLIPS, RESIZE_WH, plan_clips
from tests.support import videos
from tests.support.reading import read_frames


def _check_plan(plan, frame_count):
    assert len(plan) == CLIPS
    for clip in plan:
        assert len(clip) == CLIP_FRAMES
        assert all(0 <= i < frame_count for i in clip)


def test_96_frames_give_the_training_layout():
    plan = plan_clips(96)
    _check_plan(plan, 96)
    assert plan == [list(range(start, start + 16)) for start in (0, 16, 32, 48, 64, 80)]


@pytest.mark.parametrize("frame_count", [97, 250, 1500])
def test_long_videos_get_consecutive_clips_spread_over_the_whole_video(frame_count):
    plan = plan_clips(frame_count)
    _check_plan(plan, frame_count)
    assert plan[0][0] == 0 and plan[-1][-1] == frame_count - 1
    for clip in plan:
        assert clip == list(range(clip[0], clip[0] + 16))  # motion at the speed training saw
    gaps = np.diff([clip[0] for clip in plan])
    assert gaps.min() >= 16 and gaps.max() - gaps.min() <= 1  # even spacing, no overlap


@pytest.mark.parametrize("frame_count", [16, 17, 40, 95])
def test_short_videos_get_overlapping_clips_covering_every_frame(frame_count):
    plan = plan_clips(frame_count)
    _check_plan(plan, frame_count)
    assert plan[0][0] == 0 and plan[-1][-1] == frame_count - 1
    assert {i for clip in plan for i in clip} == set(range(frame_count))
    if frame_count == 16:
        assert all(clip == list(range(16)) for clip in plan)


def test_fewer_frames_than_a_clip_repeat_the_last_frame():
    plan = plan_clips(5)
    _check_plan(plan, 5)
    assert plan[0] == [0, 1, 2, 3, 4] + [4] * 11


def test_resize_gives_171x128_rgb():
    blue_bgr = np.zeros((1080, 1920, 3), np.uint8)
    blue_bgr[..., 0] = 255
    small = preprocess.resize_frame(blue_bgr)
    assert small.shape == (128, 171, 3) and small.dtype == np.uint8
    assert (small[..., 2] == 255).all() and (small[..., :2] == 0).all()  # blue is the last channel in RGB


# Mean |difference| from PIL, in levels of 255. resize_frame (halving, then INTER_AREA) gives about 1
# at every size; plain INTER_LINEAR, which does not smooth before shrinking, 7 to 9.
MAX_MEAN_DIFFERENCE_FROM_PIL = 2.0


@pytest.mark.parametrize("size", [(640, 360), (1280, 720), (1920, 1080), (3840, 2160)], ids=lambda s: f"{s[1]}p")
def test_frames_are_shrunk_as_pils_bilinear_filter_shrinks_them(tmp_path, size):
    # MTL-AQA's loader: PIL's resize((171, 128), BILINEAR), which widens its filter as it shrinks.
    path = videos.make_detailed(tmp_path / "detail.mp4", size, frames=3)
    for _, frame in read_frames(path, range(3), 3):
        assert frame.shape == (size[1], size[0], 3)
        ours = preprocess.resize_frame(frame).astype(np.float32)
        pil = Image.fromarray(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)).resize(RESIZE_WH, Image.Resampling.BILINEAR)
        difference = np.abs(ours - np.asarray(pil, np.float32)).mean()
        assert difference <= MAX_MEAN_DIFFERENCE_FROM_PIL, f"{size}: {difference:.2f}"


def test_small_frames_are_enlarged_bilinearly_like_pil():
    frame = videos.frame(3, (160, 120))
    ours = preprocess.resize_frame(frame).astype(np.float32)
    pil = Image.fromarray(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)).resize(RESIZE_WH, Image.Resampling.BILINEAR)
    assert np.abs(ours - np.asarray(pil, np.float32)).mean() <= MAX_MEAN_DIFFERENCE_FROM_PIL


def test_centre_crop_takes_torchvisions_offsets():
    rows, cols = np.meshgrid(np.arange(128), np.arange(171), indexing="ij")
    frame = np.stack([rows, cols, np.zeros_like(rows)], axis=-1).astype(np.uint8)
    crop = preprocess.center_crop(frame)
    assert crop.shape == (112, 112, 3)
    assert crop[0, 0, 0] == 8 and crop[-1, 0, 0] == 119  # round((128 - 112) / 2) = 8
    assert crop[0, 0, 1] == 30 and crop[0, -1, 1] == 141  # round((171 - 112) / 2) = 30


def test_clip_tensor_normalises_like_totensor_and_normalize():
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 256, (112, 112, 3), dtype=np.uint8) for _ in range(16)]
    clip = preprocess.clip_tensor(frames)
    assert clip.shape == (3, 16, 112, 112) and clip.dtype == torch.float32 and clip.is_contiguous()
    # ToTensor then Normalize, written out: (T, H, W, C) -> (C, T, H, W)
    expected = (np.stack(frames).astype(np.float32) / 255 - preprocess.MEAN) / preprocess.STD
    expected = torch.from_numpy(expected.transpose(3, 0, 1, 2).astype(np.float32))
    torch.testing.assert_close(clip, expected, rtol=1e-5, atol=1e-5)
    raw = preprocess.raw_clip_tensor(frames)
    assert raw.shape == (3, 16, 112, 112)
    assert raw[0, 3, 5, 7] == frames[3][5, 7, 0] and raw[2, 15, 0, 1] == frames[15][0, 1, 2]


def test_filmstrip_picks_evenly_and_encodes_a_jpeg():
    assert filmstrip.pick(range(96)) == [0, 14, 27, 41, 54, 68, 81, 95]
    assert filmstrip.pick([3, 1, 2]) == [1, 2, 3]
    frames = [np.full((128, 171, 3), 30 * i, np.uint8) for i in range(8)]
    jpeg = filmstrip.encode(frames)
    assert jpeg[:2] == b"\xff\xd8"
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (128, 8 * 171, 3)
    assert abs(int(image[64, 7 * 171 + 80, 0]) - 210) <= 3  # the last frame is last

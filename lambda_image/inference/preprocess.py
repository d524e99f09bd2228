"""Frames → the tensors C3D-AVG was trained on, and which frames to take.

Preprocessing follows MTL-AQA's data loader at test time: RGB, resize to 171x128 (W x H),
centre crop 112x112, ``ToTensor`` (÷255) and ``Normalize`` with the ImageNet mean and std.
Their loader resized with PIL (a filter chosen at random, bilinear among them); PIL's filters
widen with the shrink factor, so they average every source pixel instead of sampling a few.
:func:`resize_frame` does the same at a fraction of PIL's cost (see its docstring).

Frame selection (:func:`plan_clips`). Training fed 103-frame samples ending at the diver's
entry into the water and took 6 clips of 16 consecutive frames (frames 0-95). We take 6 clips
of 16 *consecutive* frames, so each clip shows motion at the speed the network was trained
on, with the clips' starts spread evenly from the first frame to the last:

- exactly 96 frames: clips 0-15, 16-31, ..., 80-95: the training layout;
- longer: the 6 clips are spaced out to cover the whole video (C3D-AVG averages clip
  features, so their spacing does not matter to the model, only what they show); trim a video
  to the dive (about 100 frames) to get the training layout;
- shorter, down to 16 frames: the clips overlap (at 16 frames all six are the same clip,
  computed once);
- under 16 frames (only if ``min_video_frames`` allows it): one clip that repeats the last frame.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import torch

RESIZE_WH = (171, 128)  # MTL-AQA's input_resize for C3D-AVG, (width, height)
CROP = 112
CLIP_FRAMES = 16
CLIPS = 6
SAMPLE_FRAMES = CLIPS * CLIP_FRAMES  # 96
MEAN = (0.485, 0.456, 0.406)  # ImageNet, RGB
STD = (0.229, 0.224, 0.225)

# torchvision's CenterCrop offsets: round((128 - 112) / 2), round((171 - 112) / 2) = 8, 30
_TOP = round((RESIZE_WH[1] - CROP) / 2.0)
_LEFT = round((RESIZE_WH[0] - CROP) / 2.0)

# x / 255 then (x - mean) / std, folded into one multiply-add per channel
_SCALE = torch.tensor([1.0 / (255.0 * s) for s in STD]).view(3, 1, 1, 1)
_SHIFT = torch.tensor([-m / s for m, s in zip(MEAN, STD, strict=True)]).view(3, 1, 1, 1)


def plan_clips(frame_count: int, clips: int = CLIPS, clip_frames: int = CLIP_FRAMES) -> list[list[int]]:
    """The frame indices of each clip (see the module's docstring for the policy)."""
    if frame_count < 1:
        raise ValueError("a video with no frames has no clips")
    if frame_count < clip_frames:
        clip = [min(i, frame_count - 1) for i in range(clip_frames)]
        return [clip] * clips
    last_start = frame_count - clip_frames
    starts = [int(i * last_start / (clips - 1) + 0.5) for i in range(clips)] if clips > 1 else [last_start // 2]
    return [list(range(start, start + clip_frames)) for start in starts]


def resize_frame(frame_bgr: np.ndarray) -> np.ndarray:
    """A decoded frame, ready to crop: (H, W, 3) BGR uint8 -> (128, 171, 3) RGB uint8.

    Antialiased as PIL's bilinear filter is when it shrinks (MTL-AQA's loader): halved with
    2x2 averages while the frame is at least twice the target on both sides (OpenCV's fast
    path for an exact 2x area reduction), then area interpolation for the last step. Plain
    ``INTER_LINEAR`` reads 4 source pixels per output pixel and aliases fine detail and noise
    into the frame (a mean difference from PIL of 8 levels at 1080p, against about 1 here);
    ``INTER_AREA`` in one step matches as well but costs 7x more on a 1080p frame. Any
    decoder's frames go through here; enlarging (frames under 171x128) stays bilinear.
    """
    small = frame_bgr
    while small.shape[1] >= 2 * RESIZE_WH[0] and small.shape[0] >= 2 * RESIZE_WH[1]:
        small = cv2.resize(small, (small.shape[1] // 2, small.shape[0] // 2), interpolation=cv2.INTER_AREA)
    shrinking = small.shape[1] >= RESIZE_WH[0] and small.shape[0] >= RESIZE_WH[1]
    small = cv2.resize(small, RESIZE_WH, interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    return cv2.cvtColor(small, cv2.COLOR_BGR2RGB)  # converting after the resize: 100x fewer pixels


def center_crop(frame: np.ndarray) -> np.ndarray:
    """(128, 171, 3) -> (112, 112, 3), a view."""
    return frame[_TOP:_TOP + CROP, _LEFT:_LEFT + CROP]


def clip_tensor(frames: Sequence[np.ndarray]) -> torch.Tensor:
    """16 cropped RGB uint8 frames -> the normalised float32 clip C3D-AVG takes.

    (T, H, W, C) uint8 -> (C, T, H, W) float32
    """
    video = torch.from_numpy(np.stack(frames))  # (T, H, W, C)
    video = video.permute(3, 0, 1, 2).float().contiguous()  # (C, T, H, W)
    return video.mul_(_SCALE).add_(_SHIFT)


def raw_clip_tensor(frames: Sequence[np.ndarray]) -> torch.Tensor:
    """The same clip as 0-255 floats, as the Sports-1M C3D (the dive gate) was run.

    (T, H, W, C) uint8 -> (C, T, H, W) float32
    """
    return torch.from_numpy(np.stack(frames)).permute(3, 0, 1, 2).float().contiguous()

"""Pure numpy transforms of one pose sequence [T, 17, 3] (x, y, score).

The deterministic steps (fps resampling, normalisation, mirroring, evaluation windows) live in
`asd_jax.base.preprocess`, their one home, which the exported predictor copies; they are
re-exported here under the names the pipeline uses. This module adds the training augmentations.

Normalisation makes clips from any camera comparable: y points up, the walker moves towards +x,
the mid-hip is the origin of every frame and the torso length is the unit. Joints whose score is
below `skeleton.MIN_SCORE` are "missing": their x and y are 0 and the model sees them through their score.
"""

from __future__ import annotations

import numpy as np

from asd_jax.base.preprocess import (  # noqa: F401 - re-exported: the pipeline's names for them
    PADS,
    crop_window,
    eval_window,
    eval_window_starts,
    flip_left_right,
    normalize_pose,
    resample_fps,
    resample_time,
    resampled_length,
)
from asd_jax.base.skeleton import MIN_SCORE  # noqa: F401 - re-exported


def rotate_scale(pose: np.ndarray, angle_deg: float | np.ndarray, scale: float | np.ndarray) -> np.ndarray:
    """Rotates and scales a normalised pose about the origin; missing joints stay at 0. One
    sequence [T, 17, 3] by one angle and scale, or a batch [B, T, 17, 3] each by its own ([B])."""
    angle = np.deg2rad(np.asarray(angle_deg, np.float64))
    cos, sin = np.cos(angle), np.sin(angle)
    turn = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2).astype(np.float32)
    rotation = np.asarray(scale, np.float32)[..., None, None] * turn  # [(B,) 2, 2]
    xy = pose[..., :2] @ np.swapaxes(rotation, -1, -2)[..., None, :, :]
    return np.concatenate([xy, pose[..., 2:]], -1).astype(np.float32)


def kept_joints(frames: int, joints: int, rate: float, rng: np.random.Generator) -> np.ndarray:
    """[frames, joints] True but for a random `rate` of the joints, which augmentation marks missing."""
    return rng.random((frames, joints)) >= rate


def drop_joints(pose: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """Marks the joints not `kept` missing (score and coordinates 0); one sequence or a batch."""
    return pose * kept[..., None].astype(pose.dtype)


def speed_crop(pose: np.ndarray, start: int, span: int, window: int, pad: str) -> np.ndarray:
    """`span` frames from `start` resampled to `window` frames (speed jitter). With pad 'missing', a
    clip that ends first keeps its real frames at that speed and the window's rest is missing,
    rather than the padding being stretched into (and blended with) the walk."""
    if pad == "edge" or pose.shape[0] - start >= span:
        return resample_time(crop_window(pose, start, span), window)
    real = pose[start:]
    return crop_window(resample_time(real, max(1, round(real.shape[0] * window / span))), 0, window, pad)

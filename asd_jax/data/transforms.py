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


def mixup_partners(positions: np.ndarray) -> np.ndarray:
    """The index in `positions` of each example's mixup partner, the example at the neighbouring
    global position (2k with 2k + 1), so a pair is the same for any number of devices or processes;
    an example whose partner is not in `positions` is its own (left unmixed)."""
    index_of = {int(p): i for i, p in enumerate(positions)}
    return np.array([index_of.get(int(p) ^ 1, i) for i, p in enumerate(positions)], np.int64)


def mix_examples(arrays: dict[str, np.ndarray], partner: np.ndarray, share: np.ndarray) -> dict[str, np.ndarray]:
    """Mixup across examples (Zhang et al. 2018): each example becomes `share` of itself and the rest
    of its partner, in its pose, prior and gait features, and keeps both labels (`mix_label`, and
    `mix_weight` = `share`, the weight of its own label in the loss). A joint is seen only where it
    is seen in both poses, so a missing joint or padded frame never drags the other towards 0, and a
    gait feature only where both measured it (NaN otherwise, as an unmeasured one)."""
    share = np.where(partner == np.arange(len(partner)), 1.0, share).astype(np.float32)
    mixed = dict(arrays)
    pose, other = arrays["pose"], arrays["pose"][partner]
    seen = (pose[..., 2] >= MIN_SCORE) & (other[..., 2] >= MIN_SCORE)
    weight = share[:, None, None, None]
    mixed["pose"] = np.where(seen[..., None], weight * pose + (1 - weight) * other, 0.0).astype(np.float32)
    for key in ("prior", "features"):
        if key in arrays:
            mixed[key] = (share[:, None] * arrays[key] + (1 - share[:, None]) * arrays[key][partner]).astype(np.float32)
    mixed["mix_label"] = arrays["label"][partner]
    mixed["mix_weight"] = share
    return mixed

"""What a keypoint model sees of a normalised pose [B, T, 17, 3]: per-joint channels (position,
velocity, score; optionally bone vectors and coarser motion) and per-frame channels (optionally the
clinical segment angles and their change), as `config.model.inputs` asks
(asd_jax/base/architecture.py lists them). Missing joints (score < MIN_SCORE) contribute zeros,
never a jump to or from the origin. The PyTorch twins compute the same (pytorch/twins/layers.py).
"""

from __future__ import annotations

import jax.numpy as jnp

from asd_jax.base.architecture import BONE_PARENTS, MOTION_LAG, NUM_FEATURES, SEGMENTS, input_channels
from asd_jax.base.skeleton import MIN_SCORE

__all__ = ["NUM_FEATURES", "frame_inputs", "input_channels", "joint_features", "joint_inputs", "model_inputs"]


def _lagged(values: jnp.ndarray, present: jnp.ndarray, lag: int) -> jnp.ndarray:
    """values[t] - values[t - lag] where both are present, else 0 (0 for the first `lag` frames)."""
    change = values[:, lag:] - values[:, :-lag]
    both = present[:, lag:] & present[:, :-lag]
    return jnp.concatenate([jnp.zeros_like(values[:, :lag]), jnp.where(both, change, 0.0)], axis=1)


def joint_features(pose: jnp.ndarray) -> jnp.ndarray:
    """[B, T, J, 3] -> [B, T, J, 5]: position, frame-to-frame velocity, confidence."""
    xy, score = pose[..., :2], pose[..., 2:3]
    return jnp.concatenate([xy, _lagged(xy, score >= MIN_SCORE, 1), score], axis=-1)


def joint_inputs(pose: jnp.ndarray, inputs: str) -> jnp.ndarray:
    """[B, T, J, channels per joint] of `inputs`."""
    names = inputs.split(",")
    xy, present = pose[..., :2], pose[..., 2:3] >= MIN_SCORE
    parts = [joint_features(pose)] if "joints" in names else [jnp.zeros((*pose.shape[:3], 0), pose.dtype)]
    if "bones" in names:
        parent_xy, parent_present = xy[:, :, BONE_PARENTS], present[:, :, BONE_PARENTS]
        parts.append(jnp.where(present & parent_present, xy - parent_xy, 0.0))
    if "motion" in names:
        parts.append(_lagged(xy, present, MOTION_LAG))
    return jnp.concatenate(parts, axis=-1)


def segment_angles(pose: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    """[B, T, segments] angles in radians (SEGMENTS) and whether all their joints are present."""
    angles, seen = [], []
    for _, lower, upper, hanging in SEGMENTS:
        low, high = pose[:, :, list(lower)], pose[:, :, list(upper)]
        vector = high[..., :2].mean(2) - low[..., :2].mean(2)
        dy = -vector[..., 1] if hanging else vector[..., 1]
        angles.append(jnp.arctan2(vector[..., 0], dy))
        seen.append((low[..., 2] >= MIN_SCORE).all(-1) & (high[..., 2] >= MIN_SCORE).all(-1))
    return jnp.stack(angles, -1), jnp.stack(seen, -1)


def frame_inputs(pose: jnp.ndarray, inputs: str) -> jnp.ndarray:
    """[B, T, channels per frame] of `inputs` (0 channels when it asks for none)."""
    if "angles" not in inputs.split(","):
        return jnp.zeros((*pose.shape[:2], 0), pose.dtype)
    angles, seen = segment_angles(pose)
    return jnp.concatenate([jnp.where(seen, angles, 0.0), _lagged(angles, seen, MOTION_LAG)], axis=-1)


def model_inputs(pose: jnp.ndarray, inputs: str) -> jnp.ndarray:
    """[B, T, J * joint channels + frame channels]: everything of one frame, flattened."""
    joints = joint_inputs(pose, inputs)
    return jnp.concatenate([joints.reshape(*joints.shape[:2], -1), frame_inputs(pose, inputs)], axis=-1)

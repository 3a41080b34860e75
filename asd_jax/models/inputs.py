"""Per-frame joint features shared by every keypoint model."""

from __future__ import annotations

import jax.numpy as jnp

from asd_jax.base.architecture import NUM_FEATURES
from asd_jax.base.skeleton import MIN_SCORE

__all__ = ["NUM_FEATURES", "joint_features"]


def joint_features(pose: jnp.ndarray) -> jnp.ndarray:
    """[B, T, J, 3] normalised pose -> [B, T, J, 5]: position, velocity, confidence.

    Velocity is the frame difference, 0 at the first frame and wherever either frame's joint is
    missing (a jump to or from the origin is not motion).
    """
    xy, score = pose[..., :2], pose[..., 2:3]
    present = score >= MIN_SCORE
    step = xy[:, 1:] - xy[:, :-1]
    both = present[:, 1:] & present[:, :-1]
    velocity = jnp.concatenate([jnp.zeros_like(xy[:, :1]), jnp.where(both, step, 0.0)], axis=1)
    return jnp.concatenate([xy, velocity, score], axis=-1)

"""Step detection for PhaseMix, in JAX with static shapes so it runs inside the jitted model.

A step (half gait cycle) runs from one widest-stride moment to the next: the horizontal distance
between the ankles peaks when the feet are furthest apart, at each heel strike. Peaks are local
maxima of the smoothed gap that are at least `min_distance` frames apart (non-maximum suppression)
and above the clip's mean gap.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from asd_jax.base.architecture import resample_positions, uniform_boundaries
from asd_jax.base.skeleton import LEFT_ANKLE, RIGHT_ANKLE


def ankle_gap(pose: jax.Array, smooth: int = 5) -> jax.Array:
    """[T, 17, 3] normalised pose -> [T] smoothed horizontal ankle distance."""
    gap = jnp.abs(pose[:, LEFT_ANKLE, 0] - pose[:, RIGHT_ANKLE, 0])
    kernel = jnp.ones(smooth) / smooth
    padded = jnp.pad(gap, (smooth // 2, smooth - 1 - smooth // 2), mode="edge")
    return jnp.convolve(padded, kernel, mode="valid")


def widest_stride_mask(pose: jax.Array, min_distance: int = 10) -> jax.Array:
    """[T] bool: frames where the ankle gap has a peak, peaks >= min_distance frames apart."""
    gap = ankle_gap(pose)
    radius = min_distance - 1
    padded = jnp.pad(gap, radius, constant_values=-jnp.inf)
    windows = jax.vmap(lambda t: jax.lax.dynamic_slice(padded, (t,), (2 * radius + 1,)))(jnp.arange(gap.shape[0]))
    is_max = gap >= windows.max(axis=1)
    first_of_plateau = jnp.concatenate([jnp.array([True]), gap[1:] != gap[:-1]])
    return is_max & first_of_plateau & (gap > gap.mean())


def step_boundaries(pose: jax.Array, max_steps: int, min_distance: int = 10) -> tuple[jax.Array, jax.Array]:
    """Start frames [max_steps + 1] of consecutive steps and a [max_steps] validity mask.

    With fewer than two peaks (e.g. the ankles are missing) the window is cut into equal quarters,
    so the model always has something to look at.
    """
    frames = pose.shape[0]
    mask = widest_stride_mask(pose, min_distance)
    (peaks,) = jnp.nonzero(mask, size=max_steps + 1, fill_value=frames - 1)
    count = mask.sum()
    uniform = jnp.asarray(uniform_boundaries(frames, max_steps), peaks.dtype)
    enough = count >= 2
    boundaries = jnp.where(enough, peaks, uniform)
    valid = jnp.where(enough, jnp.arange(max_steps) < count - 1, jnp.arange(max_steps) < 4)
    return boundaries, valid


def resample_segment(features: jax.Array, start: jax.Array, stop: jax.Array, length: int) -> jax.Array:
    """[T, ...] frames start..stop linearly resampled to `length` frames."""
    positions = start + (stop - start) * jnp.asarray(resample_positions(length))
    lower = jnp.floor(positions).astype(jnp.int32)
    upper = jnp.minimum(lower + 1, features.shape[0] - 1)
    frac = (positions - lower).reshape(-1, *([1] * (features.ndim - 1)))
    return features[lower] * (1 - frac) + features[upper] * frac

"""Explanation numerics: attention maps over frames and joints, and their agreement with the raters.

Pure numpy, so they are tested on their own and shared by `--mode=explain` and prediction reports.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr

from asd_jax.base.skeleton import NUM_JOINTS, REGIONS


def attention_agreement(attention: np.ndarray, prior: np.ndarray) -> dict[str, float]:
    """Rank correlation of region attention with the prior, and top-region agreement."""
    rho = spearmanr(attention, prior).statistic if np.ptp(prior) > 0 and np.ptp(attention) > 0 else float("nan")
    return {"spearman": float(rho), "top_region_match": float(np.argmax(attention) == np.argmax(prior))}


def frame_attention(window_attention: np.ndarray, starts: np.ndarray, num_frames: int, window: int) -> np.ndarray:
    """Per-window token maps [W, R, T'] -> one [R, frames] map, overlaps averaged."""
    patch = window // window_attention.shape[-1]
    total = np.zeros((window_attention.shape[1], max(num_frames, window)))
    count = np.zeros(total.shape[1])
    for attention, start in zip(window_attention, starts):
        total[:, start : start + window] += np.repeat(attention, patch, axis=-1)
        count[start : start + window] += 1
    return (total / np.maximum(count, 1))[:, :num_frames]


def joint_weights(region_by_frame: np.ndarray) -> np.ndarray:
    """[R, frames] -> [frames, 17]: each joint takes its region's attention (0 outside regions)."""
    weights = np.zeros((region_by_frame.shape[1], NUM_JOINTS))
    for r, joints in enumerate(REGIONS.values()):
        weights[:, list(joints)] = region_by_frame[r][:, None]
    return weights

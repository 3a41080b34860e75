"""Gait parameters clinicians read, from one clip's keypoints.

Heel strikes are the moments a foot is furthest in front of the hip (the horizontal ankle-minus-
mid-hip distance peaks), found per leg with scipy's peak finder on a smoothed trace. From them:
cadence (steps/min), stride time, and the stance/swing ratio (stance = the foot moves backwards
relative to the hip). Trunk inclination is the mid-hip -> mid-shoulder angle from vertical,
positive when leaning forward.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import uniform_filter1d
from scipy.signal import find_peaks

from asd_jax.base.skeleton import LEFT_ANKLE, LEFT_HIP, LEFT_SHOULDER, MIN_SCORE, RIGHT_ANKLE, RIGHT_HIP, RIGHT_SHOULDER
from asd_jax.data import transforms

MIN_STEP_SECONDS = 0.3


def _foot_trace(pose: np.ndarray, ankle: int) -> np.ndarray:
    """Ankle x minus mid-hip x in torso units, gaps from missing joints interpolated."""
    present = pose[:, ankle, 2] >= MIN_SCORE
    trace = pose[:, ankle, 0]
    if present.sum() < 2:
        return np.full(len(pose), np.nan)
    frames = np.arange(len(pose))
    return np.interp(frames, frames[present], trace[present])


def heel_strikes(pose: np.ndarray, fps: float) -> dict[str, np.ndarray]:
    """Heel-strike frames per leg of a NORMALISED pose (transforms.normalize_pose)."""
    strikes = {}
    for side, ankle in (("left", LEFT_ANKLE), ("right", RIGHT_ANKLE)):
        trace = _foot_trace(pose, ankle)
        if not np.isfinite(trace).all():
            strikes[side] = np.zeros(0, int)
            continue
        smooth = uniform_filter1d(trace, size=max(1, int(round(0.1 * fps))))
        peaks, _ = find_peaks(smooth, distance=max(1, int(2 * MIN_STEP_SECONDS * fps)), prominence=0.2)
        strikes[side] = peaks
    return strikes


def gait_parameters(pose: np.ndarray, fps: float) -> dict[str, float]:
    """Cadence, stride time, stance/swing ratio and trunk inclination of one clip (NaN if unsure)."""
    pose = transforms.normalize_pose(np.asarray(pose, np.float32))
    strikes = heel_strikes(pose, fps)
    intervals = [np.diff(s) / fps for s in strikes.values() if len(s) > 1]
    stride_time = float(np.median(np.concatenate(intervals))) if intervals else float("nan")
    stance_fractions = []
    for ankle in (LEFT_ANKLE, RIGHT_ANKLE):
        trace = _foot_trace(pose, ankle)
        seen = pose[:, ankle, 2] >= MIN_SCORE
        both = seen[1:] & seen[:-1]  # only motion between frames where the foot was seen
        if np.isfinite(trace).all() and both.sum() > 2:
            velocity = np.diff(uniform_filter1d(trace, size=max(1, int(round(0.1 * fps)))))
            stance_fractions.append(float(np.mean(velocity[both] < 0)))
    stance = float(np.mean(stance_fractions)) if stance_fractions else float("nan")
    hips = 0.5 * (pose[:, LEFT_HIP, :2] + pose[:, RIGHT_HIP, :2])
    shoulders = 0.5 * (pose[:, LEFT_SHOULDER, :2] + pose[:, RIGHT_SHOULDER, :2])
    seen = (pose[:, [LEFT_HIP, RIGHT_HIP, LEFT_SHOULDER, RIGHT_SHOULDER], 2] >= MIN_SCORE).all(1)
    trunk = np.degrees(np.arctan2(*(shoulders - hips)[seen].T)) if seen.any() else np.zeros(0)
    third = max(1, len(trunk) // 3)
    return {
        "cadence_steps_per_min": 120.0 / stride_time if np.isfinite(stride_time) else float("nan"),
        "stride_time_s": stride_time,
        "stance_swing_ratio": stance / (1 - stance) if 0 < stance < 1 else float("nan"),
        "trunk_inclination_deg": float(trunk.mean()) if len(trunk) else float("nan"),
        "trunk_inclination_change_deg": float(trunk[-third:].mean() - trunk[:third].mean()) if len(trunk) >= 3 else float("nan"),
    }

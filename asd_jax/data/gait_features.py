"""Hand-crafted features of one clip's keypoints, for the scikit-learn classifiers that set the bar
the deep models must clear (the `features` baseline and the cohort's calibration report).

`summary_features`: the generic set — normalised joint positions and speeds, joint angles, trunk
and neck inclination, each summarised over the clip (mean, std, 10th and 90th percentile).
Missing joints (score < MIN_SCORE) are left out of every statistic; a statistic with no data is 0.
"""

from __future__ import annotations

import numpy as np

from asd_jax.base.skeleton import JOINT_INDEX, JOINT_NAMES, MIN_SCORE
from asd_jax.data import transforms

# (name, a, b, c): the angle at joint b between segments b->a and b->c, in degrees.
JOINT_ANGLES: tuple[tuple[str, str, str, str], ...] = tuple(
    (f"{side}_{name}", f"{side}_{a}", f"{side}_{b}", f"{side}_{c}")
    for side in ("left", "right")
    for name, a, b, c in (("knee", "hip", "knee", "ankle"), ("elbow", "shoulder", "elbow", "wrist"))
)
STATISTICS = ("mean", "std", "p10", "p90")


def _summary(values: np.ndarray, present: np.ndarray) -> list[float]:
    """mean, std, p10, p90 of a per-frame series over the frames where it is present."""
    seen = values[present & np.isfinite(values)]
    if len(seen) == 0:
        return [0.0] * len(STATISTICS)
    p10, p90 = np.percentile(seen, [10, 90])
    return [float(seen.mean()), float(seen.std()), float(p10), float(p90)]


def _angle(pose: np.ndarray, a: str, b: str, c: str) -> tuple[np.ndarray, np.ndarray]:
    ia, ib, ic = JOINT_INDEX[a], JOINT_INDEX[b], JOINT_INDEX[c]
    u, v = pose[:, ia, :2] - pose[:, ib, :2], pose[:, ic, :2] - pose[:, ib, :2]
    cos = (u * v).sum(-1) / np.maximum(np.linalg.norm(u, axis=-1) * np.linalg.norm(v, axis=-1), 1e-9)
    present = (pose[:, [ia, ib, ic], 2] >= MIN_SCORE).all(-1)
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))), present


def _inclination(pose: np.ndarray, lower: tuple[str, str], upper: tuple[str, str]) -> tuple[np.ndarray, np.ndarray]:
    """Forward inclination from vertical of the line between two joint-pair centres (y up, walking +x)."""
    lo = pose[:, [JOINT_INDEX[j] for j in lower]]
    hi = pose[:, [JOINT_INDEX[j] for j in upper]]
    vector = hi[:, :, :2].mean(1) - lo[:, :, :2].mean(1)
    present = (lo[..., 2] >= MIN_SCORE).all(-1) & (hi[..., 2] >= MIN_SCORE).all(-1)
    return np.degrees(np.arctan2(vector[:, 0], vector[:, 1])), present


def summary_feature_names() -> list[str]:
    series = [f"{j}_{axis}" for j in JOINT_NAMES for axis in ("x", "y")]
    series += [f"{j}_speed" for j in JOINT_NAMES]
    series += [name for name, *_ in JOINT_ANGLES] + ["trunk_inclination", "neck_inclination"]
    return [f"{s}_{stat}" for s in series for stat in STATISTICS]


def summary_features(pose: np.ndarray, fps: float, target_fps: float = 30.0) -> np.ndarray:
    """The generic feature vector of one clip: pose [T, 17, 3] as stored (x, y over the longer image side, score)."""
    pose = transforms.normalize_pose(transforms.resample_fps(np.asarray(pose, np.float32), fps, target_fps))
    present = pose[..., 2] >= MIN_SCORE
    rows: list[list[float]] = []
    for j in range(len(JOINT_NAMES)):
        for axis in range(2):
            rows.append(_summary(pose[:, j, axis], present[:, j]))
    step = np.linalg.norm(np.diff(pose[..., :2], axis=0), axis=-1) * target_fps  # torso lengths per second
    both = present[1:] & present[:-1]
    for j in range(len(JOINT_NAMES)):
        rows.append(_summary(step[:, j], both[:, j]))
    for _, a, b, c in JOINT_ANGLES:
        rows.append(_summary(*_angle(pose, a, b, c)))
    rows.append(_summary(*_inclination(pose, ("left_hip", "right_hip"), ("left_shoulder", "right_shoulder"))))
    rows.append(_summary(*_inclination(pose, ("left_shoulder", "right_shoulder"), ("left_ear", "right_ear"))))
    return np.asarray(rows, np.float32).reshape(-1)

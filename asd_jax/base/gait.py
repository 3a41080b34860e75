"""Gait measured from one clip's keypoints, as a gait lab reports it and as the `features`
baseline, the gait-stream models and the calibration report read it. numpy and scipy only, so the
exported predictor (asd_jax/pytorch/deploy.py) bundles this very module and measures what the
model was trained on.

Heel strikes are the moments a foot is furthest in front of the hip (the horizontal ankle-minus-
mid-hip distance peaks), found per leg with scipy's peak finder on a smoothed trace. From them:
cadence (steps/min), stride time, and the stance/swing ratio (stance = the foot moves backwards
relative to the hip). Trunk inclination is the mid-hip -> mid-shoulder angle from vertical,
positive when leaning forward.

`summary_features`: the generic set (normalised joint positions and speeds, joint angles, trunk
and neck inclination, each summarised over the clip: mean, std, 10th and 90th percentile).
`clinical_features`: the clinical set (CLINICAL_FEATURE_NAMES). Missing joints (score <
MIN_SCORE) are left out of every statistic.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import uniform_filter1d
from scipy.signal import find_peaks

from asd_jax.base.preprocess import normalize_pose, resample_fps
from asd_jax.base.skeleton import (
    JOINT_INDEX,
    JOINT_NAMES,
    LEFT_ANKLE,
    LEFT_HIP,
    LEFT_SHOULDER,
    MIN_SCORE,
    RIGHT_ANKLE,
    RIGHT_HIP,
    RIGHT_SHOULDER,
)

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
    """Heel-strike frames per leg of a NORMALISED pose (normalize_pose)."""
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
    pose = normalize_pose(np.asarray(pose, np.float32))
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
    pose = normalize_pose(resample_fps(np.asarray(pose, np.float32), fps, target_fps))
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


# ---------------------------------------------------------------------------------------------
# The clinical set: what a gait lab reports, per clip, for the `features` baseline.

def _series(pose: np.ndarray, upper: tuple[str, ...], lower: tuple[str, ...], *, hanging: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame angle (degrees, positive forward) of the segment lower -> upper (centres of the
    named joints) from the upward vertical, or from the downward vertical for a hanging segment."""
    lo, hi = pose[:, [JOINT_INDEX[j] for j in lower]], pose[:, [JOINT_INDEX[j] for j in upper]]
    vector = hi[:, :, :2].mean(1) - lo[:, :, :2].mean(1)
    present = (lo[..., 2] >= MIN_SCORE).all(-1) & (hi[..., 2] >= MIN_SCORE).all(-1)
    if hanging:
        return np.degrees(np.arctan2(vector[:, 0], -vector[:, 1])), present
    return np.degrees(np.arctan2(vector[:, 0], vector[:, 1])), present


def _drift(values: np.ndarray, present: np.ndarray, fps: float) -> tuple[float, float]:
    """(last third - first third of the present frames, linear slope per second); 0 without data."""
    frames = np.flatnonzero(present & np.isfinite(values))
    if len(frames) < 6:
        return 0.0, 0.0
    third = len(frames) // 3
    change = float(values[frames[-third:]].mean() - values[frames[:third]].mean())
    slope = float(np.polyfit(frames / fps, values[frames], 1)[0])
    return change, slope


def _pair(left: float, right: float) -> list[float]:
    """A bilateral measure as (worse-or-lower side, other side, |difference|): independent of which
    side faces the camera."""
    values = [v for v in (left, right) if np.isfinite(v)]
    if not values:
        return [0.0, 0.0, 0.0]
    low, high = min(values), max(values)
    return [low, high, high - low]


def _leg_cycles(hip: np.ndarray, knee: np.ndarray, present: np.ndarray, strikes: np.ndarray) -> dict[str, float]:
    """Per gait cycle of one leg (heel strike to heel strike): peak hip extension, hip range, peak
    knee flexion; medians over the cycles (NaN without a whole cycle)."""
    cycles = [(a, b) for a, b in zip(strikes[:-1], strikes[1:], strict=True) if present[a:b].mean() > 0.5]
    if not cycles:
        return {"hip_extension": np.nan, "hip_range": np.nan, "knee_peak": np.nan}
    hip_ext, hip_range, knee_peak = [], [], []
    for a, b in cycles:
        seen = present[a:b]
        h, k = hip[a:b][seen], knee[a:b][seen]
        hip_ext.append(-h.min())
        hip_range.append(h.max() - h.min())
        knee_peak.append(k.max())
    return {"hip_extension": float(np.median(hip_ext)), "hip_range": float(np.median(hip_range)), "knee_peak": float(np.median(knee_peak))}


def _steps(pose: np.ndarray, strikes: dict[str, np.ndarray]) -> dict[str, float]:
    """Step length (ankle-to-ankle distance at heel strike, torso units) per leg, and its decay."""
    gap = np.abs(pose[:, JOINT_INDEX["left_ankle"], 0] - pose[:, JOINT_INDEX["right_ankle"], 0])
    seen = (pose[:, [JOINT_INDEX["left_ankle"], JOINT_INDEX["right_ankle"]], 2] >= MIN_SCORE).all(-1)
    per_leg = {side: gap[f][seen[f]] for side, f in strikes.items()}
    ordered = gap[np.sort(np.concatenate(list(strikes.values())))] if any(len(f) for f in strikes.values()) else np.zeros(0)
    half = len(ordered) // 2
    decay = float((ordered[:half].mean() - ordered[half:].mean()) / max(ordered[:half].mean(), 1e-6)) if half else 0.0
    lengths = {side: float(v.mean()) if len(v) else np.nan for side, v in per_leg.items()}
    return {"left": lengths["left"], "right": lengths["right"], "decay": decay}


CLINICAL_FEATURE_NAMES: tuple[str, ...] = (
    "cadence", "stride_time", "stance_swing_ratio",
    *(f"trunk_{s}" for s in ("mean", "std", "p10", "p90", "change", "slope")),
    *(f"head_{s}" for s in ("mean", "std", "p10", "p90", "change", "slope")),
    *(f"{m}_{side}" for m in ("hip_extension", "hip_range", "knee_peak", "knee_mean", "arm_swing", "step_length")
      for side in ("low", "high", "diff")),
    "step_decay", "knee_change", "visible_joints",
)


# The clinical features a rater's region stands for (the signs raters judge it by,
# asd_jax/data/synthetic/raters.py CRITERIA); a feature may inform two regions. Knee and timing
# measures belong to no rater region and are reported on their own.
REGION_FEATURE_PREFIXES: dict[str, tuple[str, ...]] = {
    "head": ("head_",),
    "shoulder": ("trunk_", "arm_swing_"),
    "wrist": ("arm_swing_",),
    "lumbar_pelvis": ("trunk_", "hip_"),
    "foot": ("step_", "cadence", "stride_time", "stance_swing_ratio"),
    "knee (no rater region)": ("knee_",),
}


def region_feature_groups() -> dict[str, list[int]]:
    """Region -> column indices of CLINICAL_FEATURE_NAMES (REGION_FEATURE_PREFIXES)."""
    return {
        region: [i for i, name in enumerate(CLINICAL_FEATURE_NAMES) if name.startswith(prefixes)]
        for region, prefixes in REGION_FEATURE_PREFIXES.items()
    }


FEATURE_FPS = 30.0  # the rate the clinical features are measured at, whatever a model's data.fps


def clinical_features(pose: np.ndarray, fps: float, target_fps: float = FEATURE_FPS) -> np.ndarray:
    """The clinical feature vector (CLINICAL_FEATURE_NAMES) of one clip; NaN where a measure has
    no data (the classifier's imputer fills it)."""
    raw = resample_fps(np.asarray(pose, np.float32), fps, target_fps)
    gait = gait_parameters(raw, target_fps)
    pose = normalize_pose(raw)
    strikes = heel_strikes(pose, target_fps)
    values = [gait["cadence_steps_per_min"], gait["stride_time_s"], gait["stance_swing_ratio"]]
    for upper, lower in ((("left_shoulder", "right_shoulder"), ("left_hip", "right_hip")),
                         (("left_ear", "right_ear"), ("left_shoulder", "right_shoulder"))):
        angle, present = _series(pose, upper, lower)
        values += _summary(angle, present) + list(_drift(angle, present, target_fps))
    legs, knees_mean, arms, knee_changes = {}, {}, {}, []
    trunk, trunk_present = _series(pose, ("left_shoulder", "right_shoulder"), ("left_hip", "right_hip"))
    for side in ("left", "right"):
        hip, hip_seen = _series(pose, (f"{side}_knee",), (f"{side}_hip",), hanging=True)
        _, knee_angle_present = _angle(pose, f"{side}_hip", f"{side}_knee", f"{side}_ankle")
        knee = 180.0 - _angle(pose, f"{side}_hip", f"{side}_knee", f"{side}_ankle")[0]
        seen = hip_seen & knee_angle_present
        legs[side] = _leg_cycles(hip, knee, seen, strikes[side])
        knees_mean[side] = float(knee[seen].mean()) if seen.any() else np.nan
        knee_changes.append(_drift(knee, seen, target_fps)[0])
        arm, arm_seen = _series(pose, (f"{side}_elbow",), (f"{side}_shoulder",), hanging=True)
        arm_seen &= trunk_present
        relative = (arm - trunk)[arm_seen]
        arms[side] = float(np.percentile(relative, 95) - np.percentile(relative, 5)) / 2 if len(relative) > 5 else np.nan
    steps = _steps(pose, strikes)
    for measure in ("hip_extension", "hip_range", "knee_peak"):
        values += _pair(legs["left"][measure], legs["right"][measure])
    values += _pair(knees_mean["left"], knees_mean["right"])
    values += _pair(arms["left"], arms["right"])
    values += _pair(steps["left"], steps["right"])
    values += [steps["decay"], float(np.mean(knee_changes)), float((pose[..., 2] >= MIN_SCORE).mean())]
    return np.asarray(values, np.float32)

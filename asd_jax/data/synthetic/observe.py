"""What a clinician sees in a walking clip: the visible gait signs, measured from the walker's own
motion (clean body keypoints in metres, before camera and pose-estimator artefacts).

Raters (raters.py) decide which regions to mark from these signs alone, so the diagnosis reaches an
annotation only through the kinematics it caused.
"""

from __future__ import annotations

import numpy as np

from asd_jax.base.skeleton import JOINT_INDEX
from asd_jax.data.synthetic.kinematics import heel_strike_frames

SIGNS: tuple[str, ...] = (
    "trunk_forward_deg",  # mean forward inclination of hip -> shoulder line from vertical
    "trunk_growth_deg",  # its increase from the first to the last third of the walk
    "head_forward_deg",  # shoulder -> ear line from vertical (trunk plus neck)
    "arm_swing_deg",  # half range of upper-arm swing relative to the trunk, mean of both arms
    "arm_asymmetry",  # |left - right| / mean swing
    "step_length",  # ankle-to-ankle distance at heel strike, in body heights
    "step_asymmetry",  # |left - right| / mean step length
    "step_decay",  # share of step length lost from the first to the second half of the walk
    "hip_extension_deg",  # peak hip extension (thigh behind vertical) of the worse leg
)


def _angle_from_vertical(vector: np.ndarray) -> np.ndarray:
    """Degrees, positive when the segment leans forward (+x)."""
    return np.degrees(np.arctan2(vector[..., 0], vector[..., 1]))


def _angle_below(vector: np.ndarray) -> np.ndarray:
    """Degrees of a hanging segment (thigh, upper arm) from the downward vertical, positive forward."""
    return np.degrees(np.arctan2(vector[..., 0], -vector[..., 1]))


def _mid(body: np.ndarray, left: str, right: str) -> np.ndarray:
    return 0.5 * (body[:, JOINT_INDEX[left]] + body[:, JOINT_INDEX[right]])


def _thirds_change(values: np.ndarray) -> float:
    third = max(1, len(values) // 3)
    return float(values[-third:].mean() - values[:third].mean())


def _asymmetry(left: float, right: float) -> float:
    mean = 0.5 * (left + right)
    return float(abs(left - right) / mean) if mean > 1e-9 else 0.0


def step_signs(body: np.ndarray, phases: dict[str, np.ndarray], height_m: float) -> dict[str, float]:
    """Step length, its left/right asymmetry and its decay over the walk, from heel strikes."""
    ankles = {"left": JOINT_INDEX["left_ankle"], "right": JOINT_INDEX["right_ankle"]}
    steps: dict[str, list[tuple[int, float]]] = {}
    for side, phase in phases.items():
        other = "right" if side == "left" else "left"
        frames = heel_strike_frames(phase)
        gap = np.abs(body[frames, ankles[side], 0] - body[frames, ankles[other], 0]) / height_m
        steps[side] = list(zip(frames.tolist(), gap.tolist(), strict=True))
    ordered = sorted(steps["left"] + steps["right"])
    lengths = np.array([g for _, g in ordered])
    if len(lengths) < 2:  # under a step seen: nothing to judge
        return {"step_length": float(lengths.mean()) if len(lengths) else float("nan"), "step_asymmetry": 0.0, "step_decay": 0.0}
    per_side = {side: np.mean([g for _, g in s]) if s else lengths.mean() for side, s in steps.items()}
    half = len(lengths) // 2
    first, second = lengths[:half].mean(), lengths[half:].mean()
    return {
        "step_length": float(lengths.mean()),
        "step_asymmetry": _asymmetry(per_side["left"], per_side["right"]),
        "step_decay": float((first - second) / first) if first > 1e-9 else 0.0,
    }


def observe(body: np.ndarray, phases: dict[str, np.ndarray], height_m: float) -> dict[str, float]:
    """The visible signs (SIGNS) of one walk: body [T, 17, 2] metres, x forward, y up; leg phases."""
    hips, shoulders = _mid(body, "left_hip", "right_hip"), _mid(body, "left_shoulder", "right_shoulder")
    ears = _mid(body, "left_ear", "right_ear")
    trunk = _angle_from_vertical(shoulders - hips)
    swings, hip_extension = {}, {}
    for side in ("left", "right"):
        upper_arm = body[:, JOINT_INDEX[f"{side}_elbow"]] - body[:, JOINT_INDEX[f"{side}_shoulder"]]
        arm = _angle_below(upper_arm) - trunk  # swing about the trunk line
        swings[side] = float(np.percentile(arm, 95) - np.percentile(arm, 5)) / 2
        thigh = body[:, JOINT_INDEX[f"{side}_knee"]] - body[:, JOINT_INDEX[f"{side}_hip"]]
        hip_extension[side] = float(-_angle_below(thigh).min())  # how far the thigh swings behind vertical
    return {
        "trunk_forward_deg": float(trunk.mean()),
        "trunk_growth_deg": _thirds_change(trunk),
        "head_forward_deg": float(_angle_from_vertical(ears - shoulders).mean()),
        "arm_swing_deg": float(np.mean(list(swings.values()))),
        "arm_asymmetry": _asymmetry(swings["left"], swings["right"]),
        **step_signs(body, phases, height_m),
        "hip_extension_deg": min(hip_extension.values()),
    }

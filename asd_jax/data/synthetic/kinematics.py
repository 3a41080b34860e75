"""A side-view (sagittal) kinematic walking model with COCO-17 output.

Angles are Fourier/Gaussian approximations of normative sagittal gait curves (Winter, *Biomechanics
and Motor Control of Human Movement*): hip flexion ~+30 deg at heel strike to ~-10 deg at terminal
stance; knee ~5 deg at heel strike, ~17 deg loading response, ~60 deg peak swing flexion. The two
legs are half a cycle apart. Segment lengths are anthropometric fractions of body height. The
pelvis height follows the lower (stance) foot, which gives the vertical oscillation, and its
forward motion follows the stance ankle so the planted foot does not slide.

Output coordinates are metres in a body frame: x forward, y up, ground at y = 0.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from asd_jax.base.skeleton import JOINT_INDEX, NUM_JOINTS

# Segment lengths as fractions of body height (Winter's anthropometric table).
THIGH, SHANK = 0.245, 0.246
TRUNK = 0.288  # hip joint to shoulder joint
UPPER_ARM, FOREARM = 0.186, 0.146
NECK = 0.09  # shoulder centre to ear
FACE = 0.07  # ear to nose
HALF_PELVIS_X, HALF_SHOULDER_X = 0.015, 0.02  # visible left/right offsets in a side view


@dataclasses.dataclass(frozen=True)
class WalkSpec:
    """One walk's gait parameters. `*_growth` terms grow linearly from start to end of the walk."""

    num_frames: int
    fps: float = 30.0
    height_m: float = 1.65
    cadence: float = 108.0  # steps per minute
    phase0: float = 0.0  # gait phase at frame 0, radians (0 = left heel strike)
    stride_scale: float = 1.0  # scales the hip flexion amplitude (stride length)
    stride_decay: float = 0.0  # fraction of stride lost by the end of the walk
    trunk_deg: float = 4.0  # forward trunk inclination from vertical
    trunk_growth_deg: float = 0.0
    knee_extra_deg: float = 0.0  # extra knee flexion throughout the cycle (crouch)
    knee_growth_deg: float = 0.0
    neck_deg: float = 12.0  # forward inclination of the neck from the trunk line
    neck_growth_deg: float = 0.0
    arm_swing_deg: float = 18.0
    hip_extension_loss_deg: float = 0.0  # on `affected_leg` only (0 left, 1 right)
    step_asymmetry: float = 0.0  # fraction of a half cycle the affected leg's step is shortened
    affected_leg: int = 0


def _bump(phase: np.ndarray, centre: float, width: float) -> np.ndarray:
    """A Gaussian bump on the circle (radians)."""
    d = np.angle(np.exp(1j * (phase - centre)))
    return np.exp(-0.5 * (d / width) ** 2)


STANCE_FRACTION = 0.6  # of the gait cycle, heel strike to toe-off


def stance_warp(phase: np.ndarray) -> np.ndarray:
    """Maps the gait phase so the hip extends (thigh moves back) over the first 60 % of a cycle."""
    cycles, within = np.divmod(phase, 2 * np.pi)
    split = 2 * np.pi * STANCE_FRACTION
    warped = np.where(within < split, within * np.pi / split, np.pi + (within - split) * np.pi / (2 * np.pi - split))
    return cycles * 2 * np.pi + warped


def leg_angles(phase: np.ndarray, spec: WalkSpec, progress: np.ndarray, affected: bool) -> tuple[np.ndarray, np.ndarray]:
    """Hip flexion and knee flexion in degrees over the gait phase."""
    amplitude = spec.stride_scale * (1.0 - spec.stride_decay * progress)
    hip_phase = stance_warp(phase)
    hip = 10.0 * amplitude + amplitude * (21.0 * np.cos(hip_phase) + 2.0 * np.cos(2 * hip_phase - 0.5))
    if affected:
        hip = hip + spec.hip_extension_loss_deg * np.clip(-np.cos(hip_phase), 0.0, None)
    two_pi = 2 * np.pi
    knee = (
        5.0
        + 12.0 * _bump(phase, 0.12 * two_pi, 0.07 * two_pi)
        + 55.0 * amplitude**0.5 * _bump(phase, 0.72 * two_pi, 0.1 * two_pi)
        + spec.knee_extra_deg
        + spec.knee_growth_deg * progress
    )
    return hip, knee


def gait_phases(spec: WalkSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Left and right leg phases and walk progress (0..1) per frame."""
    t = np.arange(spec.num_frames) / spec.fps
    stride_hz = spec.cadence / 120.0
    left = spec.phase0 + 2 * np.pi * stride_hz * t
    offset = np.pi * (1.0 - spec.step_asymmetry)
    right = left + offset if spec.affected_leg == 0 else left - offset
    progress = t / max(t[-1], 1e-6)
    return left, right, progress


def simulate_body(spec: WalkSpec) -> dict[str, np.ndarray]:
    """Clean COCO-17 keypoints [T, 17, 2] in metres plus the leg phases."""
    h = spec.height_m
    left_phase, right_phase, progress = gait_phases(spec)
    legs = {}
    for side, phase in (("left", left_phase), ("right", right_phase)):
        hip, knee = leg_angles(phase, spec, progress, affected=(side == "left") == (spec.affected_leg == 0))
        thigh = np.deg2rad(hip)
        shank = np.deg2rad(hip - knee)
        knee_rel = THIGH * h * np.stack([np.sin(thigh), -np.cos(thigh)], -1)
        ankle_rel = knee_rel + SHANK * h * np.stack([np.sin(shank), -np.cos(shank)], -1)
        legs[side] = (knee_rel, ankle_rel)

    # The pelvis rides on the lower foot; its forward motion keeps the planted ankle still.
    ankle_y = np.stack([legs["left"][1][:, 1], legs["right"][1][:, 1]], -1)
    pelvis_y = -ankle_y.min(-1)
    stance = ankle_y.argmin(-1)
    ankle_x = np.stack([legs["left"][1][:, 0], legs["right"][1][:, 0]], -1)
    stance_x = ankle_x[np.arange(spec.num_frames), stance]
    prev_stance_x = ankle_x[np.arange(1, spec.num_frames) - 1, stance[1:]]
    forward = np.concatenate([[0.0], np.maximum(prev_stance_x - stance_x[1:], 0.0)])
    pelvis = np.stack([np.cumsum(forward), pelvis_y], -1)

    keypoints = np.zeros((spec.num_frames, NUM_JOINTS, 2))
    rotation = np.sin(left_phase)  # pelvis and shoulders counter-rotate with the legs
    for side, sign in (("left", 1.0), ("right", -1.0)):
        hip_joint = pelvis + np.stack([sign * HALF_PELVIS_X * h * rotation, np.zeros_like(rotation)], -1)
        keypoints[:, JOINT_INDEX[f"{side}_hip"]] = hip_joint
        keypoints[:, JOINT_INDEX[f"{side}_knee"]] = hip_joint + legs[side][0]
        keypoints[:, JOINT_INDEX[f"{side}_ankle"]] = hip_joint + legs[side][1]

    left_phase_t = left_phase
    trunk = np.deg2rad(spec.trunk_deg + spec.trunk_growth_deg * progress + 1.5 * np.sin(2 * left_phase_t))
    shoulder_centre = pelvis + TRUNK * h * np.stack([np.sin(trunk), np.cos(trunk)], -1)
    for side, sign, contra in (("left", 1.0, right_phase), ("right", -1.0, left_phase)):
        shoulder = shoulder_centre - np.stack([sign * HALF_SHOULDER_X * h * rotation, np.zeros_like(rotation)], -1)
        upper = trunk * 0.5 + np.deg2rad(spec.arm_swing_deg) * np.cos(contra)
        fore = upper + np.deg2rad(20.0 + 10.0 * np.cos(contra))
        elbow = shoulder + UPPER_ARM * h * np.stack([np.sin(upper), -np.cos(upper)], -1)
        keypoints[:, JOINT_INDEX[f"{side}_shoulder"]] = shoulder
        keypoints[:, JOINT_INDEX[f"{side}_elbow"]] = elbow
        keypoints[:, JOINT_INDEX[f"{side}_wrist"]] = elbow + FOREARM * h * np.stack([np.sin(fore), -np.cos(fore)], -1)

    neck = trunk + np.deg2rad(spec.neck_deg + spec.neck_growth_deg * progress)
    ear_centre = shoulder_centre + NECK * h * np.stack([np.sin(neck), np.cos(neck)], -1)
    pitch = neck - np.deg2rad(10.0)  # face direction tilts down as the neck inclines
    nose = ear_centre + FACE * h * np.stack([np.cos(pitch), -np.sin(pitch)], -1)
    eye_centre = ear_centre + 0.75 * FACE * h * np.stack([np.cos(pitch - 0.35), -np.sin(pitch - 0.35)], -1)
    keypoints[:, JOINT_INDEX["nose"]] = nose
    for side, sign in (("left", 1.0), ("right", -1.0)):
        offset = np.array([0.0, 0.0]) + sign * np.array([0.01 * h, 0.0])
        keypoints[:, JOINT_INDEX[f"{side}_ear"]] = ear_centre + offset
        keypoints[:, JOINT_INDEX[f"{side}_eye"]] = eye_centre + offset
    return {"keypoints": keypoints, "left_phase": left_phase, "right_phase": right_phase}


def heel_strike_frames(phase: np.ndarray) -> np.ndarray:
    """Frames where a leg's phase passes a multiple of 2*pi (heel strike of that leg)."""
    cycles = np.floor(phase / (2 * np.pi))
    return np.flatnonzero(np.diff(cycles) > 0) + 1

"""Pure numpy transforms of one pose sequence [T, 17, 3] (x, y, score).

Normalisation makes clips from any camera comparable: y points up, the walker moves towards +x,
the mid-hip is the origin of every frame and the torso length is the unit. Joints whose score is
below `skeleton.MIN_SCORE` are "missing": their x and y are 0 and the model sees them through their score.
"""

from __future__ import annotations

import numpy as np

from asd_jax.base.skeleton import FLIP_PERMUTATION, LEFT_HIP, LEFT_SHOULDER, MIN_SCORE, RIGHT_HIP, RIGHT_SHOULDER


def resample_time(pose: np.ndarray, num_frames: int) -> np.ndarray:
    """Linear interpolation of every channel to `num_frames` frames spanning the same interval."""
    length = pose.shape[0]
    if length == num_frames:
        return pose
    if length == 1:
        return np.repeat(pose, num_frames, axis=0)
    positions = np.linspace(0.0, length - 1, num_frames)
    lower = np.floor(positions).astype(int)
    upper = np.minimum(lower + 1, length - 1)
    frac = (positions - lower)[:, None, None].astype(pose.dtype)
    return pose[lower] * (1 - frac) + pose[upper] * frac


def resample_fps(pose: np.ndarray, fps: float, target_fps: float) -> np.ndarray:
    """The clip as if filmed at `target_fps`."""
    if abs(fps - target_fps) < 1e-6:
        return pose
    duration = (pose.shape[0] - 1) / fps
    return resample_time(pose, max(1, int(round(duration * target_fps)) + 1))


def _pair_centre(pose: np.ndarray, a: int, b: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame mean of two joints where both are confident, and where that holds."""
    ok = (pose[:, a, 2] >= MIN_SCORE) & (pose[:, b, 2] >= MIN_SCORE)
    return 0.5 * (pose[:, a, :2] + pose[:, b, :2]), ok


def _fill_missing(values: np.ndarray, ok: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """Interpolates per-frame values over frames where `ok` is False (constant `fallback` if none)."""
    if not ok.any():
        return np.broadcast_to(fallback, values.shape).copy()
    frames = np.arange(len(values))
    return np.stack([np.interp(frames, frames[ok], values[ok, d]) for d in range(values.shape[1])], -1)


def normalize_pose(pose: np.ndarray) -> np.ndarray:
    """Mid-hip origin, torso-length unit, y up, walking towards +x; missing joints at 0. Never NaN."""
    pose = pose.astype(np.float32, copy=True)
    pose[..., 1] = -pose[..., 1]
    visible = pose[..., 2] >= MIN_SCORE
    fallback = pose[..., :2][visible].mean(0) if visible.any() else np.zeros(2, np.float32)
    hips, hips_ok = _pair_centre(pose, LEFT_HIP, RIGHT_HIP)
    centre = _fill_missing(hips, hips_ok, fallback)
    shoulders, shoulders_ok = _pair_centre(pose, LEFT_SHOULDER, RIGHT_SHOULDER)
    both = hips_ok & shoulders_ok
    if both.any():
        torso = float(np.median(np.linalg.norm(shoulders[both] - hips[both], axis=-1)))
    else:  # no torso seen: a third of the visible body's height is a fair unit
        ys = pose[..., 1][visible]
        torso = float(ys.max() - ys.min()) / 3 if visible.any() else 1.0
    torso = torso if torso > 1e-6 else 1.0
    xy = (pose[..., :2] - centre[:, None, :]) / torso
    if centre[-1, 0] < centre[0, 0]:
        xy[..., 0] = -xy[..., 0]
    xy = np.where(visible[..., None], xy, 0.0)
    return np.concatenate([xy, pose[..., 2:]], -1).astype(np.float32)


def flip_left_right(pose: np.ndarray) -> np.ndarray:
    """Mirror image: x negated and left/right joints swapped (before normalisation)."""
    flipped = pose[:, FLIP_PERMUTATION].copy()
    flipped[..., 0] = -flipped[..., 0]
    return flipped


def rotate_scale(pose: np.ndarray, angle_deg: float, scale: float) -> np.ndarray:
    """Rotates and scales a normalised pose about the origin; missing joints stay at 0."""
    angle = np.deg2rad(angle_deg)
    rotation = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]], np.float32)
    xy = pose[..., :2] @ rotation.T
    return np.concatenate([xy, pose[..., 2:]], -1).astype(np.float32)


def drop_joints(pose: np.ndarray, rate: float, rng: np.random.Generator) -> np.ndarray:
    """Marks a random `rate` of joints missing (score and coordinates 0)."""
    keep = (rng.random(pose.shape[:2]) >= rate)[..., None]
    return pose * keep.astype(pose.dtype)


def crop_window(pose: np.ndarray, start: int, length: int) -> np.ndarray:
    """Frames [start, start+length), edge-padded when the clip is shorter."""
    window = pose[start : start + length]
    if window.shape[0] < length:
        window = np.concatenate([window, np.repeat(window[-1:], length - window.shape[0], axis=0)])
    return window


def eval_window_starts(num_frames: int, window: int, stride: int) -> np.ndarray:
    """Starts of windows covering every frame; the last window ends at the clip's end."""
    if num_frames <= window:
        return np.zeros(1, np.int64)
    starts = np.arange(0, num_frames - window + 1, stride)
    if starts[-1] + window < num_frames:
        starts = np.append(starts, num_frames - window)
    return starts

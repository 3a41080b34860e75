"""One clip from detector keypoints to model windows, and window logits back to probabilities.

The ONE home of this arithmetic: the JAX pipeline (asd_jax/data: user_folder, transforms,
input_pipeline; asd_jax/evaluation/aggregate.py) and the deployable predictor that
`--mode=export` writes (export/asd_predictor.py carries a copy of this module) both run it, so a
deployed model sees exactly the windows that training, evaluation and `--mode=predict` saw.
Numpy only (`merge_class_logits` also runs on jax.numpy).

Steps, in order: `stored_pose` (most confident person, x and y over the longer image side) ->
`resample_fps` (to the run's `data.fps`) -> `eval_window_starts` (windows covering every frame) ->
`eval_window` (crop, optionally mirror, `normalize_pose`) -> the model -> `merge_class_logits` (when
it was trained on finer classes than it reports) -> `clip_probabilities`
(softmax of the mean window logits) -> `mean_probabilities` (a patient: mean over clips).
"""

from __future__ import annotations

import numpy as np

from asd_jax.base.skeleton import FLIP_PERMUTATION, LEFT_HIP, LEFT_SHOULDER, MIN_SCORE, RIGHT_HIP, RIGHT_SHOULDER

NORMALISED_LIMIT = 1.5  # coordinates all within +-1.5 are taken as 0-1 per image axis, larger as pixels


def stored_pose(keypoint: np.ndarray, score: np.ndarray, img_shape: tuple[float, float] | None) -> np.ndarray:
    """Detector output -> the [T, 17, 3] pose a clip is stored as: x, y over the longer image side, score.

    `keypoint` [M, T, 17, 2] (or [T, 17, 2]) in pixels or 0-1 per axis, `score` [M, T, 17] (or
    [T, 17]); of M persons the most confident one is kept. `img_shape` (H, W) rescales 0-1
    coordinates to pixels (keeping the aspect ratio) and divides by the longer side; without it,
    pixel coordinates are kept as they are (normalize_pose removes the scale) and 0-1 ones are an
    error. Joints with score 0 get x = y = 0. Shapes are the caller's to validate.
    """
    keypoint, score = np.asarray(keypoint, np.float32), np.asarray(score, np.float32)
    if keypoint.ndim == 3:  # one person without the M axis
        keypoint, score = keypoint[None], score[None]
    person = int(np.argmax(score.mean(axis=(1, 2))))
    xy, s = keypoint[person], np.clip(score[person], 0.0, 1.0)
    normalised = np.abs(xy).max() <= NORMALISED_LIMIT
    if img_shape is None:
        if normalised:
            raise ValueError("keypoints look 0-1 normalised per image axis: give img_shape (height, width) to keep their aspect ratio")
    else:
        height, width = (float(v) for v in img_shape[:2])
        if normalised:  # 0-1 per axis -> pixels
            xy = xy * np.array([width, height], np.float32)
        xy = xy / max(height, width)
    xy = np.where(s[..., None] > 0, xy, 0.0)
    return np.concatenate([xy, s[..., None]], axis=-1).astype(np.float32)


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


def resampled_length(num_frames: int, fps: float, target_fps: float) -> int:
    """Frames of a clip of `num_frames` at `fps` once resampled to `target_fps` (same duration)."""
    if abs(fps - target_fps) < 1e-6:
        return int(num_frames)
    return max(1, int(round((num_frames - 1) / fps * target_fps)) + 1)


def resample_fps(pose: np.ndarray, fps: float, target_fps: float) -> np.ndarray:
    """The clip as if filmed at `target_fps`."""
    if abs(fps - target_fps) < 1e-6:
        return pose
    return resample_time(pose, resampled_length(pose.shape[0], fps, target_fps))


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
    """Mid-hip origin, torso-length unit, y up, walking towards +x; missing joints at 0. Never NaN.

    Joints whose score is below MIN_SCORE are "missing": their x and y are 0 and the model sees
    them through their score.
    """
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


# How a window reaches past the clip's end: 'edge' repeats the last frame (the walker stands still),
# 'missing' adds frames where no joint was seen (score 0), which pooling over present frames ignores.
PADS = ("edge", "missing")


def crop_window(pose: np.ndarray, start: int, length: int, pad: str = "edge") -> np.ndarray:
    """Frames [start, start+length), padded by `pad` when the clip is shorter."""
    window = pose[start : start + length]
    if window.shape[0] < length:
        filler = window[-1:] if pad == "edge" else np.zeros_like(window[:1])
        window = np.concatenate([window, np.repeat(filler, length - window.shape[0], axis=0)])
    return window


def eval_window_starts(num_frames: int, window: int, stride: int) -> np.ndarray:
    """Starts of windows covering every frame; the last window ends at the clip's end."""
    if num_frames <= window:
        return np.zeros(1, np.int64)
    starts = np.arange(0, num_frames - window + 1, stride)
    if starts[-1] + window < num_frames:
        starts = np.append(starts, num_frames - window)
    return starts


def eval_window(pose: np.ndarray, start: int, window: int, mirrored: bool, pad: str = "edge") -> np.ndarray:
    """One evaluation window of a clip already at the target fps: cropped, mirrored if asked, normalised."""
    pose = crop_window(pose, int(start), window, pad)
    return normalize_pose(flip_left_right(pose) if mirrored else pose)


def clip_windows(
    pose: np.ndarray, fps: float, *, target_fps: float, window: int, stride: int, test_flip: bool, pad: str = "edge"
) -> np.ndarray:
    """[W, window, 17, 3] every evaluation window of a stored pose, in the order the evaluation
    pipeline scores them (each start, then its mirror image when `test_flip`)."""
    pose = resample_fps(np.asarray(pose, np.float32), float(fps), target_fps)
    mirrors = (False, True) if test_flip else (False,)
    starts = eval_window_starts(pose.shape[0], window, stride)
    return np.stack([eval_window(pose, start, window, mirrored, pad) for start in starts for mirrored in mirrors])


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, in float64."""
    shifted = np.asarray(logits, np.float64) - np.max(logits, axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def merge_class_logits(logits, groups: tuple[int, ...], xp=np):
    """Logits over training classes [..., F] -> logits over the reported classes [..., K]:
    log of the summed exp within each group (`base.labels.class_groups`), so the softmax of the
    result is the summed probability of each reported class's training classes. Identity when
    `groups` is (). `xp` is numpy or jax.numpy (the same arithmetic traced inside a JAX step)."""
    if not groups:
        return logits
    members = np.eye(max(groups) + 1, dtype=np.float32)[list(groups)]  # [F, K]
    top = xp.max(logits, axis=-1, keepdims=True)
    summed = xp.exp(logits - top) @ members.astype(logits.dtype)
    return xp.log(xp.maximum(summed, np.finfo(np.float32).tiny)) + top


def clip_probabilities(window_logits: np.ndarray) -> np.ndarray:
    """A clip's class probabilities: the softmax of the MEAN LOGITS of its windows ([W, C] -> [C])."""
    return softmax(np.asarray(window_logits, np.float64).mean(axis=0))


def mean_probabilities(clip_probs: np.ndarray) -> np.ndarray:
    """A patient's class probabilities: the MEAN PROBABILITY of their clips ([N, C] -> [C])."""
    return np.asarray(clip_probs, np.float64).mean(axis=0)

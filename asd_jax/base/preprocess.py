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

import functools

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


@functools.lru_cache(maxsize=4096)
def _resampling(length: int, num_frames: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lower and upper source frames and the upper one's weight for each of `num_frames` frames
    spanning `length` (training asks for the same few pairs tens of thousands of times)."""
    positions = np.linspace(0.0, length - 1, num_frames)
    lower = np.floor(positions).astype(int)
    upper = np.minimum(lower + 1, length - 1)
    weights = (lower, upper, (positions - lower)[:, None, None])
    for shared in weights:
        shared.setflags(write=False)
    return weights


def resample_time(pose: np.ndarray, num_frames: int) -> np.ndarray:
    """Linear interpolation of every channel to `num_frames` frames spanning the same interval."""
    length = pose.shape[0]
    if length == num_frames:
        return pose
    if length == 1:
        return np.repeat(pose, num_frames, axis=0)
    lower, upper, frac = _resampling(length, num_frames)
    frac = frac.astype(pose.dtype)
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
    ok = (pose[..., a, 2] >= MIN_SCORE) & (pose[..., b, 2] >= MIN_SCORE)
    return 0.5 * (pose[..., a, :2] + pose[..., b, :2]), ok


def _fill_missing(values: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """[B, T, D] -> float64 values interpolated over the frames where `ok` [B, T] is False: np.interp's
    arithmetic, one sequence at a time in one pass (constant before the first and after the last
    ok frame). Meaningless for a sequence without an ok frame, which the caller replaces."""
    length = values.shape[1]
    frames = np.arange(length)
    before = np.maximum.accumulate(np.where(ok, frames, -1), axis=1)  # last ok frame <= t, -1 if none
    after = np.minimum.accumulate(np.where(ok, frames, length)[:, ::-1], axis=1)[:, ::-1]  # first >= t
    values = values.astype(np.float64)
    low = np.take_along_axis(values, np.maximum(before, 0)[..., None], axis=1)
    high = np.take_along_axis(values, np.minimum(after, length - 1)[..., None], axis=1)
    slope = (high - low) / np.maximum(after - before, 1)[..., None]
    between = slope * (frames - before)[..., None] + low
    filled = np.where((before < 0)[..., None], high, np.where((after == length)[..., None], low, between))
    return np.where(ok[..., None], values, filled)


def _median_length(lengths: np.ndarray, counted: np.ndarray) -> np.ndarray:
    """[B] float32 median of each row's counted (finite) lengths, as np.median of them gives it: the
    mean of the two middle values (one when the count is odd); inf where a row counts none."""
    count = counted.sum(-1)
    ordered = np.sort(np.where(counted, lengths, np.inf), axis=-1)
    rows = np.arange(len(ordered))
    lower, upper = ordered[rows, np.maximum(count - 1, 0) // 2], ordered[rows, count // 2]
    return (lower + upper) / np.float32(2)


def normalize_pose(pose: np.ndarray) -> np.ndarray:
    """Mid-hip origin, torso-length unit, y up, walking towards +x; missing joints at 0. Never NaN.

    One sequence [T, 17, 3], or a batch [B, T, 17, 3] (what the training pipeline hands over at
    once) whose sequences are each normalised on their own, exactly as one at a time.
    Joints whose score is below MIN_SCORE are "missing": their x and y are 0 and the model sees
    them through their score.
    """
    if pose.ndim == 3:
        return normalize_pose(pose[None])[0]
    pose = pose.astype(np.float32, copy=True)
    pose[..., 1] = -pose[..., 1]
    visible = pose[..., 2] >= MIN_SCORE
    hips, hips_ok = _pair_centre(pose, LEFT_HIP, RIGHT_HIP)
    shoulders, shoulders_ok = _pair_centre(pose, LEFT_SHOULDER, RIGHT_SHOULDER)
    both = hips_ok & shoulders_ok
    torso = _median_length(np.linalg.norm(shoulders - hips, axis=-1), both).astype(np.float64)
    for b in np.flatnonzero(~both.any(-1)):  # no torso seen: a third of the visible body's height is a fair unit
        ys = pose[b, ..., 1][visible[b]]
        torso[b] = float(ys.max() - ys.min()) / 3 if visible[b].any() else 1.0
    torso = np.where(torso > 1e-6, torso, 1.0)
    centre = _fill_missing(hips, hips_ok)  # the hips' mid-point, interpolated where a hip is missing
    xy = pose[..., :2].astype(np.float64)
    xy -= centre[..., None, :]
    xy /= torso[:, None, None, None]
    for b in np.flatnonzero(~hips_ok.any(-1)):  # no hips seen: the visible joints' mean, in float32
        fallback = pose[b, ..., :2][visible[b]].mean(0) if visible[b].any() else np.zeros(2, np.float32)
        xy[b] = (pose[b, ..., :2] - fallback) / np.float32(torso[b])
        centre[b] = fallback
    backwards = centre[:, -1, 0] < centre[:, 0, 0]
    xy[backwards, ..., 0] = -xy[backwards, ..., 0]
    np.copyto(xy, 0.0, where=~visible[..., None])
    normalised = np.empty_like(pose)
    normalised[..., :2], normalised[..., 2:] = xy, pose[..., 2:]
    return normalised


def flip_left_right(pose: np.ndarray) -> np.ndarray:
    """Mirror image: x negated and left/right joints swapped (before normalisation); [..., 17, 3]."""
    flipped = pose[..., FLIP_PERMUTATION, :]
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

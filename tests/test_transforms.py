"""Pose transforms: invariances, identities and robustness."""

from __future__ import annotations

import numpy as np
import pytest

from asd_jax.data import transforms
from asd_jax.data.synthetic import CohortParams, WalkSpec, simulate_walk


def walk(num_frames=90, seed=0):
    w = simulate_walk(WalkSpec(num_frames=num_frames), CohortParams(), np.random.default_rng(seed))
    return np.concatenate([w["keypoints"] / 1920, w["scores"][..., None]], -1).astype(np.float32)


def test_flip_twice_is_the_identity_bitwise():
    pose = walk()
    np.testing.assert_array_equal(transforms.flip_left_right(transforms.flip_left_right(pose)), pose)


def test_normalisation_ignores_where_and_how_big_the_walker_is():
    pose = walk()
    moved = pose.copy()
    moved[..., :2] = moved[..., :2] * 1.7 + np.array([0.3, -0.2], np.float32)
    np.testing.assert_allclose(transforms.normalize_pose(moved), transforms.normalize_pose(pose), atol=1e-5)


def test_walking_direction_is_canonical():
    pose = walk()
    mirrored = pose.copy()
    mirrored[..., 0] = 1.0 - mirrored[..., 0]
    np.testing.assert_allclose(transforms.normalize_pose(mirrored), transforms.normalize_pose(pose), atol=1e-5)


def test_missing_hips_and_empty_frames_never_give_nan():
    pose = walk()
    pose[10:30, 11:13, 2] = 0.0  # hips lost for 20 frames
    pose[40] = 0.0  # an empty frame
    out = transforms.normalize_pose(pose)
    assert np.isfinite(out).all()
    assert (out[40, :, :2] == 0).all()
    assert np.isfinite(transforms.normalize_pose(np.zeros((5, 17, 3), np.float32))).all()


def test_eval_windows_cover_every_frame():
    for frames in (10, 64, 65, 100, 301):
        starts = transforms.eval_window_starts(frames, 64, 32)
        covered = np.zeros(max(frames, 64), bool)
        for s in starts:
            covered[s : s + 64] = True
        assert covered[:frames].all() and starts.max() + 64 <= max(frames, 64)


def test_crop_pads_short_clips_with_the_last_frame_and_resampling_keeps_ends():
    pose = walk(20)
    window = transforms.crop_window(pose, 0, 32)
    assert window.shape == (32, 17, 3)
    np.testing.assert_array_equal(window[25], pose[-1])
    resampled = transforms.resample_fps(pose, 30.0, 15.0)
    assert resampled.shape[0] == 11
    np.testing.assert_allclose(resampled[[0, -1]], pose[[0, -1]])


def test_joint_dropout_rate():
    pose = np.ones((100, 17, 3), np.float32)
    dropped = transforms.drop_joints(pose, 0.2, np.random.default_rng(0))
    assert dropped[..., 2].mean() == pytest.approx(0.8, abs=0.03)
    assert ((dropped[..., 2] == 0) == (dropped[..., 0] == 0)).all()

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
    dropped = transforms.drop_joints(pose, transforms.kept_joints(100, 17, 0.2, np.random.default_rng(0)))
    assert dropped[..., 2].mean() == pytest.approx(0.8, abs=0.03)
    assert ((dropped[..., 2] == 0) == (dropped[..., 0] == 0)).all()


def awkward_walks(seed: int) -> np.ndarray:
    """[8, 48, 17, 3] walks a batch must not mix up: hips lost for a stretch, at the start and at
    the end and between, never seen, no torso at all, walking the other way, an empty window, joints dropped."""
    rng = np.random.default_rng(seed)
    batch = np.stack([walk(48, seed=seed * 8 + i) for i in range(8)])
    batch[0, 10:30, 11:13, 2] = 0.0
    batch[1, :5, 11, 2] = batch[1, 20:26, 11, 2] = batch[1, -7:, 12, 2] = 0.0
    batch[2, :, 11:13, 2] = 0.0
    batch[3, :, 5:7, 2] = batch[3, :, 11, 2] = 0.0
    batch[4, :, :, 0] = 1.0 - batch[4, :, :, 0]
    batch[5] = 0.0
    batch[6:, ..., 2] *= rng.random((2, 48, 17)) > 0.3
    return batch


@pytest.mark.parametrize("seed", [0, 1])
def test_a_batch_is_transformed_bit_for_bit_as_each_walk_alone(seed):
    """The training pipeline mirrors, normalises and rotates a whole batch at once: every walk must
    come out exactly as when it is transformed on its own (what evaluation and export do)."""
    batch = awkward_walks(seed)
    angles, scales = np.linspace(-5, 5, 8), np.linspace(0.9, 1.1, 8)
    alone = np.stack([transforms.normalize_pose(transforms.flip_left_right(walk)) for walk in batch])
    together = transforms.normalize_pose(transforms.flip_left_right(batch))
    assert together.tobytes() == alone.tobytes()
    rotated = np.stack([transforms.rotate_scale(w, float(a), float(s)) for w, a, s in zip(alone, angles, scales)])
    assert transforms.rotate_scale(together, angles, scales).tobytes() == rotated.tobytes()


def test_missing_hips_are_interpolated_as_np_interp_does():
    """Hips lost at the start, in the middle and at the end of a window: the origin holds the nearest
    seen mid-hip, between seen frames np.interp's line; the unit is np.median of the torso over fully
    seen frames; all in float64 before the float32 result. Bit for bit, as the pipeline has always
    computed it (every finished run replays exactly)."""
    pose = awkward_walks(0)[1]
    up = pose.copy()
    up[..., 1] = -up[..., 1]
    seen = up[..., 2] >= transforms.MIN_SCORE
    hips_seen = seen[:, 11] & seen[:, 12]
    hips, shoulders = 0.5 * (up[:, 11, :2] + up[:, 12, :2]), 0.5 * (up[:, 5, :2] + up[:, 6, :2])
    frames = np.arange(len(pose))
    centre = np.stack([np.interp(frames, frames[hips_seen], hips[hips_seen, d]) for d in range(2)], -1)
    both = hips_seen & seen[:, 5] & seen[:, 6]
    torso = float(np.median(np.linalg.norm(shoulders[both] - hips[both], axis=-1)))
    xy = (up[..., :2] - centre[:, None, :]) / torso
    if centre[-1, 0] < centre[0, 0]:
        xy[..., 0] = -xy[..., 0]
    expected = np.concatenate([np.where(seen[..., None], xy, 0.0), up[..., 2:]], -1).astype(np.float32)
    assert not hips_seen[0] and not hips_seen[-1] and not hips_seen[20:26].any() and hips_seen.mean() > 0.6
    assert transforms.normalize_pose(pose).tobytes() == expected.tobytes()


def test_mixup_blends_known_examples_by_hand():
    """Two walkers at x = 0 and x = 4, blended a quarter and three quarters: x = 3 and x = 1; a joint
    missing in either pose is missing in both blends, an unmeasured gait feature stays unmeasured,
    and an example whose partner is not in the batch is left as it is."""
    assert transforms.mixup_partners(np.array([6, 7, 8])).tolist() == [1, 0, 2]
    pose = np.ones((3, 2, 17, 3), np.float32)
    pose[..., 0] = np.array([0.0, 4.0, 9.0])[:, None, None]
    pose[1, 1, 5] = 0.0  # joint 5 unseen in frame 1 of the second walker
    arrays = {
        "pose": pose,
        "prior": np.eye(5, dtype=np.float32)[:3],
        "features": np.array([[2.0, 1.0], [6.0, np.nan], [7.0, 7.0]], np.float32),
        "label": np.array([0, 2, 1], np.int32),
    }
    mixed = transforms.mix_examples(arrays, np.array([1, 0, 2]), np.array([0.25, 0.25, 0.6]))
    assert mixed["pose"][0, 0, 0, 0] == 3.0 and mixed["pose"][1, 0, 0, 0] == 1.0 and mixed["pose"][2, 0, 0, 0] == 9.0
    assert (mixed["pose"][:2, 1, 5] == 0).all() and (mixed["pose"][:2, 1, 4] != 0).all()
    np.testing.assert_allclose(mixed["prior"][0], [0.25, 0.75, 0, 0, 0])
    np.testing.assert_allclose(mixed["features"][:, 0], [5.0, 3.0, 7.0])
    assert np.isnan(mixed["features"][:2, 1]).all() and mixed["features"][2, 1] == 7.0
    assert mixed["mix_label"].tolist() == [2, 0, 1] and mixed["mix_weight"].tolist() == [0.25, 0.25, 1.0]

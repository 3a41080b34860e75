"""Input representations checked against values computed by hand on a pose we know."""

from __future__ import annotations

import numpy as np
import pytest

from asd_jax.base.architecture import MOTION_LAG, NUM_FEATURES, SEGMENTS, input_channels
from asd_jax.base.errors import ConfigError
from asd_jax.base.skeleton import JOINT_INDEX
from asd_jax.models.inputs import frame_inputs, joint_inputs, model_inputs


def known_pose(frames: int = 12) -> np.ndarray:
    """One walker: trunk leaning 30 degrees forward, left thigh 20 degrees forward, the left ankle
    moving forward 0.05 per frame, every joint seen except the right wrist."""
    pose = np.zeros((1, frames, 17, 3), np.float32)
    pose[..., 2] = 0.9
    lean = np.radians(30.0)
    for side, dx in (("left", 0.05), ("right", -0.05)):
        pose[0, :, JOINT_INDEX[f"{side}_hip"], :2] = (dx, 0.0)
        pose[0, :, JOINT_INDEX[f"{side}_shoulder"], :2] = (dx + np.sin(lean), np.cos(lean))
    thigh = np.radians(20.0)
    pose[0, :, JOINT_INDEX["left_knee"], :2] = (0.05 + np.sin(thigh), -np.cos(thigh))
    pose[0, :, JOINT_INDEX["left_ankle"], 0] = 0.05 * np.arange(frames)
    pose[0, :, JOINT_INDEX["left_ankle"], 1] = -2.0
    pose[0, :, JOINT_INDEX["right_wrist"], 2] = 0.1  # missing
    pose[0, :, JOINT_INDEX["right_knee"], 2] = 0.1  # missing: no right thigh or shank angle
    return pose


def test_channel_counts_follow_the_spec():
    assert input_channels("joints") == (NUM_FEATURES, 0)
    assert input_channels("joints,bones,motion,angles") == (NUM_FEATURES + 4, 2 * len(SEGMENTS))
    assert input_channels("angles") == (0, 2 * len(SEGMENTS))
    with pytest.raises(ConfigError, match="model.inputs=''"):
        input_channels("")
    with pytest.raises(ConfigError, match="model.inputs='joints,speed'"):
        input_channels("joints,speed")


def test_segment_angles_match_the_known_pose():
    angles = np.asarray(frame_inputs(known_pose(), "joints,angles"))[0]
    names = [name for name, *_ in SEGMENTS]
    np.testing.assert_allclose(angles[:, names.index("trunk")], np.radians(30.0), atol=1e-6)
    np.testing.assert_allclose(angles[:, names.index("left_thigh")], np.radians(20.0), atol=1e-6)
    knee = known_pose()[0, 0, JOINT_INDEX["left_knee"], :2]
    ankle_x = 0.05 * np.arange(12)
    shank = np.arctan2(ankle_x - knee[0], -(-2.0 - knee[1]))  # hanging: from the downward vertical
    np.testing.assert_allclose(angles[:, names.index("left_shank")], shank, atol=1e-6)
    changes = angles[:, len(SEGMENTS) :]
    np.testing.assert_allclose(changes[MOTION_LAG:, names.index("left_shank")], shank[MOTION_LAG:] - shank[:-MOTION_LAG], atol=1e-6)
    moving = names.index("left_shank")
    np.testing.assert_array_equal(np.delete(changes, moving, axis=1), 0.0)  # every other segment is still
    for missing in ("right_thigh", "right_shank"):
        np.testing.assert_array_equal(angles[:, names.index(missing)], 0.0)


def test_bones_and_motion_match_the_known_pose():
    pose = known_pose()
    channels = np.asarray(joint_inputs(pose, "joints,bones,motion"))[0]
    knee, hip, ankle, wrist = (JOINT_INDEX[j] for j in ("left_knee", "left_hip", "left_ankle", "right_wrist"))
    np.testing.assert_allclose(channels[:, knee, NUM_FEATURES : NUM_FEATURES + 2], pose[0, :, knee, :2] - pose[0, :, hip, :2], atol=1e-6)
    motion = channels[:, ankle, NUM_FEATURES + 2 :]
    np.testing.assert_allclose(motion[MOTION_LAG:, 0], 0.05 * MOTION_LAG, atol=1e-6)
    np.testing.assert_array_equal(motion[:MOTION_LAG], 0.0)
    np.testing.assert_allclose(channels[1:, ankle, 2], 0.05, atol=1e-6)  # frame-to-frame velocity
    np.testing.assert_array_equal(channels[:, wrist, NUM_FEATURES:], 0.0)  # a missing joint has no bone, no motion


def test_model_inputs_flatten_joints_then_frames():
    pose = known_pose()
    flat = np.asarray(model_inputs(pose, "joints,bones,angles"))
    per_joint, per_frame = input_channels("joints,bones,angles")
    assert flat.shape == (1, pose.shape[1], 17 * per_joint + per_frame)
    np.testing.assert_array_equal(
        flat[..., : 17 * per_joint].reshape(1, -1, 17, per_joint), np.asarray(joint_inputs(pose, "joints,bones,angles"))
    )

"""The COCO-17 skeleton and the clinicians' regions of interest.

Region names and joints are exactly those of the reference code base, because the raters'
annotation files (`doctor*.csv`) name regions with them.
"""

from __future__ import annotations

import numpy as np

from asd_jax.base.errors import ConfigError

# A joint whose detector score is below this is "missing": the pipeline zeroes its coordinates.
MIN_SCORE = 0.3

JOINT_NAMES: tuple[str, ...] = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)
NUM_JOINTS = len(JOINT_NAMES)
JOINT_INDEX: dict[str, int] = {name: i for i, name in enumerate(JOINT_NAMES)}

# Pairs swapped by a horizontal flip (left <-> right).
FLIP_PAIRS: tuple[tuple[int, int], ...] = ((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16))


def _flip_permutation() -> np.ndarray:
    perm = np.arange(NUM_JOINTS)
    for left, right in FLIP_PAIRS:
        perm[left], perm[right] = right, left
    return perm


# `pose[..., FLIP_PERMUTATION, :]` relabels left as right and vice versa.
FLIP_PERMUTATION: np.ndarray = _flip_permutation()

# Limb segments of the COCO-17 graph (the edges ST-GCN and the skeleton plots use).
BONES: tuple[tuple[int, int], ...] = (
    (0, 1), (0, 2), (1, 3), (2, 4),
    (5, 6), (5, 7), (7, 9), (6, 8), (8, 10),
    (5, 11), (6, 12), (11, 12),
    (11, 13), (13, 15), (12, 14), (14, 16),
)

# Clinical regions of interest, in the reference's names and order.
REGIONS: dict[str, tuple[int, ...]] = {
    "head": (0, 1, 2, 3, 4),
    "shoulder": (5, 6),
    "wrist": (9, 10),
    "lumbar_pelvis": (11, 12),
    "foot": (15, 16),
}
REGION_NAMES: tuple[str, ...] = tuple(REGIONS)
NUM_REGIONS = len(REGION_NAMES)

LEFT_HIP, RIGHT_HIP = JOINT_INDEX["left_hip"], JOINT_INDEX["right_hip"]
LEFT_SHOULDER, RIGHT_SHOULDER = JOINT_INDEX["left_shoulder"], JOINT_INDEX["right_shoulder"]
LEFT_ANKLE, RIGHT_ANKLE = JOINT_INDEX["left_ankle"], JOINT_INDEX["right_ankle"]


def region_membership() -> np.ndarray:
    """A [regions, joints] 0/1 matrix; row r averages the joints of region r when normalised."""
    member = np.zeros((NUM_REGIONS, NUM_JOINTS), np.float32)
    for r, joints in enumerate(REGIONS.values()):
        member[r, list(joints)] = 1.0
    return member


def region_index(name: str) -> int:
    """Index of a region by its reference name; a clear error for anything else."""
    try:
        return REGION_NAMES.index(name)
    except ValueError:
        raise ConfigError(f"unknown region {name!r}; expected one of {', '.join(REGION_NAMES)}") from None


def default_prior(spec: str) -> np.ndarray:
    """The prior of a clip no rater annotated: 'uniform' or all mass on one named region."""
    if spec == "uniform":
        return np.full(NUM_REGIONS, 1.0 / NUM_REGIONS, np.float32)
    if spec not in REGION_NAMES:
        raise ConfigError(f"data.default_prior={spec!r}: expected 'uniform' or one of {', '.join(REGION_NAMES)}")
    prior = np.zeros(NUM_REGIONS, np.float32)
    prior[region_index(spec)] = 1.0
    return prior


def neutral_pose() -> np.ndarray:
    """[17, 2] an upright, still standing pose in the normalised frame (mid-hip origin, torso-length
    unit, y up): the reference that integrated gradients measure a walk against."""
    xy = {
        "nose": (0.12, 1.30), "left_eye": (0.09, 1.35), "right_eye": (0.09, 1.35), "left_ear": (0.0, 1.32), "right_ear": (0.0, 1.32),
        "left_shoulder": (0.05, 1.0), "right_shoulder": (-0.05, 1.0), "left_elbow": (0.05, 0.36), "right_elbow": (-0.05, 0.36),
        "left_wrist": (0.12, -0.12), "right_wrist": (-0.02, -0.12), "left_hip": (0.04, 0.0), "right_hip": (-0.04, 0.0),
        "left_knee": (0.06, -0.85), "right_knee": (-0.04, -0.85), "left_ankle": (0.04, -1.7), "right_ankle": (-0.06, -1.7),
    }
    return np.array([xy[name] for name in JOINT_NAMES], np.float32)

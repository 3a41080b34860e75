"""Numpy-only facts shared by the Flax models and their PyTorch twins, so both compute the same.

Constants of the model input and of the layers, the fixed position codes, the ST-GCN graph and
block plan, the PhaseMix step cuts, and `model_kwargs`: the one rule that turns `config.model`
into constructor arguments for a Flax model and its twin alike.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import numpy as np

from asd_jax.base.errors import ConfigError
from asd_jax.base.skeleton import BONES, NUM_JOINTS

DATA_AXIS = "data"  # the mesh / pmap axis that data-parallel collectives (e.g. sync BatchNorm) use
NUM_FEATURES = 5  # per joint and frame of the "joints" input: x, y, vx, vy, score

# Input representations a keypoint model can be given (`config.model.inputs`, comma-separated):
# per joint, "joints" (x, y, frame-to-frame velocity, score), "bones" (vector from the parent
# joint) and "motion" (displacement over MOTION_LAG frames); per frame, "angles" (the clinical
# segment angles of SEGMENTS and their change over MOTION_LAG frames).
JOINT_INPUTS = {"joints": NUM_FEATURES, "bones": 2, "motion": 2}
FRAME_INPUTS = {"angles": 0}  # filled below: 2 per segment
MOTION_LAG = 4  # frames (~0.13 s at 30 fps): a second, coarser time scale of motion
# COCO-17 parents, rooted at the hips (each hip is the other's parent).
BONE_PARENTS = (5, 0, 0, 1, 2, 11, 12, 5, 6, 7, 8, 12, 11, 11, 12, 13, 14)
# (name, lower joints, upper joints, hanging): a segment's angle from the vertical, positive
# forward; upward segments from the upward vertical, hanging ones from the downward vertical.
SEGMENTS: tuple[tuple[str, tuple[int, ...], tuple[int, ...], bool], ...] = (
    ("trunk", (11, 12), (5, 6), False),
    ("head", (5, 6), (3, 4), False),
    ("left_thigh", (11,), (13,), True),
    ("right_thigh", (12,), (14,), True),
    ("left_shank", (13,), (15,), True),
    ("right_shank", (14,), (16,), True),
    ("left_upper_arm", (5,), (7,), True),
    ("right_upper_arm", (6,), (8,), True),
)
FRAME_INPUTS["angles"] = 2 * len(SEGMENTS)


def region_inputs(inputs: str) -> str:
    """The per-joint part of `inputs`, always with "joints": what crossattn's region tokens pool."""
    names = [n.strip() for n in inputs.split(",") if n.strip()]
    return ",".join(["joints"] + [n for n in names if n in JOINT_INPUTS and n != "joints"])


def input_channels(inputs: str) -> tuple[int, int]:
    """(channels per joint, channels per frame) of an `inputs` spec; unknown names are a ConfigError."""
    names = [n.strip() for n in inputs.split(",") if n.strip()]
    unknown = sorted(set(names) - set(JOINT_INPUTS) - set(FRAME_INPUTS))
    if unknown or not names:
        raise ConfigError(f"model.inputs={inputs!r}: expected a comma-separated subset of {[*JOINT_INPUTS, *FRAME_INPUTS]}")
    return sum(JOINT_INPUTS[n] for n in names if n in JOINT_INPUTS), sum(FRAME_INPUTS[n] for n in names if n in FRAME_INPUTS)
PRIOR_EPS = 1e-3  # log(prior + PRIOR_EPS) is the attention bias of the clinical prior
MASKED = -1e9  # attention bias of a padded token


def model_kwargs(model_config: Mapping[str, Any], model_class: type, *, supplied: tuple[str, ...]) -> dict[str, Any]:
    """`config.model` minus its `name`: the keyword arguments of a Flax model and of its twin alike.

    `supplied` are the arguments the builder adds itself (num_classes, dtype, ...). A field the
    class does not take, or one it needs that the config lacks, is a ConfigError naming both.
    """
    kwargs = {k: v for k, v in dict(model_config.items()).items() if k != "name"}
    params = inspect.signature(model_class.__init__).parameters
    accepted = {n for n, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY} - set(supplied)
    unknown = sorted(set(kwargs) - accepted)
    missing = sorted(n for n in accepted - set(kwargs) if params[n].default is inspect.Parameter.empty)
    if unknown or missing:
        raise ConfigError(
            f"config.model does not fit {model_class.__name__}: "
            + "; ".join(filter(None, [unknown and f"unknown field(s) {unknown}", missing and f"missing field(s) {missing}"]))
        )
    return kwargs


def sinusoidal_positions(length: int, dim: int) -> np.ndarray:
    """Fixed [length, dim] position codes, so any window length works."""
    positions = np.arange(length)[:, None]
    freqs = np.exp(-np.log(10000.0) * np.arange(0, dim, 2) / dim)
    codes = np.zeros((length, dim), np.float32)
    codes[:, 0::2] = np.sin(positions * freqs)
    codes[:, 1::2] = np.cos(positions * freqs)[:, : dim // 2]
    return codes


def spatial_partitions() -> np.ndarray:
    """[3, J, J] normalised adjacency: self links, links towards and away from the centre."""
    adjacency = np.zeros((NUM_JOINTS, NUM_JOINTS))
    for a, b in BONES:
        adjacency[a, b] = adjacency[b, a] = 1
    hops = np.full(NUM_JOINTS, np.inf)
    hops[[11, 12]] = 0  # distance to the hips (the graph centre)
    for _ in range(NUM_JOINTS):
        for a, b in BONES:
            hops[a] = min(hops[a], hops[b] + 1)
            hops[b] = min(hops[b], hops[a] + 1)
    inward = adjacency * (hops[None, :] < hops[:, None])  # i <- j where j is nearer the centre
    outward = adjacency * (hops[None, :] > hops[:, None])
    parts = np.stack([np.eye(NUM_JOINTS), inward, outward])
    degree = parts.sum(axis=(0, 2))
    return (parts / degree[None, None, :]).astype(np.float32)


def block_plan(dim: int, depth: int, in_dim: int = NUM_FEATURES) -> list[tuple[int, int, int]]:
    """ST-GCN (in channels, out channels, temporal stride) per block: width doubles once, at the middle
    block, which also strides in time."""
    widths = [dim * (2 ** (i * 2 // max(depth, 1))) for i in range(depth)]
    inputs = [in_dim, *widths[:-1]]
    return [(inputs[i], w, 2 if i > 0 and w != widths[i - 1] else 1) for i, w in enumerate(widths)]


def uniform_boundaries(frames: int, max_steps: int) -> np.ndarray:
    """PhaseMix's fallback cut into equal steps; numpy, so the twin uses the very same frames."""
    return np.linspace(0, frames - 1, max_steps + 1).round().astype(np.int32)


def resample_positions(length: int) -> np.ndarray:
    """Fractions 0..1 at which a PhaseMix step is resampled; shared with the twin for exact parity."""
    return np.linspace(0.0, 1.0, length, dtype=np.float32)

"""A walk seen through a camera and a pose estimator: projection to pixels (direction, distance,
panning, roll) and the estimator's artefacts (scores by visibility, jitter, dropped joints, brief
left/right swaps, joints at the frame edges)."""

from __future__ import annotations

import numpy as np

from asd_jax.base.skeleton import FLIP_PAIRS, JOINT_NAMES, NUM_JOINTS
from asd_jax.data.synthetic.kinematics import WalkSpec, heel_strike_frames, simulate_body
from asd_jax.data.synthetic.params import CohortParams

LEG_JOINTS = tuple(i for i, name in enumerate(JOINT_NAMES) if name.split("_")[-1] in ("hip", "knee", "ankle"))


def project(body: np.ndarray, height_m: float, params: CohortParams, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Body-frame metres -> image pixels for a random camera; returns pixels and camera facts."""
    direction = int(rng.choice([-1, 1]))
    body_px = float(rng.uniform(params.body_px_min, params.body_px_max))
    scale = body_px / height_m
    width, height = params.image_width, params.image_height
    ground = rng.uniform(0.62, 0.95) * height
    travel = (body[-1, 11, 0] - body[0, 11, 0]) * scale
    # A long walk would leave the frame: the camera then pans with the walker, keeping at most
    # 80 % of the frame width of forward travel in view.
    pan = max(0.0, 1.0 - 0.8 * width / travel) if travel > 0 else 0.0
    # Some walks start or end partly outside the frame (partial skeletons at the edges).
    start = rng.uniform(-0.05 * width, max(0.0, 1.02 * width - (1 - pan) * travel))
    x = body[..., 0] - body[0, 11, 0]
    x = x - pan * x[:, 11:12]
    px = np.stack([start + scale * x, ground - scale * body[..., 1]], -1)
    if direction < 0:
        px[..., 0] = width - px[..., 0]
    tilt = np.deg2rad(rng.normal(0.0, params.tilt_deg_std))
    centre = np.array([width / 2, height / 2])
    rot = np.array([[np.cos(tilt), -np.sin(tilt)], [np.sin(tilt), np.cos(tilt)]])
    px = (px - centre) @ rot.T + centre
    return px, {"direction": direction, "body_px": body_px, "tilt_deg": float(np.rad2deg(tilt))}


def add_artefacts(
    px: np.ndarray, direction: int, body_px: float, params: CohortParams, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Pose-estimator realism: scores by visibility, jitter, dropped joints, swaps, frame edges."""
    num_frames = px.shape[0]
    near_side = "left" if direction > 0 else "right"
    near = np.array([name.startswith(near_side) or "_" not in name for name in JOINT_NAMES])
    mean_score = np.where(near, params.near_side_score, params.far_side_score)
    score = np.clip(rng.normal(mean_score, 0.06, size=(num_frames, NUM_JOINTS)), 0.05, 0.99)
    noise_px = params.jitter_px * body_px / 500.0 * (1.6 - score)
    px = px + rng.normal(size=px.shape) * noise_px[..., None]

    dropped = rng.random((num_frames, NUM_JOINTS)) < params.dropout_rate
    score[dropped] = rng.uniform(0.0, 0.1, size=dropped.sum())
    px[dropped] += rng.normal(0.0, 0.1 * body_px, size=(dropped.sum(), 2))

    num_swaps = rng.poisson(params.swap_rate * num_frames / params.fps * 10)
    pairs = [p for p in FLIP_PAIRS if p[0] in LEG_JOINTS]
    for _ in range(num_swaps):
        start = int(rng.integers(num_frames))
        stop = min(num_frames, start + int(rng.integers(2, 7)))
        for left, right in pairs:
            px[start:stop, [left, right]] = px[start:stop, [right, left]]

    outside = (px[..., 0] < 0) | (px[..., 0] >= params.image_width) | (px[..., 1] < 0) | (px[..., 1] >= params.image_height)
    score[outside] *= 0.2
    px[..., 0] = np.clip(px[..., 0], 0, params.image_width - 1)
    px[..., 1] = np.clip(px[..., 1], 0, params.image_height - 1)
    return px.astype(np.float32), score.astype(np.float32)


def simulate_walk(spec: WalkSpec, params: CohortParams, rng: np.random.Generator) -> dict:
    """One walk with its ground truth: keypoints [T,17,2] px, scores [T,17], and truth.

    Truth: clean pixels, the body in metres, cadence, heel-strike frames per leg, and the
    widest-stride frames (the horizontal ankle gap at its maxima, one per step).
    """
    body = simulate_body(spec)
    clean, camera = project(body["keypoints"], spec.height_m, params, rng)
    keypoints, scores = add_artefacts(clean.copy(), camera["direction"], camera["body_px"], params, rng)
    gap = np.abs(clean[:, 15, 0] - clean[:, 16, 0])
    strikes = {side: heel_strike_frames(body[f"{side}_phase"]) for side in ("left", "right")}
    all_strikes = np.sort(np.concatenate(list(strikes.values())))
    widest = [int(a + np.argmax(gap[a:b])) for a, b in zip(all_strikes[:-1], all_strikes[1:]) if b - a > 2]
    return {
        "keypoints": keypoints,
        "scores": scores,
        "truth": {
            "clean_keypoints": clean.astype(np.float32),
            "body_keypoints": body["keypoints"],
            "cadence": spec.cadence,
            "heel_strikes": strikes,
            "phases": {side: body[f"{side}_phase"] for side in ("left", "right")},
            "widest_stride_frames": np.array(widest, int),
            **camera,
        },
    }

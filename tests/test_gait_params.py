"""Gait parameters recover the known cadence and trunk posture of generated walks."""

from __future__ import annotations

import numpy as np
import pytest

from asd_jax.base.gait import gait_parameters
from asd_jax.data.synthetic import CohortParams, WalkSpec, simulate_walk


def generated(spec: WalkSpec, seed: int = 0) -> np.ndarray:
    walk = simulate_walk(spec, CohortParams(), np.random.default_rng(seed))
    return np.concatenate([walk["keypoints"] / 1920, walk["scores"][..., None]], -1)


@pytest.mark.parametrize("cadence,seed", [(92.0, 0), (105.0, 1), (118.0, 2), (128.0, 3)])
def test_cadence_within_five_percent(cadence, seed):
    params = gait_parameters(generated(WalkSpec(num_frames=240, cadence=cadence), seed), fps=30.0)
    assert params["cadence_steps_per_min"] == pytest.approx(cadence, rel=0.05)
    assert params["stride_time_s"] == pytest.approx(120.0 / cadence, rel=0.05)
    assert 1.0 < params["stance_swing_ratio"] < 2.5  # normal gait: about 60/40


def test_trunk_inclination_and_its_growth():
    upright = gait_parameters(generated(WalkSpec(num_frames=240, trunk_deg=3.0)), fps=30.0)
    leaning = gait_parameters(generated(WalkSpec(num_frames=150, trunk_deg=15.0, trunk_growth_deg=10.0)), fps=30.0)
    assert upright["trunk_inclination_deg"] == pytest.approx(3.0, abs=2.5)
    assert leaning["trunk_inclination_deg"] > upright["trunk_inclination_deg"] + 10
    assert leaning["trunk_inclination_change_deg"] > 3


def test_too_short_a_clip_gives_nan_not_an_error():
    params = gait_parameters(generated(WalkSpec(num_frames=12)), fps=30.0)
    assert np.isnan(params["cadence_steps_per_min"])

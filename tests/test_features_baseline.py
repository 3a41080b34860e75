"""The `features` baseline: the clinical features see what they should, the estimator finds a class
difference that only they carry, and a smoke run goes through the same trainer and reports."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_launch import run_launch

from asd_jax.base.gait import CLINICAL_FEATURE_NAMES, clinical_features, region_feature_groups
from asd_jax.data.synthetic import CohortParams, WalkSpec, simulate_walk
from asd_jax.models.features import build_estimator, candidates
from configs.features import get_config


def walk_pose(rng: np.random.Generator, **spec) -> np.ndarray:
    """A walk as the pipeline stores it: x, y over the longer image side, score."""
    walk = simulate_walk(WalkSpec(num_frames=180, **spec), CohortParams(), rng)
    return np.concatenate([walk["keypoints"] / 1920.0, walk["scores"][..., None]], -1)


def test_cadence_feature_measures_the_walks_cadence():
    rng = np.random.default_rng(0)
    index = CLINICAL_FEATURE_NAMES.index("cadence")
    for cadence in (95.0, 120.0):
        assert clinical_features(walk_pose(rng, cadence=cadence), 30.0)[index] == pytest.approx(cadence, rel=0.06)


def test_trunk_drift_feature_sees_a_growing_lean():
    rng = np.random.default_rng(1)
    index = CLINICAL_FEATURE_NAMES.index("trunk_change")
    still, growing = (clinical_features(walk_pose(rng, trunk_growth_deg=g), 30.0)[index] for g in (0.0, 12.0))
    assert growing - still > 5.0


def test_a_class_that_differs_only_in_cadence_is_recovered():
    rng = np.random.default_rng(2)
    cadences = {0: 96.0, 1: 118.0}
    x, y = [], []
    for label, cadence in cadences.items():
        for _ in range(24):
            spec = dict(cadence=cadence + rng.normal(0, 3), trunk_deg=rng.normal(5, 6), stride_scale=rng.normal(1, 0.1))
            x.append(clinical_features(walk_pose(rng, **spec), 30.0))
            y.append(label)
    x, y = np.array(x), np.array(y)
    order = rng.permutation(len(y))
    train, test = order[:32], order[32:]
    model_config = get_config().model
    for candidate in candidates(model_config):
        estimator = build_estimator(candidate, model_config, seed=0).fit(x[train], y[train])
        assert (estimator.predict(x[test]) == y[test]).mean() >= 0.9, candidate.name
    forest = build_estimator(candidates(model_config)[0], model_config, seed=0).fit(x, y)
    top = np.argsort(forest.named_steps["classify"].feature_importances_)[::-1][:2]
    assert {CLINICAL_FEATURE_NAMES[i] for i in top} & {"cadence", "stride_time"}


def test_features_smoke_run_selects_on_validation_and_reports(tmp_path, data_dir):
    proc = run_launch(tmp_path / "features", data_dir, config="configs/features.py:smoke")
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((tmp_path / "features" / "report" / "results.json").read_text())
    log = [json.loads(line) for line in (tmp_path / "features" / "metrics.jsonl").read_text().splitlines()]
    tried = [m for m in log if "candidate" in m]
    assert len(tried) == len(candidates(get_config("smoke").model))
    metric = get_config("smoke").train.select_metric
    scores = [m[f"val_{metric}"] for m in tried]
    assert report["selected_step"] == int(np.argmax(scores))  # the first of the best on validation
    assert (tmp_path / "features" / "checkpoints" / "features.joblib").exists()
    again = run_launch(tmp_path / "features", data_dir, mode="eval", config="configs/features.py:smoke")
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads((tmp_path / "features" / "report" / "results.json").read_text())["headline"] == report["headline"]
    explained = run_launch(tmp_path / "features", data_dir, mode="explain", config="configs/features.py:smoke")
    assert explained.returncode == 0, explained.stderr[-3000:]
    payload = json.loads((tmp_path / "features" / "report" / "explain" / "explanations.json").read_text())
    assert set(payload["feature_groups"]) == set(region_feature_groups()) and "grouped permutation" in payload["method"]
    assert set(payload["mean_attribution"]) == set(report["class_names"])
    assert (tmp_path / "features" / "report" / "explain" / "attribution_by_class.png").stat().st_size > 1000

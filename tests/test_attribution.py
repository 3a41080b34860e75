"""Attributions: occlusion finds the one region a model reads, integrated gradients add up to the
change they explain, and the randomisation check catches attributions that ignore the weights."""

from __future__ import annotations

import importlib

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from asd_jax.base.skeleton import REGION_NAMES, REGIONS, neutral_pose
from asd_jax.evaluation import attribution
from asd_jax.models import build_model

HEAD = list(REGIONS["head"])


def head_only(pose: jax.Array, prior: jax.Array) -> jax.Array:
    """Logits that depend on the head's joints alone (their mean height and score)."""
    head = pose[:, :, HEAD]
    signal = (head[..., 1] * head[..., 2]).mean((1, 2)) * 3.0
    return jnp.stack([signal, -signal, jnp.zeros_like(signal)], axis=-1)


def random_pose(rng: np.random.Generator, batch: int = 3, frames: int = 32) -> np.ndarray:
    xy = rng.normal(size=(batch, frames, 17, 2)).astype(np.float32)
    score = rng.uniform(0.5, 1.0, size=(batch, frames, 17, 1)).astype(np.float32)
    return np.concatenate([xy + np.array([0.0, 1.0], np.float32), score], -1)


def walking_pose(rng: np.random.Generator, batch: int = 3, frames: int = 32) -> np.ndarray:
    """The neutral pose moved by up to ~0.15 torso lengths per joint and frame: a realistic input on
    which segment angles stay away from the +-pi cut, so the path from the baseline is smooth."""
    xy = neutral_pose()[None, None] + 0.05 * rng.normal(size=(batch, frames, 17, 2))
    score = rng.uniform(0.5, 1.0, size=(batch, frames, 17, 1))
    return np.concatenate([xy, score], -1).astype(np.float32)


def test_occlusion_attributes_a_head_only_model_to_the_head():
    pose = random_pose(np.random.default_rng(0))
    prior = np.full((3, 5), 0.2, np.float32)
    target = np.zeros(3, np.int32)
    scores = np.abs(np.asarray(attribution.occlusion(head_only, pose, prior, target, bins=4)))  # [B, R, bins]
    per_region = scores.sum(axis=(0, 2))
    assert per_region[REGION_NAMES.index("head")] / per_region.sum() > 0.999
    assert (scores[:, REGION_NAMES.index("head")] > 0).all()  # every time bin of the head matters


def test_integrated_gradients_add_up_to_the_explained_change():
    """Completeness: sum(IG) = f(x) - f(baseline) up to the midpoint rule's error, which shrinks as
    1/steps^2 for a smooth path; 64 steps keep it under 2 % of the change (or 1e-3 absolute).
    (A ReLU network is only piecewise smooth, hence a tolerance rather than float precision.)"""
    config = importlib.import_module("configs.cnn").get_config("smoke")
    config.model.inputs = "joints,bones,angles"
    apply = attribution.model_apply(build_model(config, 3, nnx.Rngs(0)))
    pose = walking_pose(np.random.default_rng(1), frames=config.data.window)
    prior = np.full((3, 5), 0.2, np.float32)
    ig, gap = attribution.integrated_gradients(apply, pose, prior, np.array([0, 1, 2], np.int32), steps=64)
    total = np.asarray(ig).sum((1, 2))
    np.testing.assert_allclose(total, np.asarray(gap), rtol=0.02, atol=1e-3)
    assert np.abs(np.asarray(gap)).max() > 1e-3  # the check is not vacuous


def test_randomisation_check_flags_attributions_that_ignore_the_weights():
    config = importlib.import_module("configs.cnn").get_config("smoke")
    pose = random_pose(np.random.default_rng(2), frames=config.data.window)
    prior = np.full((3, 5), 0.2, np.float32)
    target = np.zeros(3, np.int32)
    trained = attribution.model_apply(build_model(config, 3, nnx.Rngs(0)))
    reinitialised = attribution.model_apply(build_model(config, 3, nnx.Rngs(7)))
    real = attribution.randomisation_check(
        attribution.occlusion(trained, pose, prior, target), attribution.occlusion(reinitialised, pose, prior, target)
    )
    blind = attribution.randomisation_check(
        attribution.occlusion(head_only, pose, prior, target), attribution.occlusion(head_only, pose, prior, target)
    )
    assert blind == {"rank_correlation": 1.0, "passed": False}
    assert real["rank_correlation"] < 0.9


def test_grouped_permutation_finds_the_group_the_classifier_reads():
    rng = np.random.default_rng(3)
    features = rng.normal(size=(200, 4))
    labels = (features[:, 2] > 0).astype(int)

    def log_prob(x: np.ndarray) -> np.ndarray:
        p = 1 / (1 + np.exp(-5 * x[:, 2]))
        return np.log(np.stack([1 - p, p], 1) + 1e-9)

    drops = attribution.grouped_permutation(log_prob, features, labels, {"a": [0, 1], "b": [2], "c": [3], "none": []})
    assert drops["b"] > 0.5 and abs(drops["a"]) < 1e-9 and drops["none"] == 0.0


def test_deep_model_explanations_report_agreement_chance_and_randomisation():
    """A model that reads only the head, on clips whose raters marked the head: the head carries the
    attribution, agreement beats the chance level of a model that reads nothing but the feet, and
    the randomisation check fails when the 'untrained' model is the same function."""
    from ml_collections import ConfigDict

    from asd_jax.evaluation import explanation_report

    rng = np.random.default_rng(4)
    data = ConfigDict({"fps": 30.0, "window": 32, "eval_stride": 16, "pad": "edge"})
    prior = np.array([0.6, 0.1, 0.1, 0.1, 0.1], np.float32)
    stored = walking_pose(rng, batch=4, frames=48) * np.array([1.0, -1.0, 1.0], np.float32)  # as stored: image y points down
    clips = [{"pose": stored[i], "fps": 30.0, "prior": prior, "label": i % 2} for i in range(4)]
    feet = list(REGIONS["foot"])

    def feet_only(pose, prior):
        signal = -(pose[:, :, feet, 1] * pose[:, :, feet, 2]).mean((1, 2)) * 3.0  # feet below the hips: y < 0
        return jnp.stack([signal, -signal, jnp.zeros_like(signal)], axis=-1)

    report = explanation_report.deep_model_explanations(head_only, feet_only, clips, ("A", "B", "C"), data, bins=4)
    head = REGION_NAMES.index("head")
    for name in ("A", "B"):
        assert int(np.argmax(np.abs(report["mean_attribution"][name]))) == head
    assert set(report["agreement"]) == {"A", "B"}  # class C has no clips: no row, no NaN
    assert report["agreement"]["A"]["top_region_match"] == 1.0 and report["agreement"]["A"]["chance_top_region_match"] == 0.0
    assert report["randomisation_check"]["passed"]
    same = explanation_report.deep_model_explanations(head_only, head_only, clips, ("A", "B", "C"), data, bins=4)
    assert same["randomisation_check"] == {"rank_correlation": 1.0, "passed": False}


def test_features_explanations_find_the_region_of_the_informative_features():
    from sklearn.ensemble import RandomForestClassifier

    from asd_jax.base.gait import CLINICAL_FEATURE_NAMES, region_feature_groups
    from asd_jax.evaluation import explanation_report

    rng = np.random.default_rng(5)
    x = rng.normal(size=(300, len(CLINICAL_FEATURE_NAMES)))
    y = (x[:, CLINICAL_FEATURE_NAMES.index("head_mean")] > 0).astype(int)
    estimator = RandomForestClassifier(n_estimators=50, random_state=0).fit(x[:200], y[:200])
    priors = np.tile(np.array([0.6, 0.1, 0.1, 0.1, 0.1], np.float32), (100, 1))
    report = explanation_report.features_explanations(estimator, x[:200], y[:200], x[200:], y[200:], priors, ("A", "B"))
    assert max(report["feature_groups"], key=report["feature_groups"].get) == "head"
    assert set(report["feature_groups"]) == set(region_feature_groups())
    assert report["agreement"]["A"]["top_region_match"] == 1.0
    assert report["randomisation_check"]["passed"]  # a forest fit on shuffled labels ranks features differently

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
NO_FEATURES = attribution.no_features(3)  # the batches below hold three windows


def head_only(pose: jax.Array, prior: jax.Array, features: jax.Array) -> jax.Array:
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
    scores = np.abs(np.asarray(attribution.occlusion(head_only, pose, prior, NO_FEATURES, target, bins=4)))  # [B, R, bins]
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
    ig, gap = attribution.integrated_gradients(apply, pose, prior, NO_FEATURES, np.array([0, 1, 2], np.int32), steps=64)
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
        attribution.occlusion(trained, pose, prior, NO_FEATURES, target),
        attribution.occlusion(reinitialised, pose, prior, NO_FEATURES, target),
    )
    blind = attribution.randomisation_check(
        attribution.occlusion(head_only, pose, prior, NO_FEATURES, target),
        attribution.occlusion(head_only, pose, prior, NO_FEATURES, target),
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

    def feet_only(pose, prior, features):
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


def cadence_and_head(pose: jax.Array, prior: jax.Array, features: jax.Array) -> jax.Array:
    """Logits from the head's joints and the cadence feature (a "foot" group column), a feature
    hidden (NaN) read as 0 like the models' encoder reads it."""
    from asd_jax.base.gait import CLINICAL_FEATURE_NAMES

    cadence = features[:, CLINICAL_FEATURE_NAMES.index("cadence")]
    signal = head_only(pose, prior, features)[:, 0] + 2.0 * jnp.where(jnp.isfinite(cadence), cadence, 0.0)
    return jnp.stack([signal, -signal, jnp.zeros_like(signal)], axis=-1)


def test_feature_and_stream_occlusion_find_what_a_model_reads():
    """Hiding the cadence's group (foot) moves the prediction and no other group does; hiding the
    whole pose and every feature each drop the class both streams vote for."""
    from asd_jax.base.gait import CLINICAL_FEATURE_NAMES
    from asd_jax.evaluation.explanations import FEATURE_GROUPS, feature_group_masks

    rng = np.random.default_rng(6)
    pose = random_pose(rng) * np.array([1.0, 0.0, 1.0], np.float32) + np.array([0.0, 1.0, 0.0], np.float32)  # head up: signal > 0
    prior = np.full((3, 5), 0.2, np.float32)
    features = np.ones((3, len(CLINICAL_FEATURE_NAMES)), np.float32)  # cadence +1 spread: votes for class 0 too
    target = np.zeros(3, np.int32)
    masks = feature_group_masks()
    assert masks.shape == (len(FEATURE_GROUPS), len(CLINICAL_FEATURE_NAMES)) and masks.any(1).all()
    groups = np.asarray(attribution.feature_occlusion(cadence_and_head, pose, prior, features, target, masks))  # [B, G]
    foot = FEATURE_GROUPS.index("foot")
    assert (groups[:, foot] > 0.05).all()
    assert np.abs(np.delete(groups, foot, axis=1)).max() < 1e-6
    streams = np.asarray(attribution.stream_occlusion(cadence_and_head, pose, prior, features, target))  # [B, 2]
    assert (streams > 0.05).all()
    without_cadence = np.asarray(attribution.stream_occlusion(head_only, pose, prior, features, target))
    assert np.abs(without_cadence[:, attribution.STREAMS.index("gait_features")]).max() < 1e-6


def test_a_gait_feature_model_is_explained_with_the_features_it_reads():
    """A real gait-stream network (untrained weights): the clip explanation's feature-group
    occlusion is the change in the network's own log-probability, averaged over the clip's
    windows, when that group's features are unmeasured (NaN), computed here by calling it."""
    from asd_jax.base.gait import CLINICAL_FEATURE_NAMES
    from asd_jax.evaluation.explanations import clip_windows, explain_clip, feature_group_masks
    from asd_jax.models import reported_logits

    config = importlib.import_module("configs.cnn_clip_gait_bones_diagnoses").get_config("smoke")
    model = build_model(config, 3, nnx.Rngs(0))
    rng = np.random.default_rng(7)
    stored = walking_pose(rng, batch=1, frames=int(config.data.window * 1.5))[0] * np.array([1.0, -1.0, 1.0], np.float32)
    prior = np.full(5, 0.2, np.float32)
    features = rng.normal(size=len(CLINICAL_FEATURE_NAMES)).astype(np.float32)
    explained = explain_clip(attribution.model_apply(model), stored, config.data.fps, prior, config.data, features=features)

    windows, _ = clip_windows(stored, config.data.fps, config.data)
    priors = np.repeat(prior[None], len(windows), 0)

    def log_p(gait: np.ndarray) -> np.ndarray:
        out = model(jnp.asarray(windows), jnp.asarray(priors), features=jnp.asarray(np.repeat(gait[None], len(windows), 0)))
        return np.asarray(jax.nn.log_softmax(reported_logits(model, out.logits)))[:, explained.target]

    expected = [(log_p(features) - log_p(np.where(mask, np.nan, features))).mean() for mask in feature_group_masks()]
    np.testing.assert_allclose(explained.feature_groups, expected, atol=1e-5)
    assert np.abs(expected).max() > 1e-3  # the features matter to this network: the check is not vacuous
    assert explained.streams.shape == (2,) and explained.region_time.shape[0] == len(REGION_NAMES)


def test_stream_readings_are_the_heads_whose_sum_is_the_diagnosis():
    """A real network with a pose head and a gait-feature head that add up (untrained weights): the
    two heads' logits sum to the model's (trained on the plain classes, so nothing is merged); the
    clip's readings are each head's softmax of its mean logits over the windows, computed here by
    calling the network; a model with one head over both streams, or none, has no readings."""
    from asd_jax.base.gait import CLINICAL_FEATURE_NAMES
    from asd_jax.base.preprocess import softmax
    from asd_jax.evaluation.explanations import clip_windows, explain_clip, stream_reading_text

    config = importlib.import_module("configs.cnn_clip_gait_bones_diagnoses").get_config("smoke")
    config.data.train_classes = ""
    model = build_model(config, 3, nnx.Rngs(0))
    rng = np.random.default_rng(8)
    stored = walking_pose(rng, batch=1, frames=int(config.data.window * 1.5))[0] * np.array([1.0, -1.0, 1.0], np.float32)
    prior = np.full(5, 0.2, np.float32)
    features = rng.normal(size=len(CLINICAL_FEATURE_NAMES)).astype(np.float32)
    windows, _ = clip_windows(stored, config.data.fps, config.data)
    priors, gait = np.repeat(prior[None], len(windows), 0), np.repeat(features[None], len(windows), 0)

    streams_apply = attribution.stream_apply(model)
    per_stream = np.asarray(streams_apply(windows, priors, gait))  # [W, STREAMS, C]
    np.testing.assert_allclose(per_stream.sum(1), np.asarray(attribution.model_apply(model)(windows, priors, gait)), atol=1e-5)
    explained = explain_clip(
        attribution.model_apply(model), stored, config.data.fps, prior, config.data, features=features, streams_apply=streams_apply
    )
    out = model(jnp.asarray(windows), jnp.asarray(priors), features=jnp.asarray(gait))
    expected = np.stack([softmax(np.asarray(logits).mean(0)) for logits in out.stream_logits])
    np.testing.assert_allclose(explained.stream_probs, expected, atol=1e-5)
    assert np.abs(expected[0] - expected[1]).max() > 1e-3  # the two heads differ: the check is not vacuous
    names = ("ASD", "DHS", "LCS_HipOA")
    assert stream_reading_text(np.array([[0.2, 0.7, 0.1], [0.1, 0.35, 0.55]]), names) == (
        "pose alone: DHS 70%, gait features alone: LCS_HipOA 55%"
    )

    config.model.gait_fusion = "concat"
    assert attribution.stream_apply(build_model(config, 3, nnx.Rngs(0))) is None
    config.model.gait_features = 0
    assert attribution.stream_apply(build_model(config, 3, nnx.Rngs(0))) is None

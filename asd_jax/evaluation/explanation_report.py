"""What a trained model's explanations say over a fold's test clips, and whether to believe them.

Measured the same way for every model, on the attributions (asd_jax/evaluation/attribution.py),
never on the attention map the clinical prior biases:
- per class, the mean attribution of each body region to the class's log-probability (for a clip,
  its true class: what in this walk is evidence of its diagnosis);
- agreement with the raters: per class, the rank correlation of that mean with the raters' mean
  prior over the class's annotated clips, and whether the top regions match; its chance level is
  the same number for the same architecture untrained (re-initialised weights; for `features`, the
  same estimator fitted on shuffled labels);
- the model-randomisation check (Adebayo et al. 2018): the rank correlation of the trained and the
  re-initialised model's attributions; high means the explanation shows the architecture or the
  input, not what was learned;
- for a model that also reads the clip's gait features, the same for their occlusion by region,
  and how much each stream carries (the whole pose hidden, every feature hidden); for one whose
  pose and gait-feature heads add up, also what each head diagnoses by itself (`stream_readings`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import clone

from asd_jax.base.gait import region_feature_groups
from asd_jax.base.skeleton import REGION_NAMES
from asd_jax.evaluation import attribution, metrics
from asd_jax.evaluation.explanations import FEATURE_GROUPS, clip_evidence, clip_stream_probs
from asd_jax.models.features import clip_log_probs


def annotated(priors: np.ndarray) -> np.ndarray:
    """[N] True where raters marked something (a flat prior is the unannotated default)."""
    return np.ptp(priors, axis=-1) > 0


def class_agreement(
    region_attribution: np.ndarray, chance_attribution: np.ndarray, priors: np.ndarray, labels: np.ndarray, class_names: tuple[str, ...]
) -> dict[str, dict[str, float | int]]:
    """Per class: agreement of the mean region attribution (trained, and untrained = chance) with
    the raters' mean prior over the class's annotated clips; empty when nobody annotated."""
    rated = annotated(priors)
    out = {}
    for c, name in enumerate(class_names):
        rows = (labels == c) & rated
        if not rows.any():
            continue
        prior = priors[rows].mean(0)
        trained = attribution.agreement_with_raters(region_attribution[c], prior)
        chance = attribution.agreement_with_raters(chance_attribution[c], prior)
        out[name] = {
            "spearman": trained["spearman"], "top_region_match": trained["top_region_match"],
            "chance_spearman": chance["spearman"], "chance_top_region_match": chance["top_region_match"],
            "annotated_clips": int(rows.sum()),
        }
    return out


def per_class_mean(values: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """[N, ...] -> [classes, ...] mean over each class's clips (0 for a class without clips)."""
    return np.stack([values[labels == c].mean(0) if (labels == c).any() else np.zeros(values.shape[1:]) for c in range(num_classes)])


def deep_model_explanations(
    trained, untrained, clips: list[dict[str, Any]], class_names: tuple[str, ...], data, *, bins: int = 8
) -> dict[str, Any]:
    """`trained`/`untrained`: jitted (pose, prior, features) -> logits; `clips`: dicts with pose,
    fps, prior, label of the test clips, and their gait features for a model that reads them.
    Occlusion region x time per clip for its true class."""
    evidence = {
        name: [clip_evidence(apply, c["pose"], c["fps"], c["prior"], c["label"], data, features=c.get("features"), bins=bins)
               for c in clips]
        for name, apply in (("trained", trained), ("untrained", untrained))
    }
    maps = {name: np.stack([e["regions"] for e in clip_list]) for name, clip_list in evidence.items()}  # [N, regions, bins]
    labels = np.array([c["label"] for c in clips])
    priors = np.stack([c["prior"] for c in clips])
    region = {name: per_class_mean(m.mean(-1), labels, len(class_names)) for name, m in maps.items()}
    reads_features = "feature_groups" in evidence["trained"][0]
    payload = {
        "method": f"occlusion: drop in log p(true class) when a region's joints are hidden over 1/{bins} of a window"
        + (", the clip's gait features kept" if reads_features else ""),
        "mean_attribution": dict(zip(class_names, np.asarray(region["trained"], float).round(5).tolist())),
        "agreement": class_agreement(region["trained"], region["untrained"], priors, labels, class_names),
        "randomisation_check": attribution.randomisation_check(maps["trained"], maps["untrained"]),
        "mean_prior": _mean_prior(priors, labels, class_names),
    }
    return payload | (gait_feature_explanations(evidence, labels, priors, class_names) if reads_features else {})


def gait_feature_explanations(
    evidence: dict[str, list[dict[str, np.ndarray]]], labels: np.ndarray, priors: np.ndarray, class_names: tuple[str, ...]
) -> dict[str, Any]:
    """What the gait-feature stream of a model that also reads it contributes: per class, the
    occlusion of each rater region's features (agreement, chance and randomisation as for the
    pose), each group's mean over the clips, and the share of each stream."""
    groups = {name: np.stack([e["feature_groups"] for e in clip_list]) for name, clip_list in evidence.items()}  # [N, groups]
    rater = [FEATURE_GROUPS.index(name) for name in REGION_NAMES]
    region = {name: per_class_mean(g[:, rater], labels, len(class_names)) for name, g in groups.items()}
    streams = per_class_mean(np.stack([e["streams"] for e in evidence["trained"]]), labels, len(class_names))
    return {
        "gait_features": {
            "method": "occlusion: drop in log p(true class) when a region's gait features are hidden (read as the "
            "training patients' median, as a feature that could not be measured is), the pose kept",
            "mean_attribution": dict(zip(class_names, np.asarray(region["trained"], float).round(5).tolist())),
            "feature_groups": dict(zip(FEATURE_GROUPS, groups["trained"].mean(0).round(5).tolist())),
            "agreement": class_agreement(region["trained"], region["untrained"], priors, labels, class_names),
            "randomisation_check": attribution.randomisation_check(groups["trained"], groups["untrained"]),
        },
        "streams": {
            "method": "drop in log p(true class) when the whole pose (every joint of every frame) or every gait feature is hidden",
            **{name: dict(zip(attribution.STREAMS, row.round(5).tolist())) for name, row in zip(class_names, streams)},
        },
    }


def stream_readings(streams_apply, clips: list[dict[str, Any]], class_names: tuple[str, ...], data) -> dict[str, Any]:
    """For a model whose pose head and gait-feature head add up (attribution.stream_apply), what
    each head diagnoses by itself over the test clips: its clip-level metrics, and how often the two
    agree. Unlike hiding a stream, nothing is replaced by a baseline."""
    probs = np.stack([clip_stream_probs(streams_apply, c["pose"], c["fps"], c["prior"], data, c["features"]) for c in clips])
    labels = np.array([c["label"] for c in clips])
    per_stream = {}
    for s, stream in enumerate(attribution.STREAMS):
        scores = metrics.classification_metrics(labels, probs[:, s], class_names)
        per_stream[stream] = {k: scores[k] for k in ("accuracy", "balanced_accuracy", "macro_f1", "auc", "confusion_matrix")}
    calls = probs.argmax(-1)  # [N, STREAMS]
    return {
        "method": "each head alone (the pose head's and the gait-feature head's own softmax, whose logits the model adds), "
        "per test clip; both are trained to diagnose on their own",
        **per_stream,
        "streams_agree": float((calls[:, 0] == calls[:, 1]).mean()),
        "clips": len(clips),
    }


def features_explanations(
    estimator, train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray, priors: np.ndarray,
    class_names: tuple[str, ...], *, class_groups: tuple[int, ...] = (), seed: int = 0,
) -> dict[str, Any]:
    """Grouped permutation importance of the `features` baseline, per region and class; chance and
    randomisation from the same estimator refitted on shuffled training labels (`train_y`: the
    training classes, `class_groups` merging them into the reported ones of `test_y`)."""
    shuffled = clone(estimator).fit(train_x, np.random.default_rng(seed).permutation(train_y))
    groups = region_feature_groups()
    region_groups = {name: groups[name] for name in REGION_NAMES}
    region, single = {}, {}
    for name, model in (("trained", estimator), ("untrained", shuffled)):
        def log_prob(x: np.ndarray, model=model) -> np.ndarray:
            return clip_log_probs(model, x, len(class_names), class_groups)

        drops = attribution.permutation_drops(log_prob, test_x, test_y, region_groups, seed=seed)  # region -> [N]
        region[name] = per_class_mean(np.stack(list(drops.values()), axis=1), test_y, len(class_names))
        columns = {str(i): [i] for i in range(test_x.shape[1])}
        single[name] = np.array(list(attribution.grouped_permutation(log_prob, test_x, test_y, columns, repeats=2, seed=seed).values()))
    overall = attribution.grouped_permutation(
        lambda x: clip_log_probs(estimator, x, len(class_names), class_groups), test_x, test_y, groups, seed=seed
    )
    return {
        "method": "grouped permutation importance: drop in mean log p(true class) when a region's features are shuffled across test clips",
        "mean_attribution": dict(zip(class_names, np.asarray(region["trained"], float).round(5).tolist())),
        "feature_groups": {name: round(value, 5) for name, value in overall.items()},
        "agreement": class_agreement(region["trained"], region["untrained"], priors, test_y, class_names),
        "randomisation_check": attribution.randomisation_check(single["trained"][None], single["untrained"][None]),
        "mean_prior": _mean_prior(priors, test_y, class_names),
    }


def _mean_prior(priors: np.ndarray, labels: np.ndarray, class_names: tuple[str, ...]) -> dict[str, list[float]]:
    """The raters' mean prior per class over annotated clips; classes nobody annotated are left out."""
    rated = annotated(priors)
    rows = {name: (labels == c) & rated for c, name in enumerate(class_names)}
    return {name: priors[r].mean(0).round(4).tolist() for name, r in rows.items() if r.any()}

"""Evaluating a train state on a set of clips.

Every window of every clip is evaluated once (no resampling), then aggregated windows -> clips
(mean logits) -> patients (mean probabilities); metrics at both levels.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import ml_collections
import numpy as np

from asd_jax.base.errors import ConfigError
from asd_jax.base.progress import progress_bar
from asd_jax.data import input_pipeline
from asd_jax.evaluation import aggregate, metrics
from asd_jax.models import reads_gait_features
from asd_jax.models.features import clip_log_probs

LEVELS = ("clip", "patient")
# A continuous validation score for train.select_metric: a dozen validation patients' macro-F1
# often ties (1.0 at several checkpoints), and the first checkpoint to reach it wins.
CLIP_NEG_LOG_LOSS = "clip_neg_log_loss"


@dataclasses.dataclass(frozen=True)
class EvalResult:
    """Predictions and metrics at clip and patient level, plus each clip's mean attention map."""

    class_names: tuple[str, ...]
    predictions: dict[str, aggregate.Predictions]
    metrics: dict[str, dict[str, Any]]
    clip_attention: dict[str, np.ndarray]


def predict_windows(dp, state, batches) -> dict[str, np.ndarray]:
    """Per-window model outputs of the valid (non-padding) rows, gathered from all processes."""
    outputs: dict[str, list[np.ndarray]] = {}
    for batch in batches:
        fetched = dp.fetch(dp.eval_step(state, dp.put_batch(batch)))
        keep = fetched.pop("valid") > 0
        for key, value in fetched.items():
            outputs.setdefault(key, []).append(value[keep])
    return {key: np.concatenate(values) for key, values in outputs.items()}


class WindowScorer:
    """A JAX model's per-window outputs: every evaluation window of the clips, once."""

    def __init__(self, config: ml_collections.ConfigDict, dp, state, *, progress: bool = False):
        self.config, self.dp, self.state, self.progress = config, dp, state, progress

    def windows(self, fold, rows: np.ndarray) -> dict[str, np.ndarray]:
        batches = input_pipeline.eval_batches(
            fold.source, fold.table, rows, self.config.data, process_index=jax.process_index(), process_count=jax.process_count(),
            gait_features=reads_gait_features(self.config),
        )
        if self.progress:  # a bar per batch of windows (--mode=predict)
            batches = progress_bar(batches, desc="scoring windows", unit="batch", dynamic_ncols=True, hidden=jax.process_index() > 0)
        return predict_windows(self.dp, self.state, batches)


class FeatureScorer:
    """The `features` baseline: one "window" per clip, its log-probabilities as logits."""

    def __init__(self, estimator, features, num_classes: int, groups: tuple[int, ...] = ()):
        self.estimator, self.features, self.num_classes, self.groups = estimator, features, num_classes, groups

    def windows(self, fold, rows: np.ndarray) -> dict[str, np.ndarray]:
        rows = np.asarray(rows)
        logits = clip_log_probs(self.estimator, self.features.matrix(rows), self.num_classes, self.groups)
        return {"logits": logits.astype(np.float32), "clip_index": rows.astype(np.int32)}


def evaluate_rows(scorer, fold, rows: np.ndarray) -> EvalResult:
    """Evaluates the clips `rows` of `fold.table` with a scorer (WindowScorer or FeatureScorer)."""
    table = fold.table
    windows = scorer.windows(fold, rows)
    rows = np.asarray(rows)
    clips = aggregate.clips_from_windows(windows["logits"], windows["clip_index"], rows, table.clip_id, table.label)
    patients = aggregate.patients_from_clips(clips, table.patient_id[rows], fold.class_names)
    predictions = {"clip": clips, "patient": patients}
    level_metrics = {
        level: metrics.classification_metrics(p.labels, p.probs, fold.class_names) for level, p in predictions.items()
    }
    attention = {}
    if "attention" in windows:
        for row in rows:
            members = windows["clip_index"] == row
            attention[str(table.clip_id[row])] = windows["attention"][members].mean(0)
    return EvalResult(fold.class_names, predictions, level_metrics, attention)


def headline(result: EvalResult) -> dict[str, float]:
    """Flat `<level>_<metric>` numbers for logs and checkpoint selection."""
    return metrics.flat_headline({level: result.metrics[level] for level in LEVELS})


def clip_log_loss(result: EvalResult) -> float:
    """Mean negative log-likelihood of the clips' true classes."""
    clips = result.predictions["clip"]
    return metrics.log_loss(clips.labels, clips.probs)


def selection_score(result: EvalResult, name: str) -> float:
    """The validation number that picks the checkpoint (higher is better): a headline number, or
    `clip_neg_log_loss`; NaN (e.g. AUC with a class missing) ranks last."""
    scores = headline(result)
    if name == CLIP_NEG_LOG_LOSS:
        scores[name] = -clip_log_loss(result)
    if name not in scores:
        raise ConfigError(f"train.select_metric={name!r}: expected one of {sorted([*scores, CLIP_NEG_LOG_LOSS])}")
    value = scores[name]
    return value if np.isfinite(value) else -np.inf


def validator(config: ml_collections.ConfigDict, fold):
    """Scores a scorer on the fold's validation patients: (scalars to log, `train.select_metric`)."""

    def validate(scorer) -> tuple[dict[str, float], float]:
        result = evaluate_rows(scorer, fold, fold.split.val)
        scalars = {f"val_{k}": v for k, v in headline(result).items()} | {"val_clip_log_loss": clip_log_loss(result)}
        return scalars, selection_score(result, config.train.select_metric)

    return validate

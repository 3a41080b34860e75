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

from asd_jax.data import input_pipeline
from asd_jax.evaluation import aggregate, metrics

LEVELS = ("clip", "patient")


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


def evaluate_rows(config: ml_collections.ConfigDict, dp, state, fold, rows: np.ndarray) -> EvalResult:
    """Evaluates the clips `rows` of `fold.table` with the given state."""
    table = fold.table
    batches = input_pipeline.eval_batches(
        fold.source, table, rows, config.data, process_index=jax.process_index(), process_count=jax.process_count()
    )
    windows = predict_windows(dp, state, batches)
    rows = np.asarray(rows)
    clips = aggregate.clips_from_windows(windows["logits"], windows["clip_index"], rows, table.clip_id, table.label)
    patients = aggregate.patients_from_clips(clips, table.patient_id[rows])
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


def selection_score(result: EvalResult, name: str) -> float:
    """The validation number that picks the checkpoint; NaN (e.g. AUC with a class missing) ranks last."""
    scores = headline(result)
    if name not in scores:
        raise ValueError(f"train.select_metric={name!r}: expected one of {sorted(scores)}")
    value = scores[name]
    return value if np.isfinite(value) else -np.inf


def validator(config: ml_collections.ConfigDict, fold):
    """The train loop's `validate` callback: the fold's validation patients, scored by `train.select_metric`."""

    def validate(dp, state) -> tuple[dict[str, float], float]:
        result = evaluate_rows(config, dp, state, fold, fold.split.val)
        scalars = {f"val_{k}": v for k, v in headline(result).items()}
        return scalars, selection_score(result, config.train.select_metric)

    return validate

"""Evaluating a train state on a set of clips, and the fold report.

Every window of every clip is evaluated once (no resampling), then aggregated windows -> clips
(mean logits) -> patients (mean probabilities); metrics at both levels.
"""

from __future__ import annotations

import dataclasses
import json
import zlib
from pathlib import Path
from typing import Any

import jax
import ml_collections
import numpy as np

from asd_jax import aggregate, gait_params, input_pipeline, metrics, report

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


def fingerprint(batch: dict[str, np.ndarray]) -> int:
    """A checksum of a host batch, logged so a resumed run can prove it saw the same data."""
    checksum = 0
    for key in sorted(batch):
        checksum = zlib.crc32(np.ascontiguousarray(batch[key]).tobytes(), checksum)
    return checksum


def write_fold_report(report_dir: Path, fold, result: EvalResult, *, selected_step: int, seed: int = 0) -> dict[str, Any]:
    """results.json / results.md / prediction CSVs of one fold's test patients (process 0 writes)."""
    payload = report.fold_payload(result, fold, selected_step=selected_step, seed=seed)
    if jax.process_index() == 0:
        table = fold.table
        gait = {
            str(table.clip_id[row]): gait_params.gait_parameters(fold.source[int(table.record[row])]["pose"], float(table.fps[row]))
            for row in fold.split.test
        }
        report.write_fold(report_dir, payload, result, fold, clip_columns=gait)
    return payload


def evaluate_workdir(config: ml_collections.ConfigDict, workdir: Path) -> dict[str, Any]:
    """`--mode=eval`: the workdir's chosen checkpoint on its fold's test patients, or, when the
    data differ from the ones the run trained on, on every clip of the given data (an external
    test set), reported to `<workdir>/report_external/`."""
    from asd_jax import train

    trained = json.loads((workdir / "config.json").read_text())["data"]
    external = any(trained[k] != config.data[k] for k in ("source", "manual_dir", "classes")) or (
        config.data.source == "synthetic" and trained["synthetic"] != config.data.synthetic.to_dict()
    )
    if not external:
        fold = train.prepare_fold(config, workdir)
        dp, state, step = train.restore_best(config, workdir, fold)
        result = evaluate_rows(config, dp, state, fold, fold.split.test)
        return write_fold_report(workdir / "report", fold, result, selected_step=step, seed=config.seed)
    trained_config = ml_collections.ConfigDict(json.loads((workdir / "config.json").read_text()))
    fold = train.prepare_fold(trained_config, workdir)
    dp, state, step = train.restore_best(trained_config, workdir, fold)
    external_fold = train.external_fold(config, fold.class_names)
    result = evaluate_rows(config, dp, state, external_fold, external_fold.split.test)
    return write_fold_report(workdir / "report_external", external_fold, result, selected_step=step, seed=config.seed)

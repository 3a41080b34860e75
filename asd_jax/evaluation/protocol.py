"""The evaluation protocol of one fold (DESIGN.md): train with validation on held-in patients,
keep the checkpoint best on validation, test the held-out patients once, report.

`train_and_evaluate` runs it; `evaluate_run` re-tests a finished run's selected checkpoint, on
its own test patients or on every clip of other data (an external test set).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import ml_collections
import numpy as np

from asd_jax.base.gait import gait_parameters
from asd_jax.base.labels import task_groups
from asd_jax.data import folds
from asd_jax.data.gait_features import FeatureCache
from asd_jax.evaluation import predict, report
from asd_jax.training import checkpointing, fit_features, loop, setup
from asd_jax.training.metric_writer import MetricWriter

REPORT_DIR, EXTERNAL_REPORT_DIR = "report", "report_external"
FEATURES = "features"  # the scikit-learn baseline; every other model.name is a JAX model


def fit_fold(config: ml_collections.ConfigDict, workdir: Path, fold: folds.FoldData, writer: MetricWriter):
    """Trains (or resumes) the fold's model, selected on its validation patients; returns a scorer
    of the selected model and the selected step (a candidate's index for `features`)."""
    validate = predict.validator(config, fold)
    if config.model.name == FEATURES:
        cache = FeatureCache(fold.source, fold.table, config.data.fps)
        scorer = lambda estimator: predict.FeatureScorer(estimator, cache, len(fold.class_names), task_groups(config.data))  # noqa: E731
        fitted = fit_features.fit(config, workdir, fold, cache, lambda estimator: validate(scorer(estimator)), writer)
        return scorer(fitted.estimator), fitted.selected_step
    fitted = loop.fit(config, workdir, fold, lambda dp, state: validate(predict.WindowScorer(config, dp, state)), writer)
    return predict.WindowScorer(config, fitted.dp, fitted.state), fitted.selected_step


def restore_scorer(config: ml_collections.ConfigDict, workdir: Path, num_classes: int, target: folds.FoldData, *, progress: bool = False):
    """A finished run's selected model as a scorer of `target`'s clips; needs only the run's
    config and checkpoint (or fitted estimator), not the data it was trained on."""
    if config.model.name == FEATURES:
        fitted = fit_features.restore(workdir)
        cache = FeatureCache(target.source, target.table, config.data.fps)
        return predict.FeatureScorer(fitted.estimator, cache, num_classes, task_groups(config.data)), fitted.selected_step
    dp, state, step = setup.restore_selected(config, workdir, num_classes)
    return predict.WindowScorer(config, dp, state, progress=progress), step


def write_fold_report(
    report_dir: Path, fold: folds.FoldData, result: predict.EvalResult, *, selected_step: int, seed: int = 0, num_samples: int = 1000
) -> dict[str, Any]:
    """results.json / results.md / plots / prediction CSVs of one fold's test patients (process 0 writes)."""
    table = fold.table
    patient_of = dict(zip(table.clip_id.tolist(), table.patient_id.tolist()))
    payload = report.fold_payload(
        result, patient_of, fold=fold.split.fold, num_folds=fold.split.num_folds, selected_step=selected_step, seed=seed,
        num_samples=num_samples,
    )
    if jax.process_index() == 0:
        gait = {
            str(table.clip_id[row]): gait_parameters(fold.source[int(table.record[row])]["pose"], float(table.fps[row]))
            for row in fold.split.test
        }
        report.write_fold(report_dir, payload, result, patient_of, clip_columns=gait)
    return payload


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | Path) -> dict[str, Any]:
    """Trains one fold, selects on its validation patients, tests once; returns the test report."""
    workdir = Path(workdir)
    checkpointing.save_run_config(workdir, config)
    fold = folds.prepare_fold(config, workdir)
    writer = MetricWriter(workdir)
    try:
        scorer, selected_step = fit_fold(config, workdir, fold, writer)
        result = predict.evaluate_rows(scorer, fold, fold.split.test)
        payload = write_fold_report(
            workdir / REPORT_DIR, fold, result, selected_step=selected_step, seed=config.seed, num_samples=config.report.bootstrap_samples
        )
        writer.write(config.train.num_steps, {f"test_{k}": v for k, v in predict.headline(result).items()})
    finally:
        writer.close()
    return payload


def is_external(config: ml_collections.ConfigDict, trained: ml_collections.ConfigDict) -> bool:
    """Whether `config.data` names other clips than the run trained on."""
    data, before = config.data, trained.data
    changed = any(before[k] != data[k] for k in ("source", "manual_dir", "classes"))
    return changed or (data.source == "synthetic" and before.synthetic.to_dict() != data.synthetic.to_dict())


def evaluate_run(config: ml_collections.ConfigDict, workdir: Path) -> dict[str, Any]:
    """`--mode=eval`: the run's selected checkpoint on its fold's test patients, or, when the data
    differ from the ones it trained on, on every clip of the given data (`report_external/`)."""
    if is_external(config, checkpointing.load_run_config(workdir)):
        return evaluate_external(config, workdir, workdir / EXTERNAL_REPORT_DIR)
    fold = folds.prepare_fold(config, workdir)
    scorer, step = restore_scorer(config, workdir, len(fold.class_names), fold)
    result = predict.evaluate_rows(scorer, fold, fold.split.test)
    return write_fold_report(
        workdir / REPORT_DIR, fold, result, selected_step=step, seed=config.seed, num_samples=config.report.bootstrap_samples
    )


def evaluate_external(config: ml_collections.ConfigDict, workdir: Path, report_dir: Path) -> dict[str, Any]:
    """Every clip of `config.data` (other patients, another clinic, a shifted cohort) tested with the
    run's selected model, with the windows and classes it was trained with; reported to `report_dir`."""
    trained = checkpointing.load_run_config(workdir)
    external = folds.external_fold(config.data, folds.class_names(trained.data))
    scorer, step = restore_scorer(trained, workdir, len(external.class_names), external)  # windows as the run was trained
    result = predict.evaluate_rows(scorer, external, np.asarray(external.split.test))
    return write_fold_report(
        report_dir, external, result, selected_step=step, seed=config.seed, num_samples=config.report.bootstrap_samples
    )

"""`--mode=cv`: every fold trained and tested once, then aggregated.

Fold k lives in `<workdir>/fold_<k>` (a plain single-fold run, so an interrupted CV resumes fold by
fold, and a finished fold is not trained again). Every patient is a test patient in exactly one
fold, so the pooled test predictions cover the cohort once; the summary gives mean ± std over
folds and a patient-bootstrap 95% CI of the pooled predictions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jax
import ml_collections

from asd_jax.evaluation import protocol, report
from asd_jax.training import checkpointing


def fold_config(config: ml_collections.ConfigDict, fold: int) -> ml_collections.ConfigDict:
    config = config.copy_and_resolve_references()
    config.data.fold = fold
    return config


def run_cv(config: ml_collections.ConfigDict, workdir: Path) -> dict[str, Any]:
    """Trains and tests every fold not done yet; returns the summary (report.cv_summary). Every
    fold's config is checked against its checkpoints first, so a refused rerun changes nothing."""
    for fold in range(config.data.num_folds):
        checkpointing.check_resumable(workdir / f"fold_{fold}", fold_config(config, fold))
    fold_reports, report_dirs = [], []
    for fold in range(config.data.num_folds):
        report_dir = workdir / f"fold_{fold}" / protocol.REPORT_DIR
        done = report_dir / "results.json"
        if done.exists():
            fold_reports.append(json.loads(done.read_text()))
        else:
            fold_reports.append(protocol.train_and_evaluate(fold_config(config, fold), workdir / f"fold_{fold}"))
        report_dirs.append(report_dir)
    summary = report.cv_summary(fold_reports, report_dirs, seed=config.seed, num_samples=config.report.bootstrap_samples)
    if jax.process_index() == 0:
        report.write_cv_summary(workdir / protocol.REPORT_DIR, summary, fold_reports)
    return summary


def run(invocation) -> dict[str, Any]:
    return run_cv(invocation.config, invocation.workdir)["levels"]["patient"]["metrics"]

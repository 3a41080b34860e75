"""`--mode=cv`: every fold trained and tested once, then aggregated.

Fold k lives in `<workdir>/fold_<k>` (a plain single-fold run, so an interrupted CV resumes fold by
fold, and a finished fold is not trained again). Every patient is a test patient in exactly one
fold, so the pooled test predictions cover the cohort once; the summary gives mean ± std over
folds and a patient-bootstrap 95% CI of the pooled predictions.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import jax
import ml_collections
import numpy as np

from asd_jax import aggregate, metrics, report

LEVELS = ("clip", "patient")


def fold_config(config: ml_collections.ConfigDict, fold: int) -> ml_collections.ConfigDict:
    config = config.copy_and_resolve_references()
    config.data.fold = fold
    return config


def read_predictions(path: Path, class_names: tuple[str, ...]) -> tuple[aggregate.Predictions, np.ndarray]:
    """A predictions CSV back as Predictions (+ the patient of each row)."""
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    ids = np.array([r.get("clip_id", r["patient_id"]) for r in rows])
    labels = np.array([class_names.index(r["label"]) for r in rows])
    probs = np.array([[float(r[f"p_{c}"]) for c in class_names] for r in rows])
    return aggregate.Predictions(ids, labels, probs), np.array([r["patient_id"] for r in rows])


def run_cv(config: ml_collections.ConfigDict, workdir: Path) -> dict[str, Any]:
    from asd_jax import train

    fold_reports = []
    for fold in range(config.data.num_folds):
        fold_dir = workdir / f"fold_{fold}"
        done = fold_dir / "report" / "results.json"
        if done.exists():
            fold_reports.append(json.loads(done.read_text()))
            continue
        fold_reports.append(train.train_and_evaluate(fold_config(config, fold), fold_dir))
    summary = summarize(fold_reports, workdir, seed=config.seed)
    if jax.process_index() == 0:
        write_summary(workdir / "report", summary, fold_reports)
    return summary


def summarize(fold_reports: list[dict[str, Any]], workdir: Path, *, seed: int = 0) -> dict[str, Any]:
    """Mean ± std over folds, and pooled test predictions with their bootstrap CI."""
    class_names = tuple(fold_reports[0]["class_names"])
    levels = {}
    for level in LEVELS:
        per_fold = [r["levels"][level]["metrics"] for r in fold_reports]
        predictions, patients = zip(
            *(read_predictions(workdir / f"fold_{r['fold']}" / "report" / f"predictions_{level}s.csv", class_names) for r in fold_reports)
        )
        pooled = aggregate.Predictions(
            np.concatenate([p.ids for p in predictions]),
            np.concatenate([p.labels for p in predictions]),
            np.concatenate([p.probs for p in predictions]),
        )
        levels[level] = {
            "metrics": {m: float(np.nanmean([f[m] for f in per_fold])) for m in metrics.HEADLINE},
            "std": {m: float(np.nanstd([f[m] for f in per_fold])) for m in metrics.HEADLINE},
            "pooled": metrics.classification_metrics(pooled.labels, pooled.probs, class_names),
            "ci95": metrics.headline_with_ci(pooled.labels, pooled.probs, groups=np.concatenate(patients), seed=seed),
            "predictions": pooled,
        }
    return {"class_names": class_names, "num_folds": len(fold_reports), "levels": levels}


def write_summary(report_dir: Path, summary: dict[str, Any], fold_reports: list[dict[str, Any]]) -> None:
    report_dir.mkdir(parents=True, exist_ok=True)
    levels = {level: {k: v for k, v in data.items() if k != "predictions"} for level, data in summary["levels"].items()}
    payload = {
        "schema_version": report.SCHEMA_VERSION,
        "class_names": list(summary["class_names"]),
        "num_folds": summary["num_folds"],
        "summary": levels,
        "folds": [{"fold": r["fold"], "selected_step": r["selected_step"], "headline": r["headline"]} for r in fold_reports],
        "headline": metrics.flat_headline({level: levels[level]["metrics"] for level in LEVELS}),
    }
    (report_dir / "results.json").write_text(json.dumps(payload, indent=2))
    rows = [(f"{level} level", levels[level]) for level in ("patient", "clip")]
    text = [
        f"# {summary['num_folds']}-fold patient-grouped cross-validation",
        "",
        "Cells: mean ± std over folds [95% CI, patient bootstrap of the pooled test predictions]. "
        "Each fold's checkpoint was chosen on its validation patients; each test fold was evaluated once.",
        "",
        report.markdown_table(rows),
        "",
    ]
    (report_dir / "results.md").write_text("\n".join(text))
    report.write_plots(report_dir, {level: summary["levels"][level]["predictions"] for level in LEVELS}, summary["class_names"])

"""Report files, written and read back in one place: results.json (schema in the README),
results.md in the reference's table form, ROC / confusion / reliability plots, and the per-clip /
per-patient prediction CSVs; for one fold and for a cross-validation summary."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from asd_jax.base.files import write_atomically
from asd_jax.base.labels import patient_of_unit
from asd_jax.evaluation import aggregate, metrics, plots

SCHEMA_VERSION = 1
LEVELS = ("clip", "patient")
POOLED_ROWS = ("predictions", "patients", "folds")  # cv_summary's per-row arrays: CSVs, not results.json


# One row per clip and one per patient: the file names of every prediction table (write_predictions).
PREDICTION_FILES = ("predictions_clips.csv", "predictions_patients.csv")


def text_table(rows: list[dict], columns: list[str]) -> str:
    """Right-aligned plain-text table for the console."""
    widths = [max(len(c), *(len(str(r[c])) for r in rows)) for c in columns]
    line = lambda values: "  ".join(str(v).rjust(w) for v, w in zip(values, widths))  # noqa: E731
    return "\n".join([line(columns), line("-" * w for w in widths)] + [line(r[c] for c in columns) for r in rows])


def patients_text(patients: aggregate.Predictions, class_names: tuple[str, ...], clips: dict[str, int] | None = None) -> str:
    """The console's patients' table of a diagnosis of new patients: predicted class, probabilities
    and, given, how many clips each patient walked."""
    rows = [
        {
            "patient": p,
            "predicted": class_names[pred],
            **{f"p_{c}": f"{v:.3f}" for c, v in zip(class_names, probs)},
            **({"clips": clips[p]} if clips is not None else {}),
        }
        for p, pred, probs in zip(patients.ids, patients.preds, patients.probs)
    ]
    return text_table(rows, list(rows[0]))


def fold_payload(
    result, patient_of: dict[str, str], *, fold: int, num_folds: int, selected_step: int | list[int], seed: int = 0,
    num_samples: int = 1000,
) -> dict[str, Any]:
    """The JSON-able report of one evaluated fold; `patient_of` maps its clip ids to patients, and
    `selected_step` is the checkpoint's step (an ensemble's: its members' steps)."""
    clips = result.predictions["clip"]
    levels = {}
    for level, predictions in result.predictions.items():
        if level == "clip":  # bootstrap CIs draw whole patients
            groups = np.array([patient_of[c] for c in predictions.ids])
        else:  # a patient's (patient, class) units are drawn together
            groups = np.array([patient_of_unit(u) for u in predictions.ids])
        levels[level] = {
            "metrics": result.metrics[level],
            "ci95": metrics.headline_with_ci(predictions.labels, predictions.probs, groups=groups, seed=seed, num_samples=num_samples),
        }
    patients = result.predictions["patient"]
    headline = metrics.flat_headline({level: values["metrics"] for level, values in levels.items()})
    return {
        "schema_version": SCHEMA_VERSION,
        "class_names": list(result.class_names),
        "fold": fold,
        "num_folds": num_folds,
        "selected_step": selected_step if isinstance(selected_step, list) else int(selected_step),
        "test_patients": len(result.predictions["patient"].ids),
        "test_clips": len(clips.ids),
        "levels": levels,
        "headline": headline,
        "warnings": metrics.small_sample_warnings(patients.labels, patients.ids, result.class_names),
    }


def _cell(value: float, *, std: float | None = None, ci: list[float] | None = None, percent: bool = False) -> str:
    """`86.1%`, `86.1 ± 2.0%`, or `0.840 ± 0.020`, followed by `[low, high]` when a CI is given."""
    if value is None or not math.isfinite(value):
        return "n/a"
    scale, digits, unit = (100.0, 1, "%") if percent else (1.0, 3, "")
    text = f"{value * scale:.{digits}f}"
    if std is not None and math.isfinite(std):
        text += f" ± {std * scale:.{digits}f}"
    text += unit
    if ci and all(math.isfinite(c) for c in ci):
        text += f" [{ci[0] * scale:.{digits}f}, {ci[1] * scale:.{digits}f}]"
    return text


def markdown_table(rows: list[tuple[str, dict[str, Any]]]) -> str:
    """The reference README's table (Model | Accuracy | F1-Score | AUC) plus balanced accuracy.

    Each level dict has `metrics` and optionally `std` (over folds) and `ci95` per metric.
    """
    lines = [
        "| Model | Accuracy | Balanced accuracy | F1-Score (macro) | AUC |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, level in rows:
        cells = [
            _cell(
                level["metrics"][metric],
                std=level.get("std", {}).get(metric),
                ci=level.get("ci95", {}).get(metric),
                percent=percent,
            )
            for metric, percent in (("accuracy", True), ("balanced_accuracy", True), ("macro_f1", False), ("auc", False))
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_results(report_dir: Path, payload: dict[str, Any], markdown: list[str], predictions: dict[str, Any], class_names) -> None:
    """results.json, results.md and the plots of each level's predictions."""
    report_dir.mkdir(parents=True, exist_ok=True)
    write_atomically(report_dir / "results.json", json.dumps(payload, indent=2, allow_nan=True))
    write_atomically(report_dir / "results.md", "\n".join(markdown))
    for level, p in predictions.items():
        plots.roc_curves(p.labels, p.probs, class_names, report_dir / f"roc_{level}.png", f"ROC, {level} level")
        plots.confusion(p.labels, p.preds, class_names, report_dir / f"confusion_{level}.png", f"{level} level")
        plots.reliability(p.labels, p.probs, report_dir / f"reliability_{level}.png", f"Reliability, {level} level")


def write_fold(
    report_dir: Path, payload: dict[str, Any], result, patient_of: dict[str, str], clip_columns: dict[str, dict[str, float]] | None = None
) -> None:
    """`patient_of` maps clip ids to patients; `clip_columns`: extra per-clip numbers (e.g. gait
    parameters) for the clip CSV."""
    model_rows = [(f"{level} level", payload["levels"][level]) for level in ("patient", "clip")]
    steps = payload["selected_step"]
    checkpoints = f"checkpoint of step {steps}" if isinstance(steps, int) else f"members' checkpoints of steps {steps}"
    text = [
        f"# Test results, fold {payload['fold']} of {payload['num_folds']}",
        "",
        f"{payload['test_patients']} test patients, {payload['test_clips']} clips; {checkpoints}, "
        "chosen on validation patients only. Cells: value [95% CI, patient bootstrap].",
        "",
        markdown_table(model_rows),
        "",
        *(f"**Warning:** {line}" for line in payload["warnings"]),
    ]
    write_results(report_dir, payload, text, result.predictions, result.class_names)
    for level, predictions in result.predictions.items():
        write_predictions(report_dir / f"predictions_{level}s.csv", level, predictions, result.class_names, patient_of, clip_columns)


def write_predictions(
    path: Path,
    level: str,
    predictions,
    class_names,
    patient_of: dict[str, str],
    clip_columns=None,
    *,
    labelled: bool = True,
    folds: np.ndarray | None = None,
) -> None:
    """One row per clip (clip_id, patient_id, ...) or patient: fold (when `folds` gives each row's
    test fold, as pooled CV tables do), label (when `labelled`), prediction, p_<class>, then a clip's
    `clip_columns` in their order."""
    table = io.StringIO(newline="")
    writer = csv.writer(table)
    id_columns = ["clip_id", "patient_id"] if level == "clip" else ["patient_id"]
    extra = list(next(iter(clip_columns.values()))) if level == "clip" and clip_columns else []
    fold_column = ["fold"] if folds is not None else []
    writer.writerow(id_columns + fold_column + ["label"] * labelled + ["prediction"] + [f"p_{c}" for c in class_names] + extra)
    for i, identifier in enumerate(predictions.ids):
        ids = [identifier, patient_of[identifier]] if level == "clip" else [identifier]
        writer.writerow(
            ids
            + ([int(folds[i])] if folds is not None else [])
            + [class_names[predictions.labels[i]]] * labelled
            + [class_names[predictions.preds[i]]]
            + [f"{p:.6f}" for p in predictions.probs[i]]
            + [f"{clip_columns[identifier][k]:.4g}" for k in extra]
        )
    write_atomically(path, table.getvalue())


def read_predictions(path: Path, class_names: tuple[str, ...]) -> tuple[aggregate.Predictions, np.ndarray]:
    """A predictions CSV (write_predictions) back as Predictions, plus the patient of each row."""
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    ids = np.array([r.get("clip_id", r["patient_id"]) for r in rows])
    labels = np.array([class_names.index(r["label"]) for r in rows])
    probs = np.array([[float(r[f"p_{c}"]) for c in class_names] for r in rows])
    return aggregate.Predictions(ids, labels, probs), np.array([r["patient_id"] for r in rows])


def cv_summary(fold_reports: list[dict[str, Any]], report_dirs: list[Path], *, seed: int = 0, num_samples: int = 1000) -> dict[str, Any]:
    """Mean ± std over folds, and the pooled test predictions (every patient once) with their
    bootstrap CI; each level keeps its pooled rows (`predictions`, and per row `patients` and
    `folds`, the fold that tested it) for the pooled CSVs."""
    class_names = tuple(fold_reports[0]["class_names"])
    levels = {}
    for level in LEVELS:
        per_fold = [r["levels"][level]["metrics"] for r in fold_reports]
        predictions, patients = zip(*(read_predictions(d / f"predictions_{level}s.csv", class_names) for d in report_dirs))
        pooled = aggregate.Predictions(
            np.concatenate([p.ids for p in predictions]),
            np.concatenate([p.labels for p in predictions]),
            np.concatenate([p.probs for p in predictions]),
        )
        groups = np.concatenate(patients)
        # a mixed-diagnosis patient's (patient, class) units are drawn together, as in fold_payload
        drawn = np.array([patient_of_unit(u) for u in groups]) if level == "patient" else groups
        levels[level] = {
            "metrics": {m: float(np.nanmean([f[m] for f in per_fold])) for m in metrics.HEADLINE},
            "std": {m: float(np.nanstd([f[m] for f in per_fold])) for m in metrics.HEADLINE},
            "pooled": metrics.classification_metrics(pooled.labels, pooled.probs, class_names),
            "ci95": metrics.headline_with_ci(pooled.labels, pooled.probs, groups=drawn, seed=seed, num_samples=num_samples),
            "predictions": pooled,
            "patients": groups,
            "folds": np.concatenate([np.full(len(p.ids), r["fold"]) for p, r in zip(predictions, fold_reports)]),
        }
    return {"class_names": class_names, "num_folds": len(fold_reports), "levels": levels}


def write_cv_summary(
    report_dir: Path, summary: dict[str, Any], fold_reports: list[dict[str, Any]], *, members: list[str] | None = None
) -> None:
    """results.json / .md and plots of the pooled predictions, and predictions_clips.csv /
    predictions_patients.csv: every tested clip and patient once, with the fold that tested it.
    `members`: the run folders an ensemble fused (asd_jax/evaluation/ensemble.py), kept in results.json."""
    levels = {level: {k: v for k, v in data.items() if k not in POOLED_ROWS} for level, data in summary["levels"].items()}
    payload = {
        "schema_version": SCHEMA_VERSION,
        "class_names": list(summary["class_names"]),
        "num_folds": summary["num_folds"],
        "summary": levels,
        "folds": [{"fold": r["fold"], "selected_step": r["selected_step"], "headline": r["headline"]} for r in fold_reports],
        "headline": metrics.flat_headline({level: levels[level]["metrics"] for level in LEVELS}),
    } | ({"members": members} if members else {})
    rows = [(f"{level} level", levels[level]) for level in ("patient", "clip")]
    text = [
        f"# {summary['num_folds']}-fold patient-grouped cross-validation",
        "",
        "Cells: mean ± std over folds [95% CI, patient bootstrap of the pooled test predictions]. "
        "Each fold's checkpoint was chosen on its validation patients; each test fold was evaluated once.",
        "",
        markdown_table(rows),
        "",
    ]
    predictions = {level: summary["levels"][level]["predictions"] for level in LEVELS}
    write_results(report_dir, payload, text, predictions, summary["class_names"])
    for level in LEVELS:
        pooled = summary["levels"][level]
        patient_of = dict(zip(pooled["predictions"].ids.tolist(), pooled["patients"].tolist()))
        path = report_dir / f"predictions_{level}s.csv"
        write_predictions(path, level, pooled["predictions"], summary["class_names"], patient_of, folds=pooled["folds"])

"""Reports: results.json (schema in the README), results.md in the reference's table form, and
per-clip / per-patient prediction CSVs."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from asd_jax import metrics

SCHEMA_VERSION = 1


def fold_payload(result, fold, *, selected_step: int, seed: int = 0) -> dict[str, Any]:
    """The JSON-able report of one evaluated fold."""
    table = fold.table
    clips = result.predictions["clip"]
    levels = {}
    for level, predictions in result.predictions.items():
        groups = None
        if level == "clip":
            patient_of = dict(zip(table.clip_id.tolist(), table.patient_id.tolist()))
            groups = np.array([patient_of[c] for c in predictions.ids])
        levels[level] = {
            "metrics": result.metrics[level],
            "ci95": metrics.headline_with_ci(predictions.labels, predictions.probs, groups=groups, seed=seed),
        }
    headline = metrics.flat_headline({level: values["metrics"] for level, values in levels.items()})
    return {
        "schema_version": SCHEMA_VERSION,
        "class_names": list(result.class_names),
        "fold": fold.split.fold,
        "num_folds": fold.split.num_folds,
        "selected_step": int(selected_step),
        "test_patients": len(result.predictions["patient"].ids),
        "test_clips": len(clips.ids),
        "levels": levels,
        "headline": headline,
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


def write_plots(report_dir: Path, predictions: dict[str, Any], class_names: tuple[str, ...]) -> None:
    """ROC curves, confusion matrices and a reliability diagram per level."""
    from asd_jax import plots

    for level, p in predictions.items():
        plots.roc_curves(p.labels, p.probs, class_names, report_dir / f"roc_{level}.png", f"ROC, {level} level")
        plots.confusion(p.labels, p.preds, class_names, report_dir / f"confusion_{level}.png", f"{level} level")
        plots.reliability(p.labels, p.probs, report_dir / f"reliability_{level}.png", f"Reliability, {level} level")


def write_fold(
    report_dir: Path, payload: dict[str, Any], result, fold, clip_columns: dict[str, dict[str, float]] | None = None
) -> None:
    """`clip_columns`: extra per-clip numbers (e.g. gait parameters) for the clip CSV."""
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / "results.json").write_text(json.dumps(payload, indent=2, allow_nan=True))
    model_rows = [(f"{level} level", payload["levels"][level]) for level in ("patient", "clip")]
    text = [
        f"# Test results, fold {payload['fold']} of {payload['num_folds']}",
        "",
        f"{payload['test_patients']} test patients, {payload['test_clips']} clips; checkpoint of step "
        f"{payload['selected_step']}, chosen on validation patients only. Cells: value [95% CI, patient bootstrap].",
        "",
        markdown_table(model_rows),
        "",
    ]
    (report_dir / "results.md").write_text("\n".join(text))
    write_plots(report_dir, result.predictions, result.class_names)
    patient_of = dict(zip(fold.table.clip_id.tolist(), fold.table.patient_id.tolist()))
    for level, predictions in result.predictions.items():
        with (report_dir / f"predictions_{level}s.csv").open("w", newline="") as f:
            writer = csv.writer(f)
            id_columns = ["clip_id", "patient_id"] if level == "clip" else ["patient_id"]
            extra = sorted(next(iter(clip_columns.values()))) if level == "clip" and clip_columns else []
            writer.writerow(id_columns + ["label", "prediction"] + [f"p_{c}" for c in result.class_names] + extra)
            for i, identifier in enumerate(predictions.ids):
                ids = [identifier, patient_of[identifier]] if level == "clip" else [identifier]
                writer.writerow(
                    ids
                    + [result.class_names[predictions.labels[i]], result.class_names[predictions.preds[i]]]
                    + [f"{p:.6f}" for p in predictions.probs[i]]
                    + [f"{clip_columns[identifier][k]:.4g}" for k in extra]
                )

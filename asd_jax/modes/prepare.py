"""`--mode=prepare`: build the dataset and show what a run will train and test on."""

from __future__ import annotations

from pathlib import Path

import ml_collections
import numpy as np

from asd_jax.data import dataset, folds, splits


def _table(rows: list[dict], columns: list[str]) -> str:
    widths = [max(len(c), *(len(str(r[c])) for r in rows)) for c in columns]
    line = lambda values: "  ".join(str(v).rjust(w) for v, w in zip(values, widths))  # noqa: E731
    return "\n".join([line(columns), line("-" * w for w in widths)] + [line(r[c] for c in columns) for r in rows])


def summary_text(config: ml_collections.ConfigDict, workdir: Path) -> str:
    """Clips, patients and frames per diagnosis, and patients/clips per side of every fold."""
    clips = folds.load_table(config.data)
    table, label_map = clips.table, clips.label_map
    parts = [
        f"dataset {clips.info.full_name} in {clips.info.data_dir}",
        "",
        _table(dataset.summarize(clips.source), ["diagnosis", "clips", "patients", "frames"]),
        "",
        f"classes ({config.data.classes}): "
        + ", ".join(f"{i}={name}" for i, name in enumerate(label_map.class_names))
        + (f"; excluded: {', '.join(sorted(label_map.excluded))}" if label_map.excluded else ""),
        "",
    ]
    fold_rows = []
    for fold in range(config.data.num_folds):
        split = splits.make_splits(
            table,
            num_folds=config.data.num_folds,
            fold=fold,
            val_fraction=config.data.val_fraction,
            seed=config.data.split_seed,
        )
        row = {"fold": fold}
        for side in splits.SIDES:
            rows = split.rows(side)
            counts = np.bincount(table.label[rows], minlength=label_map.num_classes)
            row[f"{side} patients"] = len(split.patients[side])
            row[f"{side} clips"] = f"{len(rows)} ({'/'.join(map(str, counts))})"
        fold_rows.append(row)
    parts.append(f"{config.data.num_folds} patient-grouped folds (clips per class in brackets):")
    parts.append(_table(fold_rows, list(fold_rows[0])))
    return "\n".join(parts)


def run(invocation) -> None:
    print(summary_text(invocation.config, invocation.workdir))

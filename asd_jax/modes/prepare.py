"""`--mode=prepare`: build the dataset and show what a run will train and test on."""

from __future__ import annotations

from pathlib import Path

import ml_collections
import numpy as np

from asd_jax.data import dataset, folds, problems, splits, transforms, user_folder
from asd_jax.evaluation.report import text_table


def summary_text(config: ml_collections.ConfigDict, workdir: Path) -> str:
    """Clips, patients and frames per diagnosis, and patients/clips per side of every fold."""
    clips = folds.load_table(config.data)
    table, label_map = clips.table, clips.label_map
    parts = [
        f"dataset {clips.info.full_name} in {clips.info.data_dir}",
        "",
        text_table(dataset.summarize(clips.source), ["diagnosis", "clips", "patients", "frames"]),
        "",
        f"classes ({config.data.classes}): "
        + ", ".join(f"{i}={name}" for i, name in enumerate(label_map.class_names))
        + (f"; excluded: {', '.join(sorted(label_map.excluded))}" if label_map.excluded else ""),
        "",
    ]
    parts += skipped_text(clips.skipped) + short_clips_text(table, config.data) + mixed_text(table) + reference_split_text(config, table)
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
    parts.append(text_table(fold_rows, list(fold_rows[0])))
    return "\n".join(parts)


def skipped_text(skipped: list[dict[str, str]]) -> list[str]:
    """What data.on_error=skip left out, counted by file and problem."""
    lines = problems.summary_lines(skipped)
    return lines + [""] if lines else []


PAD_TEXT = {"edge": "by repeating their last frame", "missing": "with frames where no joint was seen"}


def short_clips_text(table: splits.ClipTable, data: ml_collections.ConfigDict) -> list[str]:
    """Clips shorter than one window at data.fps: each is padded as data.pad says
    (preprocess.crop_window): by its last frame, the walker standing still for the rest of the
    window, or by frames where nothing was seen."""
    frames = np.array([transforms.resampled_length(n, fps, data.fps) for n, fps in zip(table.num_frames, table.fps)])
    short = table.clip_id[frames < data.window].tolist()
    if not short:
        return []
    return [
        f"{len(short)} clip(s) are shorter than data.window={data.window} frames at {data.fps:g} fps "
        f"({', '.join(short[:5])}{', ...' if len(short) > 5 else ''}): padded {PAD_TEXT[data.pad]}",
        "",
    ]


def mixed_text(table: splits.ClipTable) -> list[str]:
    """How many patients have clips of more than one diagnosis (repeat visits, several disorders)."""
    mixed, units = table.mixed_patients("diagnosis"), table.mixed_patients("label")
    if not mixed:
        return []
    return [
        f"{len(mixed)} patient(s) have clips of more than one diagnosis ({', '.join(mixed[:5])}{', ...' if len(mixed) > 5 else ''}): "
        f"each stays on one side of every split; {len(units)} of them span several classes and are reported "
        "as one patient-level unit per class (patient|class)",
        "",
    ]


def reference_split_text(config: ml_collections.ConfigDict, table: splits.ClipTable) -> list[str]:
    """The reference's own train/val split of a whole_annotations.pkl, and its patient leakage."""
    side_of = user_folder.reference_split(Path(config.data.manual_dir)) if config.data.source == "files" else {}
    if not side_of:
        return []
    sides: dict[str, set[str]] = {}
    for clip_id, patient in zip(table.clip_id, table.patient_id):
        if clip_id in side_of:
            sides.setdefault(patient, set()).add(side_of[clip_id])
    both = sorted(p for p, s in sides.items() if len(s) > 1)
    return [
        f"{user_folder.REFERENCE_ANNOTATIONS}'s own split ({', '.join(sorted(set(side_of.values())))}) is not used: "
        f"it puts {len(both)} patient(s) on both of its sides; the folds below are patient-grouped",
        "",
    ]


def run(invocation) -> None:
    print(summary_text(invocation.config, invocation.workdir))

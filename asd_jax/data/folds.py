"""The clips one run works on: the dataset, its clip table and this fold's patient-grouped split.

`load_table` is the one path from `config.data` to clips (dataset built on first use → label map
→ ClipTable); `prepare_fold` adds the fold's split, saved to the workdir for audit and checked
against it on every later run; `external_fold` makes every clip of other data a test set.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import jax
import ml_collections
import numpy as np

from asd_jax.base.errors import ConfigError
from asd_jax.base.labels import LabelMap, parse_label_map, task_groups
from asd_jax.data import dataset, splits
from asd_jax.data.problems import Problems

SPLITS_FILE = "splits.json"


@dataclasses.dataclass
class FoldData:
    """The clips of one fold: source, metadata table and the train/validation/test split."""

    source: Any
    table: splits.ClipTable
    split: splits.Splits
    class_names: tuple[str, ...]


@dataclasses.dataclass
class Clips:
    """The dataset of `config.data` and the table of the clips that take part, with their labels."""

    source: dataset.DecodedSource
    table: splits.ClipTable
    label_map: LabelMap
    train_map: LabelMap | None  # finer training classes (data.train_classes), if any
    info: Any  # tfds.core.DatasetInfo: the dataset's name and where it lives
    skipped: list[dict[str, str]]  # what data.on_error=skip left out, building the dataset and here


def class_names(data: ml_collections.ConfigDict) -> tuple[str, ...]:
    """The classes of `config.data` (in label order), without reading any data."""
    return parse_label_map(data.classes).class_names


def load_table(data: ml_collections.ConfigDict) -> Clips:
    """The one path from `config.data` to clips: dataset (built if needed) → label map → ClipTable."""
    label_map, problems = parse_label_map(data.classes), Problems(data.on_error)
    train_map = parse_label_map(data.train_classes, "data.train_classes") if task_groups(data) else None
    source, info = dataset.load_source(data)
    origin = dataset.diagnosis_origin(data)
    table = splits.ClipTable.from_source(source, label_map, train_map=train_map, origin=origin, problems=problems)
    if train_map is not None:
        check_training_classes(table, train_map, origin)
    return Clips(source, table, label_map, train_map, info, dataset.skipped(info) + problems.skipped)


def check_training_classes(table: splits.ClipTable, train_map: LabelMap, origin: str) -> None:
    """A training class without clips (e.g. data labelled LCS_HipOA trained as LCS and HipOA apart)
    would be an output the model never learns."""
    empty = [name for label, name in enumerate(train_map.class_names) if not (table.train_label == label).any()]
    if empty:
        raise ConfigError(
            f"{origin}: no clip has a diagnosis of training class {', '.join(map(repr, empty))} of data.train_classes "
            f"(diagnoses present: {', '.join(sorted(set(table.diagnosis)))}); set data.train_classes='' to train on data.classes"
        )


def prepare_fold(config: ml_collections.ConfigDict, workdir: Path | None) -> FoldData:
    """Loads the clips and makes the fold's patient-grouped split.

    The split is saved to `<workdir>/splits.json` for audit; a later run in the same workdir must
    produce the same split, else the data or split settings changed under a checkpoint.
    """
    clips = load_table(config.data)
    split = splits.make_splits(
        clips.table,
        num_folds=config.data.num_folds,
        fold=config.data.fold,
        val_fraction=config.data.val_fraction,
        seed=config.data.split_seed,
    )
    if workdir is not None:
        path = workdir / SPLITS_FILE
        if path.exists():
            splits.check_same_split(split, path)
        elif jax.process_index() == 0:
            splits.save_splits(split, clips.table, path)
    return FoldData(clips.source, clips.table, split, clips.label_map.class_names)


def external_fold(data: ml_collections.ConfigDict, class_names: tuple[str, ...]) -> FoldData:
    """All clips of `data` as a test set for a model trained elsewhere (same classes)."""
    clips = load_table(data)
    if clips.label_map.class_names != tuple(class_names):
        raise ConfigError(f"data.classes gives {clips.label_map.class_names}, but the model was trained on {tuple(class_names)}")
    return test_only(clips.source, clips.table, clips.label_map.class_names)


def test_only(source: Any, table: splits.ClipTable, class_names: tuple[str, ...]) -> FoldData:
    """Every clip of `table` on the test side (external test sets, prediction)."""
    rows = np.arange(len(table))
    patients = sorted(set(table.patient_id))
    split = splits.Splits(rows[:0], rows[:0], rows, {"train": [], "val": [], "test": patients}, fold=-1, num_folds=0, seed=-1)
    return FoldData(source, table, split, tuple(class_names))

"""Patient-grouped, diagnosis-stratified folds, with validation patients inside the training side.

Test patients are one fold of a seeded StratifiedGroupKFold; the validation patients (for model
selection and early stopping) are a grouped, stratified share of the remaining patients, so the test
fold is never used to choose a checkpoint. No patient may appear on two sides: that is checked
whenever a split is made or loaded.

Labels are per clip: a patient may have clips of several diagnoses (repeat visits, volunteers
walking several gait disorders). Such a patient is still one group, kept whole on one side of
every split (StratifiedGroupKFold stratifies on the clips' labels while keeping groups whole).
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

from asd_jax.base.errors import ConfigError, LeakageError, UserDataError
from asd_jax.base.files import write_atomically
from asd_jax.base.labels import LabelMap
from asd_jax.data.problems import Problems

SIDES = ("train", "val", "test")


@dataclasses.dataclass(frozen=True)
class ClipTable:
    """Metadata of the clips taking part (diagnoses the LabelMap excludes are left out).

    Rows are what splits and batches refer to; `record` maps a row to its index in the source.
    """

    record: np.ndarray
    clip_id: np.ndarray
    patient_id: np.ndarray
    diagnosis: np.ndarray
    label: np.ndarray
    train_label: np.ndarray  # the class the model is trained on (data.train_classes); = label by default
    num_frames: np.ndarray
    fps: np.ndarray
    class_names: tuple[str, ...] = ()  # of the labels; () for prediction, which has none

    def __len__(self) -> int:
        return len(self.record)

    @classmethod
    def from_source(
        cls, source: Any, label_map: LabelMap, *, train_map: LabelMap | None = None, origin: str = "the data",
        problems: Problems | None = None,
    ) -> ClipTable:
        """The clips whose diagnosis takes part. A diagnosis `label_map` (or `train_map`, the
        training classes when they are finer) does not know is a UserDataError naming `origin`
        (the file the diagnoses came from) and the clip, or, under data.on_error=skip
        (`problems`), leaves its clip out."""
        problems = problems or Problems()
        columns: dict[str, list] = defaultdict(list)
        found = set()
        for index in range(len(source)):
            record = source[index]
            clip_id, diagnosis = record["clip_id"], record["diagnosis"]
            found.add(diagnosis)
            field = "data.classes"
            try:
                if not label_map.includes(diagnosis):
                    continue
                field = "data.train_classes"
                train_label = (train_map or label_map).label(diagnosis)
            except ConfigError as err:
                problems.clip(UserDataError(origin, str(err), clip_id, kind=f"diagnosis not in {field}"))
                continue
            cls._append(columns, index, record, label_map.label(diagnosis), train_label)
        if not columns:
            left_out = len(problems.left_out())
            why = (
                f"data.on_error=skip left out all {left_out}"
                if left_out
                else f"data.classes excludes all its diagnoses ({', '.join(sorted(found))})"
            )
            raise UserDataError(origin, f"no clip takes part: {why}; set --config.data.classes to a mapping that includes them")
        return cls._from_columns(columns, label_map.class_names)

    @classmethod
    def for_prediction(cls, source: Any) -> ClipTable:
        """Every clip of `source`, diagnosed or not (labels are 0: nothing reads them)."""
        columns: dict[str, list] = defaultdict(list)
        for index in range(len(source)):
            cls._append(columns, index, source[index], 0, 0)
        return cls._from_columns(columns, ())

    @staticmethod
    def _append(columns: dict[str, list], index: int, record: dict[str, Any], label: int, train_label: int) -> None:
        columns["record"].append(index)
        columns["clip_id"].append(record["clip_id"])
        columns["patient_id"].append(record["patient_id"])
        columns["diagnosis"].append(record["diagnosis"])
        columns["label"].append(label)
        columns["train_label"].append(train_label)
        columns["num_frames"].append(record["pose"].shape[0])
        columns["fps"].append(float(record["fps"]))

    @classmethod
    def _from_columns(cls, columns: dict[str, list], class_names: tuple[str, ...]) -> ClipTable:
        dtypes = {"record": np.int64, "label": np.int32, "train_label": np.int32, "num_frames": np.int64, "fps": np.float32}
        return cls(**{k: np.asarray(v, dtypes.get(k, object)) for k, v in columns.items()}, class_names=class_names)

    def mixed_patients(self, column: str = "diagnosis") -> list[str]:
        """Patients whose clips have more than one value of `column` ('diagnosis' or 'label')."""
        values = getattr(self, column)
        return sorted(p for p in set(self.patient_id) if len(set(values[self.patient_id == p])) > 1)


@dataclasses.dataclass(frozen=True)
class Splits:
    """Table rows per side, and the fold they came from."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    patients: dict[str, list[str]]
    fold: int
    num_folds: int
    seed: int

    def rows(self, side: str) -> np.ndarray:
        return getattr(self, side)


def _grouped_fold(labels: np.ndarray, groups: np.ndarray, num_folds: int, fold: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    splitter = StratifiedGroupKFold(n_splits=num_folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The least populated class")
        folds = list(splitter.split(np.zeros(len(labels)), labels, groups))
    return folds[fold]


def check_enough_patients(table: ClipTable, num_folds: int) -> None:
    """Every class (of the label map, so one without clips too) needs a patient in every test fold."""
    for label in range(len(table.class_names)) if table.class_names else np.unique(table.label):
        patients = np.unique(table.patient_id[table.label == label])
        if not len(patients):
            raise ConfigError(
                f"class {label} ({table.class_names[label]}) has no clips, so the model could not learn it: "
                "add its clips, or leave it out of --config.data.classes"
            )
        if len(patients) < num_folds:
            diagnoses = sorted(set(table.diagnosis[table.label == label]))
            raise ConfigError(
                f"class {label} ({', '.join(diagnoses)}) has {len(patients)} patients, fewer than "
                f"data.num_folds={num_folds}: lower num_folds or add patients"
            )


def check_classes_per_side(table: ClipTable, sides: dict[str, np.ndarray], fold: int) -> None:
    """The training side must hold every class (one never trained on is never predicted) and the
    test side at least two (a one-class test fold has no AUC, and its accuracy is one class's
    recall). A one-class validation side is allowed: small cohorts give it one or two patients."""
    name = lambda label: table.class_names[label] if table.class_names else str(label)
    fix = "add patients of the rarer classes, or change data.num_folds, data.val_fraction or data.split_seed"
    trained = set(np.unique(table.label[sides["train"]]).tolist())
    untrained = [name(label) for label in range(len(table.class_names)) if label not in trained]
    if untrained:
        raise ConfigError(f"fold {fold}: no training clip is of class {', '.join(untrained)}, so the model could not learn it; {fix}")
    tested = np.unique(table.label[sides["test"]])
    if len(tested) < 2:
        raise ConfigError(f"fold {fold}: every test clip is of one class ({', '.join(name(t) for t in tested)}); {fix}")


def make_splits(table: ClipTable, *, num_folds: int, fold: int, val_fraction: float, seed: int) -> Splits:
    """Test = fold `fold` of K; validation = a grouped, stratified share of the other patients."""
    if num_folds < 2:
        raise ConfigError(f"data.num_folds={num_folds}: K-fold needs at least 2 folds (a test fold and the rest)")
    if not 0 <= fold < num_folds:
        raise ConfigError(f"data.fold={fold} is outside 0..{num_folds - 1}")
    if not 0 < val_fraction < 1:
        raise ConfigError(f"data.val_fraction={val_fraction} must be in (0, 1)")
    check_enough_patients(table, num_folds)
    rest, test = _grouped_fold(table.label, table.patient_id, num_folds, fold, seed)
    val_folds = max(2, int(round(1 / val_fraction)))
    left = len(np.unique(table.patient_id[rest]))
    largest_class = int(np.bincount(table.label[rest]).max())
    if min(left, largest_class) < val_folds:  # StratifiedGroupKFold would raise a ValueError of its own
        what = f"{left} patients lie" if left < val_folds else f"the largest class has {largest_class} clips"
        raise ConfigError(
            f"fold {fold}: {what} outside the test fold, too few to hold out 1 in {val_folds} for validation "
            f"(data.val_fraction={val_fraction}); add patients, raise data.val_fraction or lower data.num_folds"
        )
    train_part, val_part = _grouped_fold(table.label[rest], table.patient_id[rest], val_folds, 0, seed + 1)
    train, val = rest[train_part], rest[val_part]
    sides = {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)}
    check_classes_per_side(table, sides, fold)
    patients = {side: sorted(set(table.patient_id[rows])) for side, rows in sides.items()}
    split = Splits(**sides, patients=patients, fold=fold, num_folds=num_folds, seed=seed)
    check_no_leakage(split)
    return split


def check_no_leakage(split: Splits) -> None:
    """Raises LeakageError naming every patient found on two sides."""
    problems = []
    for i, a in enumerate(SIDES):
        for b in SIDES[i + 1 :]:
            shared = sorted(set(split.patients[a]) & set(split.patients[b]))
            if shared:
                problems.append(f"{a} and {b} share patient(s) {', '.join(shared)}")
    if problems:
        raise LeakageError("patient leakage across the split: " + "; ".join(problems))


def save_splits(split: Splits, table: ClipTable, path: str | Path) -> None:
    """JSON for audit: patients, clip ids and per-diagnosis counts per side."""
    payload: dict[str, Any] = {"fold": split.fold, "num_folds": split.num_folds, "seed": split.seed}
    for side in SIDES:
        rows = split.rows(side)
        diagnoses, counts = np.unique(table.diagnosis[rows].astype(str), return_counts=True)
        payload[side] = {
            "patients": split.patients[side],
            "clips": sorted(table.clip_id[rows].tolist()),
            "clips_per_diagnosis": dict(zip(diagnoses.tolist(), counts.tolist())),
        }
    write_atomically(path, json.dumps(payload, indent=1))


def load_patients(path: str | Path) -> dict[str, list[str]]:
    """The patients per side of a saved split (checked for leakage)."""
    payload = json.loads(Path(path).read_text())
    patients = {side: payload[side]["patients"] for side in SIDES}
    check_no_leakage(Splits(np.empty(0), np.empty(0), np.empty(0), patients, payload["fold"], payload["num_folds"], payload["seed"]))
    return patients


def check_same_split(split: Splits, path: str | Path) -> None:
    """A resumed run must see the split its checkpoints were trained on."""
    saved = load_patients(path)
    if saved != split.patients:
        raise ConfigError(
            f"{path}: the patients of this fold differ from the ones saved with the checkpoints; "
            "the data or the split settings changed. Use a new --workdir."
        )

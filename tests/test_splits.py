"""Patient-grouped folds: no leakage, every patient tested once, deterministic, saved for audit."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from asd_jax.base.errors import UserDataError
from asd_jax.base.labels import parse_label_map
from asd_jax.data import splits


class FakeSource(list):
    """Records with just what ClipTable reads."""


def fake_source(num_patients=30, clips_per_patient=4, seed=0):
    rng = np.random.default_rng(seed)
    diagnoses = ["ASD", "DHS", "LCS", "HipOA", "normal"]
    records = []
    for p in range(num_patients):
        diagnosis = diagnoses[p % len(diagnoses)]
        for c in range(clips_per_patient + int(rng.integers(3))):
            pose = np.zeros((40 + c, 17, 3), np.float32)
            records.append({"clip_id": f"p{p}_c{c}", "patient_id": f"p{p}", "diagnosis": diagnosis, "pose": pose, "fps": 30.0})
    return FakeSource(records)


@pytest.fixture
def table():
    return splits.ClipTable.from_source(fake_source(), parse_label_map("4"))


def test_every_patient_is_tested_exactly_once_and_never_leaks(table):
    tested = []
    for fold in range(5):
        split = splits.make_splits(table, num_folds=5, fold=fold, val_fraction=0.2, seed=0)
        sides = [set(split.patients[s]) for s in splits.SIDES]
        assert not (sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2])
        assert set().union(*sides) == set(table.patient_id)
        assert sorted(np.concatenate([split.train, split.val, split.test])) == list(range(len(table)))
        assert len(np.unique(table.label[split.test])) == 4  # stratified: every class in every test fold
        tested += split.patients["test"]
    assert sorted(tested) == sorted(set(table.patient_id))


def test_splits_are_deterministic_per_seed(table):
    a = splits.make_splits(table, num_folds=5, fold=2, val_fraction=0.2, seed=7)
    b = splits.make_splits(table, num_folds=5, fold=2, val_fraction=0.2, seed=7)
    c = splits.make_splits(table, num_folds=5, fold=2, val_fraction=0.2, seed=8)
    assert a.patients == b.patients and a.patients != c.patients


def test_leakage_check_fires_on_a_crafted_overlap(table):
    split = splits.make_splits(table, num_folds=5, fold=0, val_fraction=0.2, seed=0)
    leaked = dict(split.patients, val=split.patients["val"] + [split.patients["test"][0]])
    bad = splits.Splits(split.train, split.val, split.test, leaked, 0, 5, 0)
    with pytest.raises(splits.LeakageError, match=f"val and test share patient\\(s\\) {split.patients['test'][0]}"):
        splits.check_no_leakage(bad)


def test_leakage_error_names_every_shared_patient_of_every_pair():
    patients = {"train": ["p1", "p2", "p3"], "val": ["p4", "p5"], "test": ["p1", "p3", "p5"]}
    bad = splits.Splits(np.empty(0), np.empty(0), np.empty(0), patients, 0, 5, 0)
    message = "patient leakage across the split: train and test share patient(s) p1, p3; val and test share patient(s) p5"
    with pytest.raises(splits.LeakageError) as err:
        splits.check_no_leakage(bad)
    assert str(err.value) == message


def test_saved_split_round_trips_and_a_changed_split_is_refused(table, tmp_path):
    split = splits.make_splits(table, num_folds=5, fold=0, val_fraction=0.2, seed=0)
    path = tmp_path / "splits.json"
    splits.save_splits(split, table, path)
    payload = json.loads(path.read_text())
    assert (payload["fold"], payload["num_folds"], payload["seed"]) == (0, 5, 0)
    assert payload["test"]["patients"] == split.patients["test"]
    assert payload["test"]["clips"] == sorted(table.clip_id[split.test])
    assert sum(payload["test"]["clips_per_diagnosis"].values()) == len(split.test)
    splits.check_same_split(split, path)
    other = splits.make_splits(table, num_folds=5, fold=1, val_fraction=0.2, seed=0)
    refused = "differ from the ones saved with the checkpoints; the data or the split settings changed. Use a new --workdir.$"
    with pytest.raises(ValueError, match=refused):
        splits.check_same_split(other, path)


def test_excluded_diagnoses_are_dropped_and_unknown_ones_refused():
    table = splits.ClipTable.from_source(fake_source(), parse_label_map("3"))
    assert "normal" not in set(table.diagnosis)
    with pytest.raises(ValueError, match=r"^the data, clip 'p4_c0': diagnosis 'normal' is not in the class mapping"):
        splits.ClipTable.from_source(fake_source(), parse_label_map("ASD:a,DHS:b,LCS:c,HipOA:c"))
    nothing = parse_label_map("ASD:-,DHS:-,LCS:-,HipOA:-,normal:-,LCS_HipOA:a,other:b")
    with pytest.raises(
        UserDataError,
        match=r"^the data: no clip takes part: data\.classes excludes all its diagnoses \(ASD, DHS, HipOA, LCS, normal\); "
        r"set --config\.data\.classes to a mapping that includes them$",
    ):
        splits.ClipTable.from_source(fake_source(), nothing)


def test_clip_table_columns():
    """Rows point back at their source record, with the pose's frame count and the fps; the
    column types are fixed (ids as Python strings), whatever the source's."""
    source = fake_source(num_patients=5)
    table = splits.ClipTable.from_source(source, parse_label_map("3"))  # 'normal' (patient p4) left out
    kept = [i for i, r in enumerate(source) if r["diagnosis"] != "normal"]
    assert table.record.tolist() == kept
    assert table.clip_id.tolist() == [source[i]["clip_id"] for i in kept]
    assert table.num_frames[:3].tolist() == [40, 41, 42]  # p0's clips c0, c1, c2 have 40, 41, 42 frames
    assert table.fps.tolist() == [30.0] * len(kept)
    assert table.label.tolist()[:1] == [0] and set(table.label.tolist()) == {0, 1, 2}
    dtypes = {name: getattr(table, name).dtype for name in ("record", "clip_id", "patient_id", "diagnosis", "label", "num_frames", "fps")}
    assert dtypes == {
        "record": np.int64, "clip_id": object, "patient_id": object, "diagnosis": object,
        "label": np.int32, "num_frames": np.int64, "fps": np.float32,
    }
    everything = splits.ClipTable.for_prediction(source)  # no label map: undiagnosed clips are predicted too
    assert everything.record.tolist() == list(range(len(source))) and everything.label.tolist() == [0] * len(source)
    assert everything.diagnosis.tolist() == [r["diagnosis"] for r in source]


def test_too_few_patients_for_the_folds_is_an_error():
    table = splits.ClipTable.from_source(fake_source(num_patients=10), parse_label_map("4"))
    with pytest.raises(ValueError, match="fewer than data.num_folds=5"):
        splits.make_splits(table, num_folds=5, fold=0, val_fraction=0.2, seed=0)
    merged = splits.ClipTable.from_source(fake_source(num_patients=10), parse_label_map("ASD:a,DHS:a,LCS:b,HipOA:b,normal:-"))
    message = "class 0 (ASD, DHS) has 4 patients, fewer than data.num_folds=5: lower num_folds or add patients"
    with pytest.raises(splits.ConfigError) as err:
        splits.check_enough_patients(merged, 5)
    assert str(err.value) == message


@pytest.mark.parametrize("num_folds", [1, 0])
def test_fewer_than_two_folds_is_a_one_line_error_not_a_library_failure(num_folds):
    table = splits.ClipTable.from_source(fake_source(num_patients=10), parse_label_map("4"))
    with pytest.raises(splits.ConfigError, match=rf"^data.num_folds={num_folds}: K-fold needs at least 2 folds"):
        splits.make_splits(table, num_folds=num_folds, fold=0, val_fraction=0.2, seed=0)


@pytest.mark.parametrize(
    "fold, val_fraction, message",
    [
        (5, 0.2, r"^data.fold=5 is outside 0..4$"),
        (-1, 0.2, r"^data.fold=-1 is outside 0..4$"),
        (0, 0.0, r"^data.val_fraction=0.0 must be in \(0, 1\)$"),
        (0, 1.0, r"^data.val_fraction=1.0 must be in \(0, 1\)$"),
        (0, 1.5, r"^data.val_fraction=1.5 must be in \(0, 1\)$"),
    ],
)
def test_fold_and_val_fraction_out_of_range_are_config_errors(table, fold, val_fraction, message):
    with pytest.raises(splits.ConfigError, match=message):
        splits.make_splits(table, num_folds=5, fold=fold, val_fraction=val_fraction, seed=0)


@pytest.mark.parametrize("val_fraction", [0.2, 0.25, 0.5])
def test_validation_is_val_fraction_of_the_non_test_patients(table, val_fraction):
    """Patients are whole, so the share is met to within about a patient (23 to 25 non-test
    patients here: a fifth is 5, a quarter 6, a half 12)."""
    for fold in range(5):
        split = splits.make_splits(table, num_folds=5, fold=fold, val_fraction=val_fraction, seed=0)
        rest = len(split.patients["train"]) + len(split.patients["val"])
        assert abs(len(split.patients["val"]) - val_fraction * rest) <= 1.5, (fold, len(split.patients["val"]), rest)


def test_a_class_with_fewer_clips_than_folds_splits_without_warnings():
    """scikit-learn warns when a class has fewer clips than folds; with few patients that is
    expected (check_enough_patients has checked the patients), so it is silenced."""
    source = [r for r in fake_source(num_patients=10) if r["diagnosis"] != "normal" or r["clip_id"].endswith("_c0")]
    table = splits.ClipTable.from_source(source, parse_label_map("4"))  # 'normal': two patients, one clip each
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        split = splits.make_splits(table, num_folds=2, fold=0, val_fraction=0.2, seed=0)
    assert len(split.patients["test"]) > 0

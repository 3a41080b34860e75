"""Patient-grouped folds: no leakage, every patient tested once, deterministic, saved for audit."""

from __future__ import annotations

import json

import numpy as np
import pytest

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
            records.append(
                {"clip_id": f"p{p}_c{c}", "patient_id": f"p{p}", "diagnosis": diagnosis, "pose": np.zeros((40 + c, 17, 3), np.float32), "fps": 30.0}
            )
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


def test_saved_split_round_trips_and_a_changed_split_is_refused(table, tmp_path):
    split = splits.make_splits(table, num_folds=5, fold=0, val_fraction=0.2, seed=0)
    path = tmp_path / "splits.json"
    splits.save_splits(split, table, path)
    payload = json.loads(path.read_text())
    assert payload["test"]["patients"] == split.patients["test"]
    assert sum(payload["test"]["clips_per_diagnosis"].values()) == len(split.test)
    splits.check_same_split(split, path)
    other = splits.make_splits(table, num_folds=5, fold=1, val_fraction=0.2, seed=0)
    with pytest.raises(ValueError, match="differ from the ones saved"):
        splits.check_same_split(other, path)


def test_excluded_diagnoses_are_dropped_and_unknown_ones_refused():
    table = splits.ClipTable.from_source(fake_source(), parse_label_map("3"))
    assert "normal" not in set(table.diagnosis)
    with pytest.raises(ValueError, match="'normal' is not in the class mapping"):
        splits.ClipTable.from_source(fake_source(), parse_label_map("ASD:a,DHS:b,LCS:c,HipOA:c"))


def test_too_few_patients_for_the_folds_is_an_error():
    table = splits.ClipTable.from_source(fake_source(num_patients=10), parse_label_map("4"))
    with pytest.raises(ValueError, match="fewer than data.num_folds=5"):
        splits.make_splits(table, num_folds=5, fold=0, val_fraction=0.2, seed=0)

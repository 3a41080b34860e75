"""A patient with clips of several diagnoses (repeat visits, volunteers walking several disorders):
the folder loads, the patient stays whole on one side of every fold, patient-level results are
per (patient, class) unit, and --mode=prepare counts such patients."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np

from asd_jax.base.labels import parse_label_map
from asd_jax.data import splits
from asd_jax.data.user_folder import read_user_folder
from asd_jax.evaluation import aggregate

# In the tiny cohort (conftest.TINY_COHORT): P004 is ASD, P010 DHS, P001 HipOA, P002 LCS.
MERGED = {"P010": "P004", "P002": "P001"}  # P004: ASD + DHS (two classes); P001: HipOA + LCS (one class, LCS_HipOA)


def with_mixed_patients(cohort: Path, folder: Path) -> Path:
    """A copy of the cohort in which P004 also walked P010's DHS clips and P001 P002's LCS clips."""
    shutil.copytree(cohort, folder)
    with (folder / "clips.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert {r["patient_id"]: r["diagnosis"] for r in rows if r["patient_id"] in ("P004", "P010", "P001", "P002")} == {
        "P004": "ASD", "P010": "DHS", "P001": "HipOA", "P002": "LCS"
    }
    for row in rows:
        row["patient_id"] = MERGED.get(row["patient_id"], row["patient_id"])
    with (folder / "clips.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return folder


def test_a_mixed_patient_loads_and_stays_on_one_side_of_every_fold(tiny_cohort, tmp_path):
    records = list(read_user_folder(with_mixed_patients(tiny_cohort, tmp_path / "mixed")))
    table = splits.ClipTable.from_source(records, parse_label_map("3"))
    assert table.mixed_patients("diagnosis") == table.mixed_patients() == ["P001", "P004"]  # by diagnosis unless asked
    assert table.mixed_patients("label") == ["P004"]  # LCS and HipOA are one class
    assert set(table.diagnosis[table.patient_id == "P004"]) == {"ASD", "DHS"}
    for num_folds in (2, 3):
        tested = []
        for fold in range(num_folds):
            split = splits.make_splits(table, num_folds=num_folds, fold=fold, val_fraction=0.2, seed=0)
            sides = [side for side in splits.SIDES if "P004" in split.patients[side]]
            assert len(sides) == 1, (num_folds, fold, sides)
            rows = np.flatnonzero(table.patient_id == "P004")
            assert set(rows) <= set(split.rows(sides[0]))  # every clip of the patient on that side
            tested += split.patients["test"]
        assert sorted(tested) == sorted(set(table.patient_id))  # each patient tested once


def test_patient_level_units_are_per_patient_and_class(tiny_cohort, tmp_path):
    records = list(read_user_folder(with_mixed_patients(tiny_cohort, tmp_path / "mixed")))
    table = splits.ClipTable.from_source(records, parse_label_map("3"))
    probs = np.random.default_rng(0).dirichlet(np.ones(3), len(table))
    clips = aggregate.Predictions(table.clip_id, table.label, probs)
    patients = aggregate.patients_from_clips(clips, table.patient_id, ("ASD", "DHS", "LCS_HipOA"))
    ids = patients.ids.tolist()
    assert "P004|ASD" in ids and "P004|DHS" in ids and "P004" not in ids
    assert "P001" in ids and not any(i.startswith("P001|") for i in ids)
    dhs = (table.patient_id == "P004") & (table.diagnosis == "DHS")
    np.testing.assert_allclose(patients.probs[ids.index("P004|DHS")], probs[dhs].mean(0))
    assert patients.labels[ids.index("P004|DHS")] == 1
    assert len(ids) == len(set(table.patient_id)) + 1


def test_prepare_counts_patients_with_several_diagnoses(tiny_cohort, tmp_path):
    from asd_jax.modes import prepare
    from configs.crossattn import get_config

    config = get_config("smoke")
    config.data.source, config.data.manual_dir = "files", str(with_mixed_patients(tiny_cohort, tmp_path / "mixed"))
    config.data.data_dir = str(tmp_path / "tfds")
    text = prepare.summary_text(config, tmp_path / "run")
    assert "2 patient(s) have clips of more than one diagnosis (P001, P004)" in text
    assert "1 of them span several classes" in text

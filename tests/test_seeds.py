"""Repeated CV over training seeds (asd_jax/evaluation/seeds.py, `asd_jax.modes.compare --seeds`)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from asd_jax.evaluation import aggregate, seeds
from asd_jax.modes import compare

CLASSES = ["ASD", "DHS", "LCS_HipOA"]
LABELS = {"P1": 0, "P2": 1, "P3": 2, "P4": 0}


def levels(predicted: dict[str, int], patient_f1: float, clip_f1: float = 0.5, auc: float = 0.8) -> dict:
    """A CV summary's levels, reduced to what the seed table reads: pooled patient predictions
    (each patient's probability mass on `predicted`) and the fold means."""
    ids = np.array(list(LABELS))
    probs = np.full((len(ids), 3), 0.1)
    probs[np.arange(len(ids)), [predicted.get(p, LABELS[p]) for p in ids]] = 0.8
    pooled = aggregate.Predictions(ids, np.array([LABELS[p] for p in ids]), probs)
    return {
        "patient": {"metrics": {"macro_f1": patient_f1, "auc": auc}, "predictions": pooled},
        "clip": {"metrics": {"macro_f1": clip_f1}},
        "class_names": CLASSES,
    }


RESULTS = {
    "cnn": {0: levels({"P1": 1, "P3": 0}, 0.70), 1: levels({"P1": 2}, 0.90), 2: levels({}, 0.80)},
    "features": {0: levels({"P1": 1}, 0.75, clip_f1=0.7, auc=0.9)},
}


def test_misdiagnosed_patients_are_the_argmax_misses_with_the_class_given():
    assert seeds.misdiagnosed(RESULTS["cnn"][0]) == {"P1": 1, "P3": 0}
    assert seeds.misdiagnosed(RESULTS["cnn"][2]) == {}
    assert seeds.truth_of(RESULTS["cnn"][0]) == LABELS


def test_a_seed_row_is_the_mean_and_spread_over_seeds():
    row = seeds.seed_row(RESULTS["cnn"])
    assert row["seeds"] == [0, 1, 2] and row["misdiagnosed"] == [2, 1, 0]
    f1 = row["patient_macro_f1"]
    assert f1["mean"] == pytest.approx(0.8) and f1["std"] == pytest.approx(np.std([0.7, 0.9, 0.8]))
    assert (f1["min"], f1["max"], f1["per_seed"]) == (0.7, 0.9, [0.7, 0.9, 0.8])


def test_often_missed_counts_each_models_seeds_and_keeps_patients_at_least_half_the_runs_miss():
    # four runs: P1 missed by three (two cnn seeds and the forest), P3 by one
    assert seeds.miss_counts(RESULTS) == {"P1": {"cnn": 2, "features": 1}, "P3": {"cnn": 1, "features": 0}}
    assert seeds.often_missed(RESULTS) == [("P1", {"cnn": 2, "features": 1})]
    assert [p for p, _ in seeds.often_missed(RESULTS, share=0.25)] == ["P1", "P3"]


def test_the_seed_document_gives_each_model_its_spread_and_the_patients_most_runs_miss():
    notes = {"P1": "ASD, severity 0.02"}
    text = compare.seeds_markdown(RESULTS, "python -m asd_jax.modes.compare --seeds 0,1,2", notes, "## Reading\n\nkept\n")
    rows = {line.split(" | ")[0].strip("| "): line.strip("| ").split(" | ") for line in text.splitlines() if line.startswith("| ")}
    assert rows["cnn"][1:4] == ["0, 1, 2", "0.800 ± 0.082 [0.700, 0.900]", "0.700, 0.900, 0.800"]
    assert rows["cnn"][4:7] == ["0.500 ± 0.000 [0.500, 0.500]", "0.800 ± 0.000 [0.800, 0.800]", "2, 1, 0"]
    assert rows["features"][1:3] == ["0", "0.750 ± 0.000 [0.750, 0.750]"]
    assert rows["P1"] == ["P1", "ASD", "ASD, severity 0.02", "2/3", "1/1"] and "P3" not in rows
    assert "misdiagnosed of 4" in text and text.endswith("## Reading\n\nkept\n")


def test_patient_notes_name_each_synthetic_patients_walk_as_the_cohort_drew_it(tiny_cohort):
    from conftest import TINY_COHORT

    config = compare.load_config("crossattn", [], variant="smoke")
    config.data.synthetic.update({"num_patients": TINY_COHORT.num_patients, "num_clips": TINY_COHORT.num_clips, "seed": TINY_COHORT.seed})
    notes = compare.patient_notes(config)
    with (tiny_cohort / "ground_truth.csv").open() as f:
        truth = {r["patient_id"]: f"{r['signature']}, severity {float(r['severity']):.2f}" for r in csv.DictReader(f)}
    assert notes == truth
    config.data.source = "files"
    assert compare.patient_notes(config) == {}


def run_compare(tmp_path, data_dir, *extra):
    from conftest import ROOT

    overrides = [f"data.data_dir={data_dir}", "data.num_folds=2"]
    command = [sys.executable, "-m", "asd_jax.modes.compare", "--variant", "smoke"]
    command += ["--workdir", str(tmp_path / "runs"), "--out", str(tmp_path / "seeds.md")]
    command += [arg for o in overrides for arg in ("--override", o)] + list(extra)
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_compare_over_seeds_runs_each_seed_once_and_tabulates_them(tmp_path, data_dir):
    proc = run_compare(tmp_path, data_dir, "--seeds", "0,1", "features")
    assert proc.returncode == 0, proc.stderr[-3000:]
    per_seed = []
    for seed in (0, 1):
        run = tmp_path / "runs" / "features" / f"seed_{seed}"
        assert json.loads((run / "fold_0" / "config.json").read_text())["seed"] == seed
        per_seed.append(json.loads((run / "report" / "results.json").read_text())["summary"]["patient"]["metrics"]["macro_f1"])
    text = (tmp_path / "seeds.md").read_text()
    row = next(line for line in text.splitlines() if line.startswith("| features |")).strip("| ").split(" | ")
    assert row[1] == "0, 1" and row[3] == ", ".join(f"{v:.3f}" for v in per_seed)
    assert float(row[2].split(" ± ")[0]) == pytest.approx(np.mean(per_seed), abs=5e-4)
    assert "--seeds 0,1" in text and (tmp_path / "figures" / "seeds_patient.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    "args, message",
    [
        (("--seeds", "0,x", "features"), "expected comma-separated integers"),
        (("--seeds", "1,1", "features"), "names a seed twice"),
        (("features", "featurs_diagnoses"), "featurs_diagnoses: no such config (configs/featurs_diagnoses.py)"),
        (("--override", "train.num_step=5", "features"), "has no field 'train.num_step'. Did you mean \"num_steps\""),
    ],
)
def test_bad_arguments_are_refused_in_one_line_before_any_run(tmp_path, data_dir, args, message):
    proc = run_compare(tmp_path, data_dir, *args)
    assert proc.returncode != 0 and message in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "runs").exists()

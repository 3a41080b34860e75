"""The synthetic cohort: deterministic, in exactly the reference's formats, with real signatures."""

from __future__ import annotations

import csv
import pickle

import numpy as np
import pytest
from conftest import TINY_COHORT

from asd_jax.base.skeleton import REGION_NAMES
from asd_jax.data.synthetic import CohortParams, WalkSpec, generate_cohort, simulate_walk
from asd_jax.data.synthetic.kinematics import simulate_body


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_same_seed_same_bytes_other_seed_different(tmp_path, tiny_cohort):
    again = generate_cohort(tmp_path / "again", TINY_COHORT)
    assert (again / "annotations.pkl").read_bytes() == (tiny_cohort / "annotations.pkl").read_bytes()
    for name in ("clips.csv", "doctor1.csv", "doctor2.csv"):
        assert (again / name).read_text() == (tiny_cohort / name).read_text()
    other = generate_cohort(tmp_path / "other", CohortParams(num_patients=15, num_clips=60, seed=4))
    assert (other / "annotations.pkl").read_bytes() != (tiny_cohort / "annotations.pkl").read_bytes()


def test_files_follow_the_pyskl_and_csv_contract(tiny_cohort):
    with open(tiny_cohort / "annotations.pkl", "rb") as f:
        data = pickle.load(f)
    clips = read_rows(tiny_cohort / "clips.csv")
    assert list(clips[0]) == ["clip_id", "patient_id", "diagnosis", "fps"]
    assert len(clips) == TINY_COHORT.num_clips == len(data["annotations"])
    assert {a["frame_dir"].split("/")[-1] for a in data["annotations"]} == {c["clip_id"] for c in clips}
    for ann in data["annotations"]:
        kp, score = ann["keypoint"], ann["keypoint_score"]
        assert kp.dtype == np.float32 and score.dtype == np.float32
        assert kp.ndim == 4 and kp.shape[2:] == (17, 2) and score.shape == kp.shape[:3]
        assert ann["total_frames"] == kp.shape[1]
        assert 2 * 30 <= kp.shape[1] <= 10 * 30 + 1
        assert ann["img_shape"] == (1080, 1920) == ann["original_shape"]
        assert 0 <= kp[..., 0].min() and kp[..., 0].max() <= 1919 and kp[..., 1].max() <= 1079
        assert 0 <= score.min() and score.max() <= 1
    for rater in ("doctor1.csv", "doctor2.csv"):
        rows = read_rows(tiny_cohort / rater)
        assert rows and all(set(r["attention"].split(";")) <= set(REGION_NAMES) for r in rows)


def test_counts_and_one_diagnosis_per_patient(tiny_cohort):
    clips = read_rows(tiny_cohort / "clips.csv")
    patients = {}
    for row in clips:
        assert patients.setdefault(row["patient_id"], row["diagnosis"]) == row["diagnosis"]
    assert len(patients) == TINY_COHORT.num_patients
    assert set(patients.values()) == {"ASD", "DHS", "LCS", "HipOA", "normal"}


def trunk_inclination_deg(spec: WalkSpec) -> float:
    keypoints = simulate_body(spec)["keypoints"]
    hips, shoulders = keypoints[:, 11:13].mean(1), keypoints[:, 5:7].mean(1)
    d = shoulders - hips
    return float(np.degrees(np.arctan2(d[:, 0], d[:, 1])).mean())


def test_asd_signature_grows_during_the_walk_and_differs_from_normal():
    from asd_jax.data.synthetic.cohort import Patient, walk_spec

    params = CohortParams()
    rng = np.random.default_rng(0)
    base = dict(patient_id="P", severity=0.8, height_m=1.65, cadence=108.0, trunk_deg=5.0, neck_deg=12.0, stride_scale=1.0, arm_swing_deg=18.0, affected_leg=0)
    asd = walk_spec(Patient(diagnosis="ASD", **base), 300, params, rng)
    normal = walk_spec(Patient(diagnosis="normal", **{**base, "severity": 0.0}), 300, params, rng)
    assert trunk_inclination_deg(asd) > trunk_inclination_deg(normal) + 5
    assert asd.trunk_growth_deg > 5 and normal.trunk_growth_deg == 0
    assert asd.knee_extra_deg > 0 and asd.stride_scale < normal.stride_scale


@pytest.mark.parametrize("cadence", [90.0, 110.0, 125.0])
def test_ground_truth_cadence_matches_the_ankle_oscillation(cadence):
    spec = WalkSpec(num_frames=300, cadence=cadence)
    walk = simulate_walk(spec, CohortParams(), np.random.default_rng(1))
    ankle = walk["truth"]["clean_keypoints"][:, 15, 0] - walk["truth"]["clean_keypoints"][:, 11, 0]
    spectrum = np.abs(np.fft.rfft(ankle - ankle.mean(), n=8192))
    stride_hz = np.fft.rfftfreq(8192, 1 / 30.0)[spectrum.argmax()]
    assert walk["truth"]["cadence"] == cadence
    assert stride_hz * 120 == pytest.approx(cadence, rel=0.05)
    strikes = walk["truth"]["heel_strikes"]["left"]
    assert np.diff(strikes).mean() / 30.0 == pytest.approx(120.0 / cadence, rel=0.05)

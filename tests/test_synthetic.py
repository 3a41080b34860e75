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


def patient(diagnosis: str, signature: str | None = None, severity: float = 0.8, **changes):
    from asd_jax.data.synthetic.cohort import Patient

    values = dict(patient_id="P", diagnosis=diagnosis, signature=signature or diagnosis, severity=severity, height_m=1.65,
                  cadence=108.0, trunk_deg=5.0, neck_deg=12.0, stride_scale=1.0, arm_swing_deg=18.0, affected_leg=0)
    return Patient(**{**values, **changes})


def test_asd_signature_grows_during_the_walk_and_differs_from_normal():
    from asd_jax.data.synthetic.cohort import walk_spec

    params = CohortParams()
    rng = np.random.default_rng(0)
    asd = walk_spec(patient("ASD", severity=0.8), 300, params, rng)
    normal = walk_spec(patient("normal", severity=0.0), 300, params, rng)
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


def test_raters_see_the_walk_not_the_label():
    """Two clips with the same kinematics but different diagnoses get the same signs and, for the
    same rater seed, the same annotations."""
    from asd_jax.data.synthetic.cohort import clip_ratings, make_raters, simulate_clip

    params = CohortParams()
    clips = [
        simulate_clip(patient(diagnosis, signature="ASD", severity=0.9), "c1", params, np.random.default_rng(5))
        for diagnosis in ("ASD", "DHS")
    ]
    assert clips[0]["signs"] == clips[1]["signs"]
    np.testing.assert_array_equal(clips[0]["annotation"]["keypoint"], clips[1]["annotation"]["keypoint"])
    raters = make_raters(params)
    first, second = (clip_ratings(c["signs"], raters, params, patient_index=2, clip_index=7) for c in clips)
    assert first == second
    assert clips[0]["annotation"]["label"] != clips[1]["annotation"]["label"]


def test_visible_signs_follow_the_kinematics():
    from asd_jax.data.synthetic.observe import observe

    def signs(**spec):
        walk = simulate_walk(WalkSpec(num_frames=300, **spec), CohortParams(), np.random.default_rng(0))
        truth = walk["truth"]
        return observe(truth["body_keypoints"], truth["phases"], spec.get("height_m", 1.65))

    normal = signs()
    assert signs(trunk_deg=20.0)["trunk_forward_deg"] == pytest.approx(20.0, abs=1.0)
    assert signs(trunk_growth_deg=9.0)["trunk_growth_deg"] == pytest.approx(6.0, abs=1.0)  # last third minus first third
    assert signs(neck_deg=60.0)["head_forward_deg"] > normal["head_forward_deg"] + 30
    assert signs(arm_swing_deg=6.0)["arm_swing_deg"] < normal["arm_swing_deg"] - 8
    assert signs(hip_extension_loss_deg=12.0)["hip_extension_deg"] < normal["hip_extension_deg"] - 5
    assert signs(step_asymmetry=0.25)["step_asymmetry"] > normal["step_asymmetry"] + 0.1
    assert signs(stride_decay=0.3)["step_decay"] > normal["step_decay"] + 0.05
    assert signs(stride_scale=0.7)["step_length"] < normal["step_length"] * 0.85


def test_a_rater_marks_the_regions_whose_signs_pass():
    from asd_jax.data.synthetic.raters import CRITERIA, Rater, rate

    healthy = {sign: normal for criteria in CRITERIA.values() for sign, normal, _ in criteria}
    exact = Rater(strictness=1.0, noise=0.0, patient_noise=0.0, attention=1.0, nothing_unusual=1.0)
    no_bias = dict.fromkeys(healthy, 0.0)
    rng = np.random.default_rng(0)
    assert rate(healthy, exact, no_bias, rng) is None  # nothing unusual: no annotation
    assert rate({**healthy, "head_forward_deg": 60.0}, exact, no_bias, rng) == ["head"]
    stooped = {**healthy, "trunk_forward_deg": 25.0, "step_decay": 0.1}
    assert rate(stooped, exact, no_bias, rng) == ["shoulder", "lumbar_pelvis", "foot"]
    strict = Rater(strictness=2.5, noise=0.0, patient_noise=0.0, attention=1.0, nothing_unusual=0.0)
    assert rate(stooped, strict, no_bias, rng) == ["foot"]  # only the clearest sign passes; else the most striking


def test_two_raters_agree_about_as_often_as_real_raters(tmp_path):
    """About 46 % exact agreement in the reference's clinic (docs/synthetic_cohort.md); the default
    cohort gives 45 %, seeds 0-2 give 42-56 %."""
    from asd_jax.data.synthetic.calibrate import rater_agreement, read_raters

    folder = generate_cohort(tmp_path, CohortParams(num_patients=40, num_clips=800, seed=11))
    agreement = rater_agreement(read_raters(folder))
    assert agreement["clips_both_rated"] > 500
    assert 0.38 <= agreement["exact_set_agreement"] <= 0.6, agreement

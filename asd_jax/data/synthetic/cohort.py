"""Patients, their clips and their raters: the synthetic cohort written as a clinic's folder.

Disease signatures (SIGNATURES: the change at severity s = 1; a patient has s ~ Beta, and each of
their clips jitters it a little; numbers and sources in docs/synthetic_cohort.md):
- ASD: forward trunk inclination and compensatory knee flexion that grow during the walk (dynamic
  sagittal imbalance), shorter stride, slower cadence, less arm swing.
- DHS: the head and neck drop forward, more so as the walk goes on.
- LCS: a flexed ("stooped") walk, or an upright one with short steps, and steps that shorten over
  the walk (neurogenic claudication).
- HipOA: reduced hip extension and a shorter (antalgic) step on one side, shorter stride.
Raters see only the walk (observe.py, raters.py), never the diagnosis.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import pickle
from pathlib import Path

import numpy as np

from asd_jax.base.errors import ConfigError
from asd_jax.base.files import write_atomically
from asd_jax.data.synthetic.camera import simulate_walk
from asd_jax.data.synthetic.kinematics import WalkSpec
from asd_jax.data.synthetic.observe import SIGNS, observe
from asd_jax.data.synthetic.params import DIAGNOSES, CohortParams
from asd_jax.data.synthetic.raters import Rater, impression, rate, shared_impression

# Change of each gait parameter at severity 1 (WalkSpec fields; `stride` and `cadence` relative).
SIGNATURES: dict[str, dict[str, float]] = {
    "ASD": {"trunk_deg": 16.0, "trunk_growth_deg": 8.0, "knee_extra_deg": 10.0, "knee_growth_deg": 5.0,
            "stride": -0.25, "cadence": -0.10, "arm_swing_deg": -6.0, "neck_deg": -5.0},
    "DHS": {"neck_deg": 70.0, "neck_growth_deg": 10.0, "trunk_deg": 2.0, "stride": -0.08, "cadence": -0.03},
    "LCS:flexed": {"trunk_deg": 12.0, "trunk_growth_deg": 4.0, "knee_extra_deg": 4.0, "stride": -0.10, "stride_decay": 0.25,
                   "cadence": -0.07, "arm_swing_deg": -4.0},
    "LCS:upright": {"trunk_deg": 3.0, "stride": -0.30, "stride_decay": 0.25, "cadence": -0.07, "arm_swing_deg": -4.0},
    "HipOA": {"hip_extension_loss_deg": 16.0, "step_asymmetry": 0.25, "stride": -0.20, "cadence": -0.06, "trunk_deg": 2.0},
    "normal": {},
}
LCS_FLEXED_SHARE = 0.6  # of LCS patients walk stooped; the others upright with short steps (Igawa 2018)


@dataclasses.dataclass(frozen=True)
class Patient:
    patient_id: str
    diagnosis: str
    signature: str  # key of SIGNATURES
    severity: float
    height_m: float
    cadence: float
    trunk_deg: float
    neck_deg: float
    stride_scale: float
    arm_swing_deg: float
    affected_leg: int


def assign_counts(weights: dict[str, float], total: int) -> dict[str, int]:
    """Largest-remainder apportionment of `total` items to classes, at least one each."""
    raw = {k: w * total for k, w in weights.items()}
    counts = {k: max(1, int(np.floor(v))) for k, v in raw.items()}
    for k in sorted(raw, key=lambda k: raw[k] - np.floor(raw[k]), reverse=True):
        if sum(counts.values()) >= total:
            break
        counts[k] += 1
    if sum(counts.values()) != total:
        raise ConfigError(f"cannot split {total} items over {len(weights)} classes with at least one each")
    return counts


def sample_patients(params: CohortParams, rng: np.random.Generator) -> list[Patient]:
    counts = assign_counts(params.class_weights(), params.num_patients)
    diagnoses = [d for d in DIAGNOSES for _ in range(counts.get(d, 0))]
    rng.shuffle(diagnoses)
    patients = []
    for i, diagnosis in enumerate(diagnoses):
        severity = 0.0 if diagnosis == "normal" else float(rng.beta(params.severity_a, params.severity_b))
        signature = diagnosis
        if diagnosis == "LCS":
            signature = "LCS:flexed" if rng.random() < LCS_FLEXED_SHARE else "LCS:upright"
        patients.append(
            Patient(
                patient_id=f"P{i + 1:03d}",
                diagnosis=diagnosis,
                signature=signature,
                severity=severity * params.effect_scale,
                height_m=float(rng.normal(params.height_cm_mean, params.height_cm_std)) / 100.0,
                cadence=float(rng.normal(params.cadence_mean, params.cadence_std)),
                trunk_deg=float(rng.normal(params.trunk_deg_mean, params.trunk_deg_std)),
                neck_deg=float(rng.normal(12.0, params.neck_deg_std)),
                stride_scale=float(rng.normal(1.0, params.stride_std)),
                arm_swing_deg=float(rng.normal(18.0, params.arm_swing_deg_std)),
                affected_leg=int(rng.integers(2)),
            )
        )
    return patients


def walk_spec(patient: Patient, num_frames: int, params: CohortParams, rng: np.random.Generator) -> WalkSpec:
    """A clip's gait: the patient's normal gait, the disease signature, and clip-to-clip variation."""
    v = params.clip_variation
    s = 0.0 if patient.diagnosis == "normal" else float(np.clip(patient.severity + rng.normal(0.0, 0.05), 0.0, 1.5))
    effect = {name: amount * s for name, amount in SIGNATURES[patient.signature].items()}
    get = lambda name: effect.get(name, 0.0)  # noqa: E731
    return WalkSpec(
        num_frames=num_frames,
        fps=params.fps,
        height_m=patient.height_m,
        cadence=patient.cadence * (1 + rng.normal(0, 0.1 * v)) * (1 + get("cadence")),
        phase0=float(rng.uniform(0, 2 * np.pi)),
        stride_scale=patient.stride_scale * (1 + rng.normal(0, 0.13 * v)) * (1 + get("stride")),
        stride_decay=get("stride_decay"),
        trunk_deg=patient.trunk_deg + rng.normal(0, params.trunk_deg_std * v) + get("trunk_deg"),
        trunk_growth_deg=get("trunk_growth_deg"),
        knee_extra_deg=get("knee_extra_deg"),
        knee_growth_deg=get("knee_growth_deg"),
        neck_deg=patient.neck_deg + rng.normal(0, params.neck_deg_std * v) + get("neck_deg"),
        neck_growth_deg=get("neck_growth_deg"),
        arm_swing_deg=max(0.0, patient.arm_swing_deg + rng.normal(0, params.arm_swing_deg_std * v) + get("arm_swing_deg")),
        hip_extension_loss_deg=get("hip_extension_loss_deg"),
        step_asymmetry=get("step_asymmetry"),
        affected_leg=patient.affected_leg,
    )


def make_raters(params: CohortParams) -> list[Rater]:
    return [
        Rater(k, params.rater_noise, params.rater_patient_noise, params.rater_attention, params.rater_nothing_unusual)
        for k in params.strictness()
    ]


def clip_ratings(
    signs: dict[str, float], raters: list[Rater], params: CohortParams, patient_index: int, clip_index: int
) -> list[list[str] | None]:
    """Each rater's regions for one clip (None: not annotated). A rater's randomness depends only on
    (cohort seed, rater, patient, clip), so the same walk gets the same annotations whatever its label."""
    ratings = []
    shared = shared_impression(params.rater_shared_noise, np.random.default_rng([params.seed, 7907, patient_index]))
    for r, rater in enumerate(raters):
        bias = impression(rater, shared, np.random.default_rng([params.seed, 7919, r, patient_index]))
        rng = np.random.default_rng([params.seed, 7919, r, patient_index, clip_index])
        ratings.append(rate(signs, rater, bias, rng) if rng.random() < params.rater_coverage else None)
    return ratings


def simulate_clip(patient: Patient, clip_id: str, params: CohortParams, rng: np.random.Generator) -> dict:
    """One clip of a patient: the pyskl annotation, its walk's truth and visible signs."""
    seconds = rng.uniform(params.min_seconds, params.max_seconds)
    num_frames = max(2, int(round(seconds * params.fps)))
    spec = walk_spec(patient, num_frames, params, rng)
    walk = simulate_walk(spec, params, rng)
    keypoint, score = walk["keypoints"][None], walk["scores"][None]
    if rng.random() < params.bystander_rate:
        shift = np.array([rng.uniform(-400, 400), rng.uniform(-40, 40)], np.float32)
        bystander = np.clip(walk["keypoints"] + shift, 0, [params.image_width - 1, params.image_height - 1])
        keypoint = np.concatenate([keypoint, bystander[None].astype(np.float32)])
        score = np.concatenate([score, 0.35 * walk["scores"][None]])
    truth = walk["truth"]
    signs = observe(truth["body_keypoints"], truth["phases"], spec.height_m)
    annotation = {
        "frame_dir": f"{patient.diagnosis}/{patient.patient_id}/{clip_id}",
        "label": DIAGNOSES.index(patient.diagnosis),
        "img_shape": (params.image_height, params.image_width),
        "original_shape": (params.image_height, params.image_width),
        "total_frames": num_frames,
        "keypoint": keypoint.astype(np.float32),
        "keypoint_score": score.astype(np.float32),
    }
    truth_row = {
        "clip_id": clip_id,
        "patient_id": patient.patient_id,
        "diagnosis": patient.diagnosis,
        "signature": patient.signature,
        "severity": round(patient.severity, 4),
        "cadence_steps_per_min": round(spec.cadence, 3),
        "direction": truth["direction"],
        "body_height_px": round(truth["body_px"], 1),
        "tilt_deg": round(truth["tilt_deg"], 2),
        "num_frames": num_frames,
        **{sign: round(signs[sign], 4) for sign in SIGNS},
    }
    return {"annotation": annotation, "truth": truth_row, "signs": signs}


def generate_cohort(out_dir: str | Path, params: CohortParams | None = None) -> Path:
    """Writes annotations.pkl, clips.csv, doctor<i>.csv (one per rater) and ground_truth.csv."""
    params = params or CohortParams()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(params.seed)
    patients = sample_patients(params, rng)
    if params.num_clips < len(patients):
        raise ConfigError(f"num_clips={params.num_clips} is fewer than num_patients={len(patients)}")
    clips_per_patient = 1 + rng.multinomial(params.num_clips - len(patients), rng.dirichlet(np.full(len(patients), 8.0)))
    raters = make_raters(params)
    annotations, clip_rows, truth_rows = [], [], []
    rater_rows: list[list[dict]] = [[] for _ in raters]
    for p, (patient, count) in enumerate(zip(patients, clips_per_patient, strict=True)):
        for k in range(count):
            clip_id = f"{patient.patient_id}_clip{k + 1:03d}"
            clip = simulate_clip(patient, clip_id, params, rng)
            for rows, regions in zip(rater_rows, clip_ratings(clip["signs"], raters, params, p, k), strict=True):
                if regions is not None:
                    rows.append({"clip_id": clip_id, "attention": ";".join(regions)})
            annotations.append(clip["annotation"])
            truth_rows.append(clip["truth"])
            clip_rows.append({"clip_id": clip_id, "patient_id": patient.patient_id, "diagnosis": patient.diagnosis, "fps": params.fps})
    write_atomically(out_dir / "annotations.pkl", pickle.dumps({"annotations": annotations}, protocol=pickle.HIGHEST_PROTOCOL))
    _write_csv(out_dir / "clips.csv", clip_rows)
    _write_csv(out_dir / "ground_truth.csv", truth_rows)
    for i, rows in enumerate(rater_rows, start=1):
        _write_csv(out_dir / f"doctor{i}.csv", rows, fieldnames=["clip_id", "attention"])
    return out_dir


def _write_csv(path: Path, rows: list[dict], fieldnames: list[str] | None = None) -> None:
    table = io.StringIO(newline="")
    writer = csv.DictWriter(table, fieldnames=fieldnames or list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    write_atomically(path, table.getvalue())

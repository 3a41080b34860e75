"""Patients, clips, camera, pose-estimator artefacts and raters of the synthetic cohort.

Disease signatures (per patient, scaled by a severity s in [0, 1] drawn from a Beta distribution;
the numbers and their sources are in docs/synthetic_cohort.md):
- ASD: forward trunk inclination and compensatory knee flexion that grow during the walk (dynamic
  sagittal imbalance), shorter stride, slower cadence, less arm swing.
- DHS: the head and neck drop forward.
- LCS: flexed trunk and a stride that shortens over the walk (neurogenic claudication).
- HipOA: reduced hip extension and a shorter (antalgic) step on one side.
"""

from __future__ import annotations

import csv
import dataclasses
import pickle
from pathlib import Path

import numpy as np

from asd_jax.base.errors import ConfigError
from asd_jax.base.skeleton import FLIP_PAIRS, JOINT_NAMES, NUM_JOINTS, REGION_NAMES
from asd_jax.data.synthetic.kinematics import WalkSpec, heel_strike_frames, simulate_body
from asd_jax.data.synthetic.params import DIAGNOSES, CohortParams

# Regions raters mark for each diagnosis (before disagreement noise).
RATER_REGIONS: dict[str, tuple[str, ...]] = {
    "ASD": ("lumbar_pelvis", "shoulder"),
    "DHS": ("head", "shoulder"),
    "LCS": ("lumbar_pelvis", "foot"),
    "HipOA": ("lumbar_pelvis", "foot"),
    "normal": ("foot",),
}
GENERIC_REGIONS: tuple[str, ...] = ("lumbar_pelvis", "foot")
LEG_JOINTS = tuple(i for i, name in enumerate(JOINT_NAMES) if name.split("_")[-1] in ("hip", "knee", "ankle"))


@dataclasses.dataclass(frozen=True)
class Patient:
    patient_id: str
    diagnosis: str
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
        patients.append(
            Patient(
                patient_id=f"P{i + 1:03d}",
                diagnosis=diagnosis,
                severity=severity * params.effect_scale,
                height_m=float(rng.normal(params.height_cm_mean, params.height_cm_std)) / 100.0,
                cadence=float(rng.normal(params.cadence_mean, params.cadence_std)),
                trunk_deg=float(rng.normal(5.0, params.trunk_deg_std)),
                neck_deg=float(rng.normal(12.0, params.neck_deg_std)),
                stride_scale=float(rng.normal(1.0, 0.08)),
                arm_swing_deg=float(rng.normal(18.0, 4.0)),
                affected_leg=int(rng.integers(2)),
            )
        )
    return patients


def walk_spec(patient: Patient, num_frames: int, params: CohortParams, rng: np.random.Generator) -> WalkSpec:
    """A clip's gait: the patient's normal gait, the disease signature, and clip-to-clip variation."""
    v = params.clip_variation
    s = float(np.clip(patient.severity + rng.normal(0.0, 0.05), 0.0, 1.5)) if patient.diagnosis != "normal" else 0.0
    d = patient.diagnosis
    effect = lambda name, amount: amount * s if d == name else 0.0  # noqa: E731
    return WalkSpec(
        num_frames=num_frames,
        fps=params.fps,
        height_m=patient.height_m,
        cadence=patient.cadence * (1 + rng.normal(0, 0.03 * v / 0.3)) - effect("ASD", 8) - effect("LCS", 5) - effect("HipOA", 6),
        phase0=float(rng.uniform(0, 2 * np.pi)),
        stride_scale=patient.stride_scale * (1 + rng.normal(0, 0.04 * v / 0.3))
        * (1 - effect("ASD", 0.2) - effect("HipOA", 0.12) - effect("DHS", 0.05)),
        stride_decay=effect("LCS", 0.3) + effect("ASD", 0.08),
        trunk_deg=patient.trunk_deg + rng.normal(0, params.trunk_deg_std * v)
        + effect("ASD", 8) + effect("LCS", 7) + effect("DHS", 3) + effect("HipOA", 2),
        trunk_growth_deg=effect("ASD", 10) + effect("LCS", 4),
        knee_extra_deg=effect("ASD", 8) + effect("LCS", 4),
        knee_growth_deg=effect("ASD", 8),
        neck_deg=patient.neck_deg + rng.normal(0, params.neck_deg_std * v) + effect("DHS", 30) - effect("ASD", 5),
        arm_swing_deg=max(0.0, patient.arm_swing_deg - effect("ASD", 6) - effect("LCS", 4)),
        hip_extension_loss_deg=effect("HipOA", 12),
        step_asymmetry=effect("HipOA", 0.2),
        affected_leg=patient.affected_leg,
    )


def project(body: np.ndarray, height_m: float, params: CohortParams, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Body-frame metres -> image pixels for a random camera; returns pixels and camera facts."""
    direction = int(rng.choice([-1, 1]))
    body_px = float(rng.uniform(params.body_px_min, params.body_px_max))
    scale = body_px / height_m
    width, height = params.image_width, params.image_height
    ground = rng.uniform(0.62, 0.95) * height
    travel = (body[-1, 11, 0] - body[0, 11, 0]) * scale
    # A long walk would leave the frame: the camera then pans with the walker, keeping at most
    # 80 % of the frame width of forward travel in view.
    pan = max(0.0, 1.0 - 0.8 * width / travel) if travel > 0 else 0.0
    # Some walks start or end partly outside the frame (partial skeletons at the edges).
    start = rng.uniform(-0.05 * width, max(0.0, 1.02 * width - (1 - pan) * travel))
    x = body[..., 0] - body[0, 11, 0]
    x = x - pan * x[:, 11:12]
    px = np.stack([start + scale * x, ground - scale * body[..., 1]], -1)
    if direction < 0:
        px[..., 0] = width - px[..., 0]
    tilt = np.deg2rad(rng.normal(0.0, params.tilt_deg_std))
    centre = np.array([width / 2, height / 2])
    rot = np.array([[np.cos(tilt), -np.sin(tilt)], [np.sin(tilt), np.cos(tilt)]])
    px = (px - centre) @ rot.T + centre
    return px, {"direction": direction, "body_px": body_px, "tilt_deg": float(np.rad2deg(tilt))}


def add_artefacts(px: np.ndarray, direction: int, body_px: float, params: CohortParams, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Pose-estimator realism: scores by visibility, jitter, dropped joints, swaps, frame edges."""
    num_frames = px.shape[0]
    near_side = "left" if direction > 0 else "right"
    near = np.array([name.startswith(near_side) or "_" not in name for name in JOINT_NAMES])
    mean_score = np.where(near, params.near_side_score, params.far_side_score)
    score = np.clip(rng.normal(mean_score, 0.06, size=(num_frames, NUM_JOINTS)), 0.05, 0.99)
    noise_px = params.jitter_px * body_px / 500.0 * (1.6 - score)
    px = px + rng.normal(size=px.shape) * noise_px[..., None]

    dropped = rng.random((num_frames, NUM_JOINTS)) < params.dropout_rate
    score[dropped] = rng.uniform(0.0, 0.1, size=dropped.sum())
    px[dropped] += rng.normal(0.0, 0.1 * body_px, size=(dropped.sum(), 2))

    num_swaps = rng.poisson(params.swap_rate * num_frames / params.fps * 10)
    pairs = [p for p in FLIP_PAIRS if p[0] in LEG_JOINTS]
    for _ in range(num_swaps):
        start = int(rng.integers(num_frames))
        stop = min(num_frames, start + int(rng.integers(2, 7)))
        for left, right in pairs:
            px[start:stop, [left, right]] = px[start:stop, [right, left]]

    outside = (px[..., 0] < 0) | (px[..., 0] >= params.image_width) | (px[..., 1] < 0) | (px[..., 1] >= params.image_height)
    score[outside] *= 0.2
    px[..., 0] = np.clip(px[..., 0], 0, params.image_width - 1)
    px[..., 1] = np.clip(px[..., 1], 0, params.image_height - 1)
    return px.astype(np.float32), score.astype(np.float32)


def rate(diagnosis: str, severity: float, params: CohortParams, rng: np.random.Generator) -> list[str] | None:
    """One rater's regions for a clip (None: not rated). Mild cases get the generic gait regions,
    as a rater only marks what they see; raters also disagree sometimes."""
    if rng.random() > params.rater_coverage:
        return None
    sees_disorder = rng.random() < params.rater_base + severity
    regions = list(RATER_REGIONS[diagnosis] if sees_disorder else GENERIC_REGIONS)
    if rng.random() < params.rater_disagreement:
        others = [r for r in REGION_NAMES if r not in regions]
        action = rng.integers(3)
        if action == 0 and len(regions) > 1:
            regions.pop(int(rng.integers(len(regions))))
        elif action == 1:
            regions.append(str(rng.choice(others)))
        else:
            regions[int(rng.integers(len(regions)))] = str(rng.choice(others))
    return regions


def simulate_walk(spec: WalkSpec, params: CohortParams, rng: np.random.Generator) -> dict:
    """One walk with its ground truth: keypoints [T,17,2] px, scores [T,17], and truth.

    Truth: clean pixels, cadence, heel-strike frames per leg, and the widest-stride frames (the
    horizontal ankle gap at its maxima, one per step).
    """
    body = simulate_body(spec)
    clean, camera = project(body["keypoints"], spec.height_m, params, rng)
    keypoints, scores = add_artefacts(clean.copy(), camera["direction"], camera["body_px"], params, rng)
    gap = np.abs(clean[:, 15, 0] - clean[:, 16, 0])
    strikes = {side: heel_strike_frames(body[f"{side}_phase"]) for side in ("left", "right")}
    all_strikes = np.sort(np.concatenate(list(strikes.values())))
    widest = [int(a + np.argmax(gap[a:b])) for a, b in zip(all_strikes[:-1], all_strikes[1:]) if b - a > 2]
    return {
        "keypoints": keypoints,
        "scores": scores,
        "truth": {
            "clean_keypoints": clean.astype(np.float32),
            "cadence": spec.cadence,
            "heel_strikes": strikes,
            "widest_stride_frames": np.array(widest, int),
            **camera,
        },
    }


def generate_cohort(out_dir: str | Path, params: CohortParams = CohortParams()) -> Path:
    """Writes annotations.pkl, clips.csv, doctor1.csv, doctor2.csv and ground_truth.csv."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(params.seed)
    patients = sample_patients(params, rng)
    if params.num_clips < len(patients):
        raise ConfigError(f"num_clips={params.num_clips} is fewer than num_patients={len(patients)}")
    clips_per_patient = 1 + rng.multinomial(params.num_clips - len(patients), rng.dirichlet(np.full(len(patients), 8.0)))

    annotations, clip_rows, truth_rows = [], [], []
    raters: list[list[dict]] = [[], []]
    for patient, count in zip(patients, clips_per_patient):
        for k in range(count):
            clip_id = f"{patient.patient_id}_clip{k + 1:03d}"
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
            annotations.append(
                {
                    "frame_dir": f"{patient.diagnosis}/{patient.patient_id}/{clip_id}",
                    "label": DIAGNOSES.index(patient.diagnosis),
                    "img_shape": (params.image_height, params.image_width),
                    "original_shape": (params.image_height, params.image_width),
                    "total_frames": num_frames,
                    "keypoint": keypoint.astype(np.float32),
                    "keypoint_score": score.astype(np.float32),
                }
            )
            clip_rows.append({"clip_id": clip_id, "patient_id": patient.patient_id, "diagnosis": patient.diagnosis, "fps": params.fps})
            truth = walk["truth"]
            truth_rows.append(
                {
                    "clip_id": clip_id,
                    "patient_id": patient.patient_id,
                    "diagnosis": patient.diagnosis,
                    "severity": round(patient.severity, 4),
                    "cadence_steps_per_min": round(spec.cadence, 3),
                    "trunk_deg_start": round(spec.trunk_deg, 2),
                    "trunk_deg_end": round(spec.trunk_deg + spec.trunk_growth_deg, 2),
                    "neck_deg": round(spec.neck_deg, 2),
                    "direction": truth["direction"],
                    "body_height_px": round(truth["body_px"], 1),
                    "tilt_deg": round(truth["tilt_deg"], 2),
                    "num_frames": num_frames,
                }
            )
            for rater in raters:
                regions = rate(patient.diagnosis, patient.severity, params, rng)
                if regions is not None:
                    rater.append({"clip_id": clip_id, "attention": ";".join(regions)})

    with (out_dir / "annotations.pkl").open("wb") as f:
        pickle.dump({"annotations": annotations}, f, protocol=pickle.HIGHEST_PROTOCOL)
    _write_csv(out_dir / "clips.csv", clip_rows)
    _write_csv(out_dir / "ground_truth.csv", truth_rows)
    for i, rows in enumerate(raters, start=1):
        _write_csv(out_dir / f"doctor{i}.csv", rows, fieldnames=["clip_id", "attention"])
    return out_dir


def _write_csv(path: Path, rows: list[dict], fieldnames: list[str] | None = None) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fieldnames or list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)

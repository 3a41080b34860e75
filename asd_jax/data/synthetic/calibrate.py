"""python -m asd_jax.data.synthetic.calibrate [--classes 3] [--<cohort param> value ...]

The calibration report of a generated cohort, as docs/synthetic_cohort.md quotes it:
- inter-rater agreement: exact region-set agreement and Cohen's kappa per region, on the clips
  both raters annotated;
- what a random forest gets from the raters' prior alone and from hand-crafted pose features
  alone (clips -> patients by mean probability; patient-grouped, stratified 5-fold CV);
- each visible sign (observe.SIGNS) per diagnosis, and how often raters mark each region.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import tempfile
from pathlib import Path

import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score, cohen_kappa_score, f1_score
from sklearn.model_selection import StratifiedGroupKFold
from tqdm import tqdm

from asd_jax.base.gait import summary_features
from asd_jax.base.labels import parse_label_map
from asd_jax.base.skeleton import REGION_NAMES
from asd_jax.data.synthetic.cohort import generate_cohort
from asd_jax.data.synthetic.observe import SIGNS
from asd_jax.data.synthetic.params import DIAGNOSES, CohortParams
from asd_jax.data.user_folder import read_user_folder


def read_raters(folder: Path) -> list[dict[str, frozenset[str]]]:
    """Each rater's region set per clip they annotated."""
    raters = []
    for path in sorted(folder.glob("doctor*.csv")):
        with path.open(newline="") as f:
            raters.append({row["clip_id"]: frozenset(row["attention"].split(";")) for row in csv.DictReader(f)})
    return raters


def rater_agreement(raters: list[dict[str, frozenset[str]]]) -> dict[str, float]:
    """Exact-set agreement and per-region Cohen's kappa of the first two raters, on shared clips."""
    first, second = raters[:2]
    shared = sorted(set(first) & set(second))
    out = {"clips_both_rated": len(shared), "exact_set_agreement": float(np.mean([first[c] == second[c] for c in shared]))}
    for region in REGION_NAMES:
        a = [region in first[c] for c in shared]
        b = [region in second[c] for c in shared]
        out[f"kappa_{region}"] = float(cohen_kappa_score(a, b)) if len(set(a) | set(b)) > 1 else float("nan")
    return out


def patient_cv(features: np.ndarray, labels: np.ndarray, patients: np.ndarray, *, seed: int = 0, folds: int = 5) -> dict[str, float]:
    """Random forest on clips, clip probabilities averaged per patient; patient-grouped stratified K-fold."""
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    truth, predicted = [], []
    for train, test in splitter.split(features, labels, patients):
        forest = RandomForestClassifier(n_estimators=300, min_samples_leaf=2, random_state=seed, n_jobs=-1)
        forest.fit(features[train], labels[train])
        probs = forest.predict_proba(features[test])
        for patient in np.unique(patients[test]):
            rows = patients[test] == patient
            truth.append(labels[test][rows][0])
            predicted.append(forest.classes_[probs[rows].mean(0).argmax()])
    return {
        "patient_accuracy": float(accuracy_score(truth, predicted)),
        "patient_macro_f1": float(f1_score(truth, predicted, average="macro")),
    }


def sign_table(folder: Path) -> dict[str, dict[str, tuple[float, float, float]]]:
    """Median and 10th / 90th percentile of each sign per diagnosis (from ground_truth.csv)."""
    with (folder / "ground_truth.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    table = {}
    for diagnosis in DIAGNOSES:
        members = [r for r in rows if r["diagnosis"] == diagnosis]
        if members:
            table[diagnosis] = {s: tuple(float(v) for v in np.percentile([float(r[s]) for r in members], [50, 10, 90])) for s in SIGNS}
    return table


def marking_rates(folder: Path, raters: list[dict[str, frozenset[str]]]) -> dict[str, dict[str, float]]:
    """Per diagnosis: the share of annotations that mark each region, and of clips no rater annotated."""
    with (folder / "clips.csv").open(newline="") as f:
        diagnosis_of = {r["clip_id"]: r["diagnosis"] for r in csv.DictReader(f)}
    rates = {}
    for diagnosis in DIAGNOSES:
        clips = [c for c, d in diagnosis_of.items() if d == diagnosis]
        marks = [rater[c] for rater in raters for c in clips if c in rater]
        if clips:
            rates[diagnosis] = {r: float(np.mean([r in m for m in marks])) if marks else 0.0 for r in REGION_NAMES}
            rates[diagnosis]["unannotated"] = float(np.mean([all(c not in rater for rater in raters) for c in clips]))
    return rates


def calibrate(params: CohortParams, classes: str = "3", folder: Path | None = None) -> dict:
    """Generates the cohort (into `folder` or a temporary one) and measures it."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(folder or tmp)
        generate_cohort(folder, params)
        label_map = parse_label_map(classes)
        records = [r for r in read_user_folder(folder) if label_map.includes(r["diagnosis"])]
        labels = np.array([label_map.label(r["diagnosis"]) for r in records])
        patients = np.array([r["patient_id"] for r in records])
        pose = np.stack([summary_features(r["pose"], float(r["fps"])) for r in tqdm(records, desc="pose features", leave=False)])
        prior = np.stack([r["prior"] for r in records])
        raters = read_raters(folder)
        return {
            "params": dataclasses.asdict(params),
            "classes": list(label_map.class_names),
            "patients": len(set(patients)),
            "clips": len(records),
            "agreement": rater_agreement(raters),
            "prior_only": patient_cv(prior, labels, patients, seed=params.seed),
            "pose_only": patient_cv(pose, labels, patients, seed=params.seed),
            "prior_and_pose": patient_cv(np.concatenate([pose, prior], 1), labels, patients, seed=params.seed),
            "signs": sign_table(folder),
            "marking": marking_rates(folder, raters),
        }


def report_markdown(result: dict) -> str:
    agreement = result["agreement"]
    lines = [
        f"Cohort seed {result['params']['seed']}: {result['patients']} patients, {result['clips']} clips, "
        f"classes {', '.join(result['classes'])}.",
        "",
        f"Raters: exact region-set agreement {agreement['exact_set_agreement']:.1%} on the "
        f"{agreement['clips_both_rated']} clips both annotated; Cohen's kappa per region: "
        + ", ".join(f"{r} {agreement[f'kappa_{r}']:.2f}" for r in REGION_NAMES)
        + ".",
        "",
        "| random forest on | patient accuracy | patient macro-F1 |",
        "| --- | --- | --- |",
    ]
    for key, name in (("prior_only", "raters' prior alone"), ("pose_only", "pose features alone"), ("prior_and_pose", "both")):
        lines.append(f"| {name} | {result[key]['patient_accuracy']:.1%} | {result[key]['patient_macro_f1']:.3f} |")
    lines += [
        "",
        "| sign (median [10th, 90th percentile]) | " + " | ".join(result["signs"]) + " |",
        "| --- |" + " --- |" * len(result["signs"]),
    ]
    for sign in SIGNS:
        cells = [f"{m:.2f} [{lo:.2f}, {hi:.2f}]" for m, lo, hi in (result["signs"][d][sign] for d in result["signs"])]
        lines.append(f"| {sign} | " + " | ".join(cells) + " |")
    lines += ["", "| share of annotations marking | " + " | ".join(result["marking"]) + " |", "| --- |" + " --- |" * len(result["marking"])]
    for region in (*REGION_NAMES, "unannotated"):
        label = "clips no rater annotated" if region == "unannotated" else region
        lines.append(f"| {label} | " + " | ".join(f"{result['marking'][d][region]:.0%}" for d in result["marking"]) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--classes", default="3", help="class preset or mapping, as data.classes")
    for field in dataclasses.fields(CohortParams):
        parser.add_argument(f"--{field.name}", type=type(field.default), default=field.default)
    args = vars(parser.parse_args())
    classes = args.pop("classes")
    print(report_markdown(calibrate(CohortParams(**args), classes)))


if __name__ == "__main__":
    main()

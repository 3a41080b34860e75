"""Score fusion of finished cross-validations, as pyskl ensembles its joint, bone and motion streams.

Each member is a CV run, trained and selected on its own validation patients. A fold's ensemble
prediction for a clip is the equal-weight mean of its members' class probabilities for that clip,
read from the members' test reports: nothing is fitted and no member is evaluated again. Patients
follow from clips as for any single model. (Choosing the members by their CV scores would be
choosing on test patients: decide the members first.)

The same fusion diagnoses new patients: `fuse_predicted` averages the clip probabilities of
--mode=predict folders of the same clips, one per trained run (e.g. one per training seed).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from asd_jax.base.errors import RunStateError
from asd_jax.base.files import check_output_folder, write_atomically
from asd_jax.evaluation import aggregate, metrics, predict, protocol, report


def fuse(members: list[aggregate.Predictions], patients: list[np.ndarray], names: list[str]) -> tuple[aggregate.Predictions, np.ndarray]:
    """Equal-weight mean of the members' probabilities, clip by clip, in the first member's order,
    and each clip's patient; `names` (the members' prediction files) name a member that was tested
    on other clips, labels or patients (other splits, cohort or task)."""
    first, first_ids = members[0], members[0].ids.tolist()
    probs = []
    for member, member_patients, name in zip(members, patients, names):
        if not len(member.ids):
            raise RunStateError(f"{name}: holds no clip predictions; rerun that cross-validation's evaluation")
        row_of = {clip: row for row, clip in enumerate(member.ids.tolist())}
        if len(row_of) != len(member.ids) or set(row_of) != set(first_ids):
            raise RunStateError(f"{name}: tested on other clips than {names[0]} (other splits or cohort)")
        order = np.array([row_of[clip] for clip in first_ids])
        if not np.array_equal(member.labels[order], first.labels):
            raise RunStateError(f"{name}: labels its clips otherwise than {names[0]} (another task or classes)")
        if not np.array_equal(member_patients[order], patients[0]):
            raise RunStateError(f"{name}: assigns its clips to other patients than {names[0]}")
        probs.append(member.probs[order])
    return aggregate.Predictions(first.ids, first.labels, np.mean(probs, axis=0)), patients[0]


def read_cv(run_dir: Path) -> dict[str, Any]:
    """A finished CV's summary (report/results.json) with what fusion needs, or one clear error."""
    path = run_dir / protocol.REPORT_DIR / "results.json"
    if not path.exists():
        raise RunStateError(f"{path}: not found; {run_dir} is not a finished cross-validation (run it with --mode=cv first)")
    try:
        summary = json.loads(path.read_text())
        folds = summary["folds"]
        class_names, num_folds = tuple(summary["class_names"]), int(summary["num_folds"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise RunStateError(f"{path}: not a cross-validation's report ({type(err).__name__}: {err})") from None
    if "members" in summary:
        raise RunStateError(f"{path}: an ensemble's report; fuse its members ({', '.join(summary['members'])}) instead")
    return {"class_names": class_names, "num_folds": num_folds, "steps": [f["selected_step"] for f in folds]}


def fuse_fold(member_dirs: list[Path], fold: int, class_names: tuple[str, ...]) -> tuple[predict.EvalResult, dict[str, str]]:
    """The fused clip and patient predictions of one fold, and each clip's patient."""
    paths = [d / f"fold_{fold}" / protocol.REPORT_DIR / "predictions_clips.csv" for d in member_dirs]
    read = []
    for path in paths:
        try:
            read.append(report.read_predictions(path, class_names))
        except (OSError, ValueError, KeyError) as err:
            problem = f"{type(err).__name__}: {err}"
            raise RunStateError(f"{path}: cannot be read as a fold's clip predictions of {list(class_names)} ({problem})") from None
    clips, patient_of_rows = fuse([p for p, _ in read], [patients for _, patients in read], [str(p) for p in paths])
    patients = aggregate.patients_from_clips(clips, patient_of_rows, class_names)
    levels = {"clip": clips, "patient": patients}
    level_metrics = {level: metrics.classification_metrics(p.labels, p.probs, class_names) for level, p in levels.items()}
    return predict.EvalResult(class_names, levels, level_metrics, {}), dict(zip(clips.ids.tolist(), patient_of_rows.tolist()))


def check_members(member_dirs: list[Path], out: Path) -> None:
    """Two or more distinct members, and an `out` that is no member, holds none and is not a run."""
    if len(member_dirs) < 2:
        raise RunStateError(f"an ensemble needs two or more members (finished CVs or --mode=predict folders), got {len(member_dirs)}")
    check_output_folder(out)
    resolved = [d.resolve() for d in member_dirs]
    twice = [str(d) for d, path in zip(member_dirs, resolved) if resolved.count(path) > 1]
    if twice:
        raise RunStateError(f"a member is given twice ({' and '.join(twice)}); each member counts once")
    target = out.resolve()
    for member, path in zip(member_dirs, resolved):
        if target == path or target in path.parents or path in target.parents:
            raise RunStateError(f"--out {out} would write into member {member}; give the ensemble a folder of its own")
    existing = out / protocol.REPORT_DIR / "results.json"
    if existing.exists() and not is_ensemble_report(existing):
        raise RunStateError(f"{existing}: --out holds another run's report; give the ensemble a folder of its own")


def is_ensemble_report(path: Path) -> bool:
    """Whether `path` is a results.json that an ensemble wrote (so rewriting it loses nothing)."""
    try:
        return "members" in json.loads(path.read_text())
    except (OSError, ValueError):
        return False


def run_ensemble(member_dirs: list[Path], out: Path, *, seed: int = 0, num_samples: int = 1000) -> dict[str, Any]:
    """Fuses every fold of the member CVs into `out` (fold_<k>/report and the pooled report/, as
    --mode=cv writes them, each results.json with its `members`); returns the CV summary."""
    check_members(member_dirs, out)
    summaries = [read_cv(d) for d in member_dirs]
    class_names, num_folds = summaries[0]["class_names"], summaries[0]["num_folds"]
    for d, s in zip(member_dirs, summaries):
        if s["class_names"] != class_names or s["num_folds"] != num_folds:
            raise RunStateError(
                f"{d}: {s['num_folds']} folds of {list(s['class_names'])}, but {member_dirs[0]} has {num_folds} of {list(class_names)}"
            )
    fused = [fuse_fold(member_dirs, fold, class_names) for fold in range(num_folds)]  # every fold checked before writing
    members = [str(d) for d in member_dirs]
    fold_reports, report_dirs = [], []
    for fold, (result, patient_of) in enumerate(fused):
        steps = [s["steps"][fold] for s in summaries]
        payload = report.fold_payload(
            result, patient_of, fold=fold, num_folds=num_folds, selected_step=steps, seed=seed, num_samples=num_samples
        )
        payload["members"] = members
        report_dir = out / f"fold_{fold}" / protocol.REPORT_DIR
        report.write_fold(report_dir, payload, result, patient_of)
        fold_reports.append(payload)
        report_dirs.append(report_dir)
    summary = report.cv_summary(fold_reports, report_dirs, seed=seed, num_samples=num_samples)
    report.write_cv_summary(out / protocol.REPORT_DIR, summary, fold_reports, members=members)
    return summary


ENSEMBLE_FILE = "ensemble.json"


def is_predicted(folder: Path) -> bool:
    """Whether `folder` is a --mode=predict output (clip predictions, no CV report)."""
    return (folder / report.PREDICTION_FILES[0]).exists() and not (folder / protocol.REPORT_DIR / "results.json").exists()


def read_predicted(path: Path) -> tuple[tuple[str, ...], aggregate.Predictions, np.ndarray, dict[str, dict[str, float]]]:
    """A --mode=predict clip table: its classes (the p_<class> columns), its clips (labels 0:
    nothing reads them), each clip's patient, and the columns that describe the clip whichever run
    scored it (its gait parameters; not a run's own per-stream <stream>_p_<class> readings)."""
    try:
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            rows, columns = list(reader), list(reader.fieldnames or ())
        class_names = tuple(c.removeprefix("p_") for c in columns if c.startswith("p_"))
        if "label" in columns or not class_names or not rows:
            raise ValueError("not the clip table --mode=predict writes (unlabelled clips with p_<class> columns)")
        probs = np.array([[float(r[f"p_{c}"]) for c in class_names] for r in rows])
        fixed = {"clip_id", "patient_id", "prediction", *(f"p_{c}" for c in class_names)}
        clip_columns = [c for c in columns if c not in fixed and not c.endswith(tuple(f"_p_{name}" for name in class_names))]
        extras = {r["clip_id"]: {c: float(r[c]) for c in clip_columns} for r in rows}
        ids, patients = np.array([r["clip_id"] for r in rows]), np.array([r["patient_id"] for r in rows])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise RunStateError(f"{path}: cannot be read as --mode=predict's clip predictions ({type(err).__name__}: {err})") from None
    return class_names, aggregate.Predictions(ids, np.zeros(len(ids), np.int64), probs), patients, extras


def fuse_predicted(member_dirs: list[Path], out: Path) -> dict[str, Any]:
    """Fuses --mode=predict folders of the same clips into `out` (predictions_clips.csv and
    predictions_patients.csv as --mode=predict writes them, and ensemble.json naming the members);
    returns the class names, clips and patients. Never writes over earlier predictions."""
    check_members(member_dirs, out)
    clips_file, patients_file = report.PREDICTION_FILES
    for member in member_dirs:
        if (member / ENSEMBLE_FILE).exists():
            raise RunStateError(f"{member}: an ensemble's predictions; fuse its members instead, each counts once")
    taken = [name for name in (*report.PREDICTION_FILES, ENSEMBLE_FILE) if (out / name).exists()]
    if taken:
        raise RunStateError(f"{out} already holds predictions ({', '.join(taken)}); choose another --out or move them away first")
    read = [read_predicted(d / clips_file) for d in member_dirs]
    class_names = read[0][0]
    for member, (names, *_) in zip(member_dirs, read):
        if names != class_names:
            raise RunStateError(f"{member}: predicts {list(names)}, but {member_dirs[0]} predicts {list(class_names)}")
    clips, patient_of_rows = fuse([r[1] for r in read], [r[2] for r in read], [str(d / clips_file) for d in member_dirs])
    patients = aggregate.patients_from_clips(clips, patient_of_rows)
    patient_of = dict(zip(clips.ids.tolist(), patient_of_rows.tolist()))
    out.mkdir(parents=True, exist_ok=True)
    report.write_predictions(out / clips_file, "clip", clips, class_names, patient_of, read[0][3], labelled=False)
    report.write_predictions(out / patients_file, "patient", patients, class_names, patient_of, labelled=False)
    manifest = {"members": [str(d) for d in member_dirs], "class_names": list(class_names)}
    write_atomically(out / ENSEMBLE_FILE, json.dumps(manifest, indent=2))
    counts = dict(zip(*np.unique(patient_of_rows.astype(str), return_counts=True)))
    return {"class_names": class_names, "clips": clips, "patients": patients, "clips_per_patient": counts}

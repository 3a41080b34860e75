"""Score fusion of finished cross-validations, and of --mode=predict folders for new patients
(asd_jax/evaluation/ensemble.py, asd_jax.modes.ensemble)."""

from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest

from asd_jax.base.errors import RunStateError, UserError
from asd_jax.evaluation import aggregate, ensemble, report
from asd_jax.modes import ensemble as ensemble_mode

CLASSES = ("ASD", "DHS", "LCS_HipOA")
# fold -> (clip, patient, label) rows; patient P1 has two clips
FOLDS = {
    0: [("P1_c1", "P1", 0), ("P1_c2", "P1", 0), ("P2_c1", "P2", 1), ("P3_c1", "P3", 2)],
    1: [("P4_c1", "P4", 1), ("P5_c1", "P5", 2), ("P6_c1", "P6", 0)],
}


def write_member(run_dir, probs_by_fold, steps=(750, 500), rows=FOLDS):
    """A finished CV as --mode=cv leaves it, reduced to what an ensemble reads."""
    for fold, fold_rows in rows.items():
        ids = np.array([r[0] for r in fold_rows])
        clips = aggregate.Predictions(ids, np.array([r[2] for r in fold_rows]), np.asarray(probs_by_fold[fold], float))
        path = run_dir / f"fold_{fold}" / "report" / "predictions_clips.csv"
        path.parent.mkdir(parents=True)
        report.write_predictions(path, "clip", clips, CLASSES, {r[0]: r[1] for r in fold_rows})
    folds = [{"fold": f, "selected_step": s} for f, s in zip(rows, steps)]
    summary = {"class_names": list(CLASSES), "num_folds": len(rows), "folds": folds}
    (run_dir / "report").mkdir(parents=True)
    (run_dir / "report" / "results.json").write_text(json.dumps(summary))
    return run_dir


A = {0: [[0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4]], 1: [[0.1, 0.2, 0.7], [0.2, 0.2, 0.6], [0.5, 0.4, 0.1]]}
B = {0: [[0.2, 0.7, 0.1], [0.2, 0.2, 0.6], [0.1, 0.4, 0.5], [0.1, 0.1, 0.8]], 1: [[0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [0.7, 0.2, 0.1]]}


def test_the_ensemble_averages_its_members_probabilities_clip_by_clip_then_patients(tmp_path):
    members = [write_member(tmp_path / "a", A), write_member(tmp_path / "b", B, steps=(250, 1000))]
    summary = ensemble.run_ensemble(members, tmp_path / "ens", num_samples=50)
    pooled = summary["levels"]["clip"]["predictions"]
    np.testing.assert_allclose(pooled.probs, (np.concatenate([A[0], A[1]]) + np.concatenate([B[0], B[1]])) / 2)
    # P1's clips fuse to [0.4, 0.5, 0.1] and [0.2, 0.45, 0.35]; their mean [0.3, 0.475, 0.225] reads DHS, a miss
    with (tmp_path / "ens" / "fold_0" / "report" / "predictions_patients.csv").open() as f:
        patients = {r["patient_id"]: r for r in csv.DictReader(f)}
    assert float(patients["P1"]["p_DHS"]) == pytest.approx(0.475)
    assert patients["P1"]["prediction"] == "DHS" and patients["P3"]["prediction"] == "LCS_HipOA"
    fold_0 = json.loads((tmp_path / "ens" / "fold_0" / "report" / "results.json").read_text())
    assert fold_0["selected_step"] == [750, 250] and fold_0["members"] == [str(m) for m in members]
    assert fold_0["headline"]["patient_accuracy"] == pytest.approx(2 / 3)  # P1 missed, P2 and P3 right
    pooled_report = json.loads((tmp_path / "ens" / "report" / "results.json").read_text())
    assert pooled_report["summary"]["patient"]["pooled"]["count"] == 6


def test_an_ensemble_of_one_model_twice_is_that_model(tmp_path):
    single = ensemble.fuse_fold([write_member(tmp_path / "a", A), write_member(tmp_path / "b", A)], 1, CLASSES)[0]
    np.testing.assert_allclose(single.predictions["clip"].probs, A[1])
    assert single.metrics["patient"]["accuracy"] == pytest.approx(2 / 3)  # P4 (DHS) read as LCS_HipOA


def test_a_member_listing_its_clips_in_another_order_fuses_clip_by_clip(tmp_path):
    shuffled = {fold: rows[::-1] for fold, rows in FOLDS.items()}
    b_shuffled = write_member(tmp_path / "b", {fold: probs[::-1] for fold, probs in B.items()}, rows=shuffled)
    result, patient_of = ensemble.fuse_fold([write_member(tmp_path / "a", A), b_shuffled], 0, CLASSES)
    np.testing.assert_allclose(result.predictions["clip"].probs, (np.asarray(A[0]) + np.asarray(B[0])) / 2)
    assert patient_of == {clip: patient for clip, patient, _ in FOLDS[0]}


def test_a_mixed_diagnosis_patient_is_one_unit_per_class_and_one_patient_in_the_bootstrap(tmp_path, monkeypatch):
    mixed = {0: [("P1_c1", "P1", 0), ("P1_c2", "P1", 2), ("P2_c1", "P2", 1), ("P3_c1", "P3", 2)], 1: FOLDS[1]}
    drawn = []
    original = ensemble.metrics.headline_with_ci
    monkeypatch.setattr(
        ensemble.report.metrics, "headline_with_ci", lambda *a, groups, **k: drawn.append(list(groups)) or original(*a, groups=groups, **k)
    )
    members = [write_member(tmp_path / "a", A, rows=mixed), write_member(tmp_path / "b", B, rows=mixed)]
    summary = ensemble.run_ensemble(members, tmp_path / "e")
    assert {"P1|ASD", "P1|LCS_HipOA"} <= set(summary["levels"]["patient"]["predictions"].ids.tolist())
    pooled_patient_groups = drawn[-1]  # cv_summary's patient level, after its clip level
    assert pooled_patient_groups.count("P1") == 2 and not any("|" in g for g in pooled_patient_groups)


@pytest.mark.parametrize(
    "change, message",
    [
        ("clips", "fold_1/report/predictions_clips.csv: tested on other clips than .*/a/fold_1/report/predictions_clips.csv"),
        ("labels", "fold_0/report/predictions_clips.csv: labels its clips otherwise than"),
        ("patients", "fold_0/report/predictions_clips.csv: assigns its clips to other patients than"),
        ("classes", "2 folds of \\['ASD', 'DHS'\\], but .*/a has 2 of \\['ASD', 'DHS', 'LCS_HipOA'\\]"),
    ],
)
def test_members_of_other_splits_tasks_or_classes_are_refused_with_one_line(tmp_path, change, message):
    rows = {
        "clips": {0: FOLDS[0], 1: [("P9_c1", "P9", 1), *FOLDS[1][1:]]},
        "labels": {0: [("P1_c1", "P1", 1), *FOLDS[0][1:]], 1: FOLDS[1]},
        "patients": {0: [("P1_c1", "P7", 0), *FOLDS[0][1:]], 1: FOLDS[1]},
    }.get(change, FOLDS)
    a, b = write_member(tmp_path / "a", A), write_member(tmp_path / "b", B, rows=rows)
    if change == "classes":
        summary = json.loads((b / "report" / "results.json").read_text())
        (b / "report" / "results.json").write_text(json.dumps(summary | {"class_names": ["ASD", "DHS"]}))
    with pytest.raises(RunStateError, match=message):
        ensemble.run_ensemble([a, b], tmp_path / "ens")
    assert not (tmp_path / "ens").exists()  # nothing written before every fold is checked


def test_an_out_folder_that_is_a_member_or_another_run_and_twice_the_same_member_are_refused(tmp_path):
    a, b = write_member(tmp_path / "a", A), write_member(tmp_path / "b", B)
    before = (b / "fold_0" / "report" / "predictions_clips.csv").read_text()
    for out in (b, b / "ensemble", tmp_path):
        with pytest.raises(RunStateError, match="would write into member"):
            ensemble.run_ensemble([a, b], out)
    assert (b / "fold_0" / "report" / "predictions_clips.csv").read_text() == before
    other_run = write_member(tmp_path / "c", A)
    with pytest.raises(RunStateError, match="c/report/results.json: --out holds another run's report"):
        ensemble.run_ensemble([a, b], other_run)
    with pytest.raises(RunStateError, match=rf"a member is given twice \({a} and {tmp_path / 'x' / '..' / 'a'}\)"):
        ensemble.run_ensemble([a, tmp_path / "x" / ".." / "a", b], tmp_path / "ens")
    (tmp_path / "a_file").write_text("")
    with pytest.raises(UserError, match=rf"^--out {tmp_path / 'a_file'} is a file; give a folder"):
        ensemble.run_ensemble([a, b], tmp_path / "a_file")
    ensemble.run_ensemble([a, b], tmp_path / "ens", num_samples=20)
    ensemble.run_ensemble([a, b], tmp_path / "ens", num_samples=20)  # an ensemble's own folder may be rewritten
    with pytest.raises(RunStateError, match="an ensemble's report; fuse its members"):
        ensemble.run_ensemble([a, tmp_path / "ens"], tmp_path / "ens2")


def test_unreadable_member_reports_are_refused_with_one_line_naming_the_file(tmp_path):
    a, b = write_member(tmp_path / "a", A), write_member(tmp_path / "b", B)
    (b / "fold_1" / "report" / "predictions_clips.csv").write_text("clip_id,patient_id,label,prediction,p_ASD\nx,P1,ASD,ASD,1\n")
    with pytest.raises(RunStateError, match=r"b/fold_1/report/predictions_clips.csv: cannot be read as a fold's clip predictions"):
        ensemble.run_ensemble([a, b], tmp_path / "ens")
    (b / "report" / "results.json").write_text("{not json")
    with pytest.raises(RunStateError, match=r"b/report/results.json: not a cross-validation's report \(JSONDecodeError"):
        ensemble.run_ensemble([a, b], tmp_path / "ens")
    (b / "report" / "results.json").write_text(json.dumps({"class_names": list(CLASSES), "headline": {}}))
    with pytest.raises(RunStateError, match=r"not a cross-validation's report \(KeyError: 'folds'\)"):
        ensemble.run_ensemble([a, b], tmp_path / "ens")


def test_a_member_without_clip_predictions_and_no_bootstrap_are_refused_with_one_line(tmp_path, capsys):
    a, b = write_member(tmp_path / "a", A), write_member(tmp_path / "b", B)
    with pytest.raises(SystemExit):
        ensemble_mode.main([str(a), str(b), "--out", str(tmp_path / "ens"), "--bootstrap-samples", "0"])
    assert "--bootstrap-samples=0: the 95% CIs need at least 1 resample" in capsys.readouterr().err
    for fold in (0, 1):  # a header without rows, as an evaluation stopped before its first clip leaves it
        path = b / f"fold_{fold}" / "report" / "predictions_clips.csv"
        path.write_text(path.read_text().splitlines()[0] + "\n")
    with pytest.raises(RunStateError, match="b/fold_0/report/predictions_clips.csv: holds no clip predictions"):
        ensemble.run_ensemble([a, b], tmp_path / "ens")
    assert not (tmp_path / "ens").exists()


def test_unfinished_or_too_few_members_are_refused_with_one_line(tmp_path, capsys):
    a = write_member(tmp_path / "a", A)
    with pytest.raises(SystemExit) as stopped:
        ensemble_mode.main([str(a), str(tmp_path / "missing"), "--out", str(tmp_path / "ens")])
    missing = re.escape(str(tmp_path / "missing"))
    assert stopped.value.code == 1
    expected = rf"error: {missing}: not found; give finished --mode=cv runs or --mode=predict output folders\n"
    assert re.fullmatch(expected, capsys.readouterr().err)
    (tmp_path / "unfinished").mkdir()
    with pytest.raises(SystemExit):
        ensemble_mode.main([str(a), str(tmp_path / "unfinished"), "--out", str(tmp_path / "ens")])
    unfinished = re.escape(str(tmp_path / "unfinished" / "report" / "results.json"))
    assert re.fullmatch(rf"error: {unfinished}: not found; .* --mode=cv first\)\n", capsys.readouterr().err)
    with pytest.raises(SystemExit) as stopped:
        ensemble_mode.main([str(a), "--out", str(tmp_path / "ens")])
    assert stopped.value.code == 1
    assert capsys.readouterr().err == "error: an ensemble needs two or more members (finished CVs or --mode=predict folders), got 1\n"


def test_the_command_line_writes_and_prints_the_ensembles_tables(tmp_path, capsys):
    a, b = write_member(tmp_path / "a", A), write_member(tmp_path / "b", B)
    ensemble_mode.main([str(a), str(b), "--out", str(tmp_path / "ens"), "--bootstrap-samples", "20"])
    printed = capsys.readouterr().out
    assert "| patient level |" in printed and "| clip level |" in printed
    assert json.loads((tmp_path / "ens" / "report" / "results.json").read_text())["members"] == [str(a), str(b)]
    assert (tmp_path / "ens" / "report" / "predictions_patients.csv").exists()
    assert (tmp_path / "ens" / "report" / "roc_patient.png").stat().st_size > 0


NEW_CLIPS = [("N1_c1", "N1"), ("N1_c2", "N1"), ("N2_c1", "N2")]


def write_predicted(folder, probs, classes=CLASSES, clips=NEW_CLIPS):
    """A --mode=predict output folder: unlabelled clip predictions with a gait parameter."""
    ids = np.array([c for c, _ in clips])
    predictions = aggregate.Predictions(ids, np.zeros(len(ids), np.int64), np.asarray(probs, float))
    gait = {c: {"cadence_steps_per_min": 100.0 + i} for i, (c, _) in enumerate(clips)}
    folder.mkdir(parents=True)
    report.write_predictions(folder / "predictions_clips.csv", "clip", predictions, classes, dict(clips), gait, labelled=False)
    return folder


def read_rows(path):
    with path.open(newline="") as f:
        return {r.get("clip_id", r["patient_id"]): r for r in csv.DictReader(f)}


def test_predict_folders_fuse_into_the_new_patients_diagnoses(tmp_path, capsys):
    a = write_predicted(tmp_path / "seed_0", [[0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.1, 0.1, 0.8]])
    b = write_predicted(tmp_path / "seed_1", [[0.2, 0.7, 0.1], [0.2, 0.5, 0.3], [0.3, 0.1, 0.6]])
    ensemble_mode.main([str(a), str(b), "--out", str(tmp_path / "fused")])
    clips = read_rows(tmp_path / "fused" / "predictions_clips.csv")
    assert float(clips["N1_c1"]["p_DHS"]) == pytest.approx(0.5) and clips["N1_c1"]["prediction"] == "DHS"
    assert float(clips["N2_c1"]["cadence_steps_per_min"]) == 102.0  # the clip's gait parameters stay
    patients = read_rows(tmp_path / "fused" / "predictions_patients.csv")
    # N1: fused clips [0.4, 0.5, 0.1] and [0.2, 0.6, 0.2] -> [0.3, 0.55, 0.15]
    assert [float(patients["N1"][f"p_{c}"]) for c in CLASSES] == pytest.approx([0.3, 0.55, 0.15])
    assert patients["N2"]["prediction"] == "LCS_HipOA" and "label" not in patients["N2"]
    assert json.loads((tmp_path / "fused" / "ensemble.json").read_text())["members"] == [str(a), str(b)]
    printed = capsys.readouterr().out
    assert re.search(r"N1\s+DHS\s+0.300\s+0.550\s+0.150\s+2\n", printed), printed  # and N1's two clips
    with pytest.raises(RunStateError, match="fused: an ensemble's predictions; fuse its members instead"):
        ensemble.fuse_predicted([a, tmp_path / "fused"], tmp_path / "fused_again")


def test_predict_folders_of_other_clips_or_classes_and_taken_outputs_are_refused_with_one_line(tmp_path, capsys):
    a = write_predicted(tmp_path / "a", np.full((3, 3), 1 / 3))
    other_clips = write_predicted(tmp_path / "b", np.full((3, 3), 1 / 3), clips=[*NEW_CLIPS[:2], ("N3_c1", "N3")])
    other_classes = write_predicted(tmp_path / "c", np.full((3, 2), 0.5), classes=("ASD", "DHS"))
    cv_run = write_member(tmp_path / "cv", A)
    for member, message in (
        (other_clips, "b/predictions_clips.csv: tested on other clips than"),
        (other_classes, r"c: predicts \['ASD', 'DHS'\], but .*a predicts \['ASD', 'DHS', 'LCS_HipOA'\]"),
        (cv_run, "cv: not a --mode=predict output folder; fuse predictions with predictions, CVs with CVs"),
    ):
        with pytest.raises(SystemExit):
            ensemble_mode.main([str(a), str(member), "--out", str(tmp_path / "fused")])
        assert re.fullmatch(rf"error: .*{message}.*\n", capsys.readouterr().err)
    assert not (tmp_path / "fused").exists()
    b = write_predicted(tmp_path / "d", np.full((3, 3), 1 / 3))
    ensemble_mode.main([str(a), str(b), "--out", str(tmp_path / "fused")])
    before = (tmp_path / "fused" / "predictions_patients.csv").read_text()
    with pytest.raises(SystemExit):
        ensemble_mode.main([str(a), str(b), "--out", str(tmp_path / "fused")])
    assert "already holds predictions (predictions_clips.csv, predictions_patients.csv, ensemble.json)" in capsys.readouterr().err
    assert (tmp_path / "fused" / "predictions_patients.csv").read_text() == before
    (a / "predictions_clips.csv").write_text("clip_id,patient_id,label,prediction,p_ASD\nx,P1,ASD,ASD,1\n")
    with pytest.raises(RunStateError, match=r"a/predictions_clips.csv: cannot be read as --mode=predict's clip predictions"):
        ensemble.fuse_predicted([a, b], tmp_path / "fused2")

"""End to end through `launch.py` on the smoke config: train, resume after a kill, NaN guard."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, cpu_devices_env

SMOKE = "configs/crossattn.py:smoke"


def launch_command(workdir: Path, data_dir: Path, *overrides: str, mode: str = "train", config: str = SMOKE) -> list[str]:
    return [
        sys.executable,
        "launch.py",
        f"--config={config}",
        f"--workdir={workdir}",
        f"--mode={mode}",
        f"--config.data.data_dir={data_dir}",
        *overrides,
    ]


def run_launch(
    workdir: Path, data_dir: Path, *overrides: str, mode: str = "train", config: str = SMOKE
) -> subprocess.CompletedProcess:
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    return subprocess.run(
        launch_command(workdir, data_dir, *overrides, mode=mode, config=config),
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def read_metrics(workdir: Path) -> list[dict]:
    return [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]


def final_params(workdir: Path) -> dict[str, np.ndarray]:
    """The latest checkpoint's params as flat numpy arrays (read with orbax, no model needed)."""
    import jax
    import orbax.checkpoint as ocp

    ckpt_dir = workdir / "checkpoints"
    step = max(int(p.name) for p in ckpt_dir.iterdir() if p.name.isdigit())
    checkpointer = ocp.PyTreeCheckpointer()
    path = ckpt_dir / str(step) / "state"
    tree = checkpointer.metadata(path).item_metadata.tree
    as_numpy = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), tree)  # any device layout
    restored = checkpointer.restore(path, args=ocp.args.PyTreeRestore(restore_args=as_numpy))

    leaves = jax.tree_util.tree_flatten_with_path(restored["params"])[0]
    return {jax.tree_util.keystr(path): np.asarray(leaf) for path, leaf in leaves}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, data_dir) -> Path:
    workdir = tmp_path_factory.mktemp("uninterrupted")
    proc = run_launch(workdir, data_dir)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return workdir


def test_smoke_run_writes_checkpoints_metrics_and_report(uninterrupted):
    results = json.loads((uninterrupted / "report" / "results.json").read_text())
    for level in ("clip", "patient"):
        for metric in ("accuracy", "balanced_accuracy", "macro_f1", "auc"):
            assert metric in results["levels"][level]["metrics"], (level, metric)
    splits = json.loads((uninterrupted / "splits.json").read_text())
    assert splits  # the fold assignment is saved for audit
    metrics = read_metrics(uninterrupted)
    scores = {m["step"]: m["val_patient_macro_f1"] for m in metrics if "val_patient_macro_f1" in m}
    assert len(scores) >= 2 and results["selected_step"] in scores
    assert scores[results["selected_step"]] == max(scores.values())  # the checkpoint kept is the best on validation
    assert any("steps_per_second" in m for m in metrics)
    assert any("compile_seconds" in m for m in metrics)
    assert list((uninterrupted / "tensorboard").glob("events.out.tfevents.*"))


def kill_when(proc: subprocess.Popen, ready, after: float = 0.0, timeout: float = 300) -> None:
    """SIGKILL `proc` `after` seconds once `ready()` holds (polled every 10 ms)."""
    deadline = time.time() + timeout
    while not ready() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    time.sleep(after)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_killed_run_resumes_to_bitwise_identical_params_and_results(uninterrupted, tmp_path, data_dir):
    """Killed twice, first while step 15's checkpoint is being written, then at a random moment
    of the rerun; the third run ends with the uninterrupted run's params, batches and results.json."""
    workdir, checkpoints = tmp_path / "killed", tmp_path / "killed" / "checkpoints"
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    start = lambda: subprocess.Popen(  # noqa: E731
        launch_command(workdir, data_dir), cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    first = start()
    kill_when(first, lambda: checkpoints.exists() and any(p.name.startswith("15.orbax-checkpoint-tmp") for p in checkpoints.iterdir()))
    assert not (checkpoints / "15").exists(), "the save finished before the kill; " + first.stderr.read().decode()[-2000:]

    second, delay = start(), np.random.default_rng().uniform(0.0, 0.5)  # the rest of the run takes a few seconds
    kill_when(second, lambda: (checkpoints / "15").exists(), after=delay)
    assert (checkpoints / "15").exists(), second.stderr.read().decode()[-4000:]
    assert not (workdir / "report" / "results.json").exists(), f"the run finished before it could be killed ({delay=:.2f} s)"

    resumed = run_launch(workdir, data_dir)
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    assert "resumed from step" in resumed.stderr

    expected, got = final_params(uninterrupted), final_params(workdir)
    assert expected.keys() == got.keys()
    for key in expected:
        np.testing.assert_array_equal(got[key], expected[key], err_msg=f"{key} ({delay=:.2f} s)")
    fingerprints = lambda w: {m["step"]: m["batch_fingerprint"] for m in read_metrics(w) if "batch_fingerprint" in m}  # noqa: E731
    reference, after_restart = fingerprints(uninterrupted), fingerprints(workdir)
    assert after_restart and all(reference[step] == fp for step, fp in after_restart.items())
    results = "report/results.json"
    assert (workdir / results).read_bytes() == (uninterrupted / results).read_bytes()


def clip_probabilities(workdir: Path) -> dict[str, np.ndarray]:
    with open(workdir / "report" / "predictions_clips.csv") as f:
        return {row["clip_id"]: np.array([float(v) for k, v in row.items() if k.startswith("p_")]) for row in csv.DictReader(f)}


def test_pmap_on_8_devices_trains_checkpoints_and_evaluates_like_one_device(uninterrupted, tmp_path, data_dir):
    """`train.parallel=pmap` end to end on 8 CPU devices: training, validation selection,
    checkpoints and the test report match the one-device run; and a one-device checkpoint
    restores and evaluates through pmap to the same predictions."""
    env = cpu_devices_env(8)
    launch = lambda workdir, mode: subprocess.run(  # noqa: E731
        launch_command(workdir, data_dir, "--config.train.parallel=pmap", mode=mode),
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    trained = launch(tmp_path / "pmap", "train")
    assert trained.returncode == 0, trained.stderr[-4000:]
    assert "data parallel (pmap) over 8 devices" in trained.stderr, trained.stderr[-2000:]
    expected, got = final_params(uninterrupted), final_params(tmp_path / "pmap")
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], rtol=0, atol=1e-5, err_msg=key)
    results = lambda w: json.loads((w / "report" / "results.json").read_text())  # noqa: E731
    assert results(tmp_path / "pmap")["selected_step"] == results(uninterrupted)["selected_step"]
    reference = clip_probabilities(uninterrupted)
    for workdir in (tmp_path / "pmap", shutil.copytree(uninterrupted, tmp_path / "evaluated")):
        if workdir.name == "evaluated":
            evaluated = launch(workdir, "eval")
            assert evaluated.returncode == 0, evaluated.stderr[-4000:]
        got_probs = clip_probabilities(workdir)
        assert got_probs.keys() == reference.keys()
        for clip_id, probs in reference.items():
            np.testing.assert_allclose(got_probs[clip_id], probs, atol=1e-5, err_msg=f"{workdir.name} {clip_id}")


def test_nonfinite_loss_stops_with_the_step_and_keeps_the_checkpoint(tmp_path, data_dir):
    workdir = tmp_path / "nan"
    proc = run_launch(workdir, data_dir, "--config.optim.learning_rate=1e30", "--config.optim.grad_clip=0")
    assert proc.returncode != 0
    assert "non-finite loss at step" in proc.stderr
    assert not (workdir / "report" / "results.json").exists()


def png_ok(path: Path) -> bool:
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_eval_mode_reproduces_the_test_report_and_tests_an_external_folder(uninterrupted, data_dir, tiny_cohort):
    before = json.loads((uninterrupted / "report" / "results.json").read_text())
    proc = run_launch(uninterrupted, data_dir, mode="eval")
    assert proc.returncode == 0, proc.stderr[-4000:]
    after = json.loads((uninterrupted / "report" / "results.json").read_text())
    assert after["headline"] == before["headline"] and after["selected_step"] == before["selected_step"]
    external = run_launch(
        uninterrupted, data_dir, "--config.data.source=files", f"--config.data.manual_dir={tiny_cohort}", mode="eval"
    )
    assert external.returncode == 0, external.stderr[-4000:]
    report = json.loads((uninterrupted / "report_external" / "results.json").read_text())
    with open(tiny_cohort / "clips.csv") as f:
        taking_part = sum(1 for row in csv.DictReader(f) if row["diagnosis"] != "normal")
    assert report["test_clips"] == taking_part


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return proc.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("mode", ["explain", "export"])
def test_a_workdir_without_a_run_is_refused_before_anything_is_written_in_it(mode, tmp_path, data_dir):
    empty, cv_root = tmp_path / "empty", tmp_path / "cv"
    empty.mkdir()
    (cv_root / "fold_0").mkdir(parents=True)
    assert one_line_error(run_launch(empty, data_dir, mode=mode)).endswith("is not a trained run (train it first, or check --workdir)")
    assert one_line_error(run_launch(cv_root, data_dir, mode=mode)) == (
        f"error: {cv_root} is a cross-validation run: give one of its folds, e.g. --workdir={cv_root / 'fold_0'}"
    )
    assert list(empty.iterdir()) == [] and [p.name for p in cv_root.iterdir()] == ["fold_0"]


def test_a_damaged_run_config_is_named_in_one_line(tmp_path, data_dir):
    for content, problem in (("not json", "does not read as JSON"), ("{}", "lacks the data, model or train section")):
        (tmp_path / "config.json").write_text(content)
        message = one_line_error(run_launch(tmp_path, data_dir, mode="eval"))
        assert f"{tmp_path / 'config.json'}: not a run's config, it {problem}" in message


def test_another_models_config_on_a_trained_run_says_which_model_fields_differ(uninterrupted, data_dir):
    before = (uninterrupted / "report" / "results.json").read_text()
    message = one_line_error(run_launch(uninterrupted, data_dir, mode="eval", config="configs/cnn.py:smoke"))
    assert message.startswith(f"error: {uninterrupted}: its checkpoint (step ")
    assert "does not fit the model --config describes (" in message and "model.name='cnn' there, 'crossattn' in the run" in message
    assert (uninterrupted / "report" / "results.json").read_text() == before  # nothing of the run rewritten


def test_a_damaged_checkpoint_is_named_in_one_line(uninterrupted, data_dir, tmp_path):
    damaged = shutil.copytree(uninterrupted, tmp_path / "run")
    step = json.loads((damaged / "report" / "results.json").read_text())["selected_step"]
    for data_file in (damaged / "checkpoints" / str(step) / "state").rglob("d/*"):
        content = bytearray(data_file.read_bytes())
        content[len(content) // 4: len(content) // 2] = bytes(len(content) // 2 - len(content) // 4)
        data_file.write_bytes(bytes(content))
    proc = run_launch(damaged, data_dir, mode="eval")
    # Left: tensorstore's reads still in flight when the first one failed print "Event loop is closed"
    # tracebacks from their own threads, before or after the error line (exit_with_error writes it whole)
    _, _, after = proc.stderr.partition("error: ")
    message = after.split("Traceback")[0].splitlines()[0]
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert message.startswith(f"{damaged / 'checkpoints' / str(step)}: cannot be read (") and len(message) < 600
    assert message.endswith("); its files may be damaged"), message


def test_report_plots_and_per_clip_gait_parameters(uninterrupted):
    report = uninterrupted / "report"
    for name in ("roc_patient.png", "confusion_patient.png", "reliability_patient.png", "roc_clip.png"):
        assert png_ok(report / name), name
    with open(report / "predictions_clips.csv") as f:
        rows = list(csv.DictReader(f))
    assert rows and {"cadence_steps_per_min", "trunk_inclination_deg", "stance_swing_ratio"} <= set(rows[0])


def test_explain_writes_attributions_sanity_checks_and_figures(uninterrupted, data_dir):
    proc = run_launch(uninterrupted, data_dir, mode="explain")
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = uninterrupted / "report" / "explain"
    payload = json.loads((out / "explanations.json").read_text())
    classes = {"ASD", "DHS", "LCS_HipOA"}
    assert set(payload["mean_attribution"]) == classes and all(len(v) == 5 for v in payload["mean_attribution"].values())
    assert set(payload["agreement"]) <= classes and payload["agreement"]
    for row in payload["agreement"].values():
        assert {"spearman", "chance_spearman", "top_region_match", "chance_top_region_match"} <= set(row) and row["annotated_clips"] > 0
    check = payload["randomisation_check"]
    assert -1.0 <= check["rank_correlation"] <= 1.0 and check["passed"] == (check["rank_correlation"] < 0.5)
    assert "not an explanation" in payload["attention_prior_biased"]["note"]  # crossattn's attention, labelled as what it is
    assert png_ok(out / "attribution_by_class.png")
    for clip_id, clip in payload["clips"].items():
        assert png_ok(out / f"{clip_id}_regions_time.png") and png_ok(out / f"{clip_id}_keyframes.png")
        assert set(clip["region_attribution"]) == {"head", "shoulder", "wrist", "lumbar_pelvis", "foot"}
        assert clip["integrated_gradients_completeness_gap"] < 0.05
    from PIL import Image

    gif = Image.open(next(out.glob("*.gif")))
    assert gif.format == "GIF" and gif.n_frames > 10


def test_cross_validation_reports_every_fold(tmp_path, data_dir):
    workdir = tmp_path / "cv"
    proc = run_launch(workdir, data_dir, "--config.train.num_steps=10", "--config.train.eval_every=10", mode="cv")
    assert proc.returncode == 0, proc.stderr[-4000:]
    results = json.loads((workdir / "report" / "results.json").read_text())
    assert results["num_folds"] == 3 and [f["fold"] for f in results["folds"]] == [0, 1, 2]
    tested = []
    for fold in range(3):
        with open(workdir / f"fold_{fold}" / "report" / "predictions_patients.csv") as f:
            tested += [row["patient_id"] for row in csv.DictReader(f)]
    assert len(tested) == len(set(tested))  # every patient tested exactly once
    patient = results["summary"]["patient"]
    assert patient["pooled"]["count"] == len(tested)
    assert set(patient["std"]) == {"accuracy", "balanced_accuracy", "macro_f1", "auc"}
    assert "± " in (workdir / "report" / "results.md").read_text()
    assert png_ok(workdir / "report" / "roc_patient.png")
    assert_pooled_predictions(workdir, results["class_names"], tested)


def assert_pooled_predictions(workdir: Path, class_names: list[str], tested: list[str]) -> None:
    """The CV report's pooled CSVs: every tested patient and clip once, each in the fold whose
    saved split has it on the test side, with probabilities that make the prediction."""
    read = lambda path: list(csv.DictReader(path.open()))  # noqa: E731
    patients, clips = read(workdir / "report" / "predictions_patients.csv"), read(workdir / "report" / "predictions_clips.csv")
    assert sorted(r["patient_id"] for r in patients) == sorted(tested)
    per_fold_clips = [read(workdir / f"fold_{fold}" / "report" / "predictions_clips.csv") for fold in range(3)]
    assert len(clips) == sum(len(rows) for rows in per_fold_clips) == len({r["clip_id"] for r in clips})
    assert list(patients[0]) == ["patient_id", "fold", "label", "prediction", *(f"p_{c}" for c in class_names)]
    test_side = [json.loads((workdir / f"fold_{fold}" / "splits.json").read_text())["test"]["patients"] for fold in range(3)]
    for row in patients + clips:
        assert row["patient_id"].split("|")[0] in test_side[int(row["fold"])], row
        probs = [float(row[f"p_{c}"]) for c in class_names]
        assert sum(probs) == pytest.approx(1.0, abs=1e-4) and row["prediction"] == class_names[int(np.argmax(probs))]
    assert {r["clip_id"]: r["fold"] for r in clips} == {r["clip_id"]: str(f) for f, rows in enumerate(per_fold_clips) for r in rows}


def test_a_second_run_with_grain_workers_is_bitwise_the_same(uninterrupted, tmp_path, data_dir):
    """Determinism: the same config and seed, run again with 2 grain worker processes instead of
    none, feed the same batches and end with bitwise the same params and results.json."""
    workdir = tmp_path / "workers"
    proc = run_launch(workdir, data_dir, "--config.data.worker_count=2")
    assert proc.returncode == 0, proc.stderr[-4000:]
    fingerprints = lambda w: {m["step"]: m["batch_fingerprint"] for m in read_metrics(w) if "batch_fingerprint" in m}  # noqa: E731
    assert fingerprints(workdir) == fingerprints(uninterrupted)
    expected, got = final_params(uninterrupted), final_params(workdir)
    for key in expected:
        np.testing.assert_array_equal(got[key], expected[key], err_msg=key)
    results = "report/results.json"
    assert (workdir / results).read_bytes() == (uninterrupted / results).read_bytes()


GOLDEN = Path(__file__).parent / "data" / "smoke_results.json"


def assert_same_report(got, expected, path="results"):
    """Equal structure, discrete values and counts; floats to 1e-6 relative (a CPU with other vector
    units may round differently; a real change of behaviour moves them far more)."""
    if isinstance(expected, dict):
        assert got.keys() == expected.keys(), path
        for key in expected:
            assert_same_report(got[key], expected[key], f"{path}.{key}")
    elif isinstance(expected, list):
        assert len(got) == len(expected), path
        for i, (g, e) in enumerate(zip(got, expected)):
            assert_same_report(g, e, f"{path}[{i}]")
    elif isinstance(expected, float):
        assert got == pytest.approx(expected, rel=1e-6, abs=1e-9, nan_ok=True), path
    else:
        assert got == expected, path


def test_smoke_report_is_the_recorded_one(uninterrupted):
    """The smoke run's results.json as recorded in tests/data (bitwise equal on the machine that
    recorded it). Regenerate it only for a deliberate change of numbers:
    ASD_JAX_RECORD_GOLDEN=1 python -m pytest tests/test_launch.py -k recorded."""
    got = json.loads((uninterrupted / "report" / "results.json").read_text())
    if os.environ.get("ASD_JAX_RECORD_GOLDEN"):
        GOLDEN.write_text((uninterrupted / "report" / "results.json").read_text())
    assert_same_report(got, json.loads(GOLDEN.read_text()))

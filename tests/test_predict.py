"""--mode=predict on a run whose training data were deleted (a keypoint folder, a rendered video),
and the deployable export: its README snippet, run where neither JAX nor asd_jax can be
imported, gives --mode=predict's probabilities. One smoke run is trained for the whole module."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_launch import ROOT, run_launch
from test_mixed_diagnoses import with_mixed_patients

from asd_jax.data.synthetic import CohortParams, generate_cohort
from asd_jax.pytorch import bundle

FILES = "--config.data.source=files"
# The run predicts the 3-class task but was trained on LCS and HipOA apart: every reader below
# (predict, export, the bundled predictor, ONNX) must merge its four logits into three classes.
TRAIN_APART = "--config.data.train_classes=ASD:ASD,DHS:DHS,LCS:LCS,HipOA:HipOA,normal:-"


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def predict_launch(*args: str, **kwargs) -> subprocess.CompletedProcess:
    env = dict(os.environ, JAX_PLATFORMS="cpu", **kwargs)
    return subprocess.run(
        [sys.executable, "launch.py", "--mode=predict", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_cohort) -> Path:
    """A smoke run trained (and exported) on a copy of the tiny cohort, on four training classes
    reported as three; then the copy and its built dataset are deleted, so everything below works
    from the run alone."""
    root = tmp_path_factory.mktemp("predict")
    cohort, data_dir, workdir = shutil.copytree(tiny_cohort, root / "cohort"), root / "tfds", root / "run"
    for mode in ("train", "export"):
        proc = run_launch(workdir, data_dir, FILES, f"--config.data.manual_dir={cohort}", TRAIN_APART, mode=mode)
        assert proc.returncode == 0, proc.stderr[-3000:]
    shutil.rmtree(cohort)
    shutil.rmtree(data_dir)
    return workdir


@pytest.fixture(scope="module")
def new_clips(tmp_path_factory) -> Path:
    """Unlabeled clips of new patients: annotations.pkl and a clips.csv without diagnoses."""
    generated = generate_cohort(tmp_path_factory.mktemp("new") / "generated", CohortParams(num_patients=5, num_clips=10, seed=11))
    folder = generated.parent / "unlabeled"
    folder.mkdir()
    shutil.copyfile(generated / "annotations.pkl", folder / "annotations.pkl")
    rows = read_csv(generated / "clips.csv")
    with (folder / "clips.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["clip_id", "patient_id", "fps"])
        writer.writerows((r["clip_id"], r["patient_id"], 25 if i % 2 else 30) for i, r in enumerate(rows))  # two frame rates
    return folder


@pytest.fixture(scope="module")
def predicted(trained, new_clips) -> tuple[Path, subprocess.CompletedProcess]:
    proc = predict_launch(f"--workdir={trained}", f"--input={new_clips}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return trained / "predict", proc


def test_predict_writes_clips_patients_figures_and_a_summary(predicted, new_clips):
    out, proc = predicted
    clips, patients = read_csv(out / "predictions_clips.csv"), read_csv(out / "predictions_patients.csv")
    expected = {r["clip_id"]: r["patient_id"] for r in read_csv(new_clips / "clips.csv")}
    assert {r["clip_id"]: r["patient_id"] for r in clips} == expected
    classes = ("ASD", "DHS", "LCS_HipOA")
    assert list(clips[0])[:6] == ["clip_id", "patient_id", "prediction", *(f"p_{c}" for c in classes)]
    assert {"cadence_steps_per_min", "stride_time_s", "trunk_inclination_deg"} <= set(clips[0])
    for row in clips:
        probs = [float(row[f"p_{c}"]) for c in classes]
        assert sum(probs) == pytest.approx(1, abs=1e-5) and row["prediction"] == classes[int(np.argmax(probs))]
    assert sorted(r["patient_id"] for r in patients) == sorted(set(expected.values()))
    for row in patients:  # a patient: the mean of their clips' probabilities
        members = [r for r in clips if r["patient_id"] == row["patient_id"]]
        for c in classes:
            assert float(row[f"p_{c}"]) == pytest.approx(np.mean([float(r[f"p_{c}"]) for r in members]), abs=2e-6)
    for clip_id in expected:  # crossattn: its attention over time and key frames
        assert (out / "figures" / f"{clip_id}_regions_time.png").exists() and (out / "figures" / f"{clip_id}_keyframes.png").exists()
    table = proc.stdout[proc.stdout.index("patient  predicted") :]
    assert all(p in table for p in expected.values()) and "p_LCS_HipOA" in table and "scoring windows" in proc.stderr


def test_predict_refuses_to_overwrite_with_one_error_line(predicted, trained, new_clips):
    proc = predict_launch(f"--workdir={trained}", f"--input={new_clips}")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: {trained / 'predict'} already holds predictions (predictions_clips.csv, predictions_patients.csv, figures); "
        "choose another --out or move them away first"
    ]


def test_predict_refuses_an_empty_batch_and_an_out_file_before_reading_a_clip(trained, new_clips, tmp_path):
    empty = predict_launch(f"--workdir={trained}", f"--input={new_clips}", "--config=configs/crossattn.py:smoke",
                           "--config.data.eval_batch_size=0", f"--out={tmp_path / 'out'}")
    assert empty.returncode != 0 and "Traceback" not in empty.stderr, empty.stderr[-2000:]
    assert empty.stderr.strip().splitlines()[-1] == "error: data.eval_batch_size=0: a batch needs at least one example per device"
    (tmp_path / "a_file").write_text("")
    to_file = predict_launch(f"--workdir={trained}", f"--input={new_clips}", f"--out={tmp_path / 'a_file'}")
    expected = f"error: --out {tmp_path / 'a_file'} is a file; give a folder (it is created if missing)"
    assert to_file.stderr.strip().splitlines()[-1] == expected
    assert not (tmp_path / "out").exists()


def test_predict_on_a_rendered_video(trained, tmp_path):
    test_video_pose = pytest.importorskip("test_video_pose")  # needs OpenCV and MediaPipe (requirements-video.txt)
    bundle_path = test_video_pose.pose_model.ensure_bundle()
    videos = tmp_path / "videos"
    (videos / "P01").mkdir(parents=True)
    test_video_pose.write_video(videos / "P01" / "walk.mp4", test_video_pose.walk_pixels())
    out = tmp_path / "out"
    proc = predict_launch(f"--workdir={trained}", f"--input={videos}", f"--out={out}", ASD_JAX_CACHE=str(bundle_path.parent))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / "keypoints" / "annotations.pkl").exists() and "1 video(s), 40 frames" in proc.stdout
    (row,) = read_csv(out / "predictions_clips.csv")
    assert (row["clip_id"], row["patient_id"]) == ("walk", "P01") and row["prediction"] in ("ASD", "DHS", "LCS_HipOA")
    assert (out / "figures" / "walk_regions_time.png").exists()


BLOCKER = """
import importlib.abc, runpy, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split('.')[0] in ('jax', 'jaxlib', 'flax', 'optax', 'orbax', 'asd_jax'):
            raise ImportError('blocked ' + name)
sys.meta_path.insert(0, Block())
runpy.run_path(sys.argv[1], run_name="__main__")
assert not any(m.split('.')[0] in ('jax', 'flax', 'asd_jax') for m in sys.modules)
"""


def run_without_jax(folder: Path, code: str) -> subprocess.CompletedProcess:
    (folder / "script.py").write_text(code)
    (folder / "blocker.py").write_text(BLOCKER)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([sys.executable, "blocker.py", "script.py"], cwd=folder, env=env, capture_output=True, text=True, timeout=300)


def test_the_exported_snippet_gives_predicts_probabilities_without_jax(trained, predicted, new_clips, tmp_path):
    deploy = shutil.copytree(trained / "export", tmp_path / "deploy")  # outside the repository
    shutil.copytree(new_clips, deploy / "keypoints")
    snippet = re.search(r"## Predict.*?```python\n(.*?)```", (deploy / "README.md").read_text(), re.S).group(1)
    proc = run_without_jax(deploy, snippet)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads((deploy / "predictions.json").read_text())
    assert json.loads((deploy / "config.json").read_text())["class_groups"] == [0, 1, 2, 2]  # four logits, three classes
    out, _ = predicted
    classes = ("ASD", "DHS", "LCS_HipOA")
    clips, patients = read_csv(out / "predictions_clips.csv"), read_csv(out / "predictions_patients.csv")
    assert sorted(got["clips"]) == sorted(r["clip_id"] for r in clips)
    assert sorted(got["patients"]) == sorted(r["patient_id"] for r in patients)
    expected = lambda row: [float(row[f"p_{c}"]) for c in classes]  # noqa: E731
    for row in clips:
        clip = got["clips"][row["clip_id"]]
        assert clip["prediction"] == row["prediction"]
        np.testing.assert_allclose([clip["probabilities"][c] for c in classes], expected(row), atol=1e-5)
    for row in patients:
        np.testing.assert_allclose([got["patients"][row["patient_id"]][c] for c in classes], expected(row), atol=1e-5)


def test_the_onnx_backend_and_longer_windows_agree_with_torch(trained, new_clips, tmp_path):
    deploy = shutil.copytree(trained / "export", tmp_path / "deploy")
    code = f"""
import pickle, numpy as np, onnxruntime, torch
from asd_predictor import Predictor
skeletons = pickle.load(open({str(new_clips / 'annotations.pkl')!r}, "rb"))["annotations"]
torch_, onnx_ = Predictor("."), Predictor(".", backend="onnx")
for s in skeletons:
    a = torch_.predict(s["keypoint"], s["keypoint_score"], 30.0, prior=["head", "foot"], img_shape=s["img_shape"])
    b = onnx_.predict(s["keypoint"], s["keypoint_score"], 30.0, prior=["head", "foot"], img_shape=s["img_shape"])
    assert np.abs(a.probabilities - b.probabilities).max() < 1e-5
windows = torch_.windows(skeletons[0]["keypoint"], skeletons[0]["keypoint_score"], 30.0, skeletons[0]["img_shape"])
long = np.concatenate([windows[:2], windows[:2]], axis=1)  # twice the window length
prior = np.full((2, 5), 0.2, np.float32)
(logits,) = onnxruntime.InferenceSession("model.onnx").run(None, {{"pose": long, "prior": prior}})
assert np.abs(logits - torch_._logits(long, prior)).max() < 1e-5
print("ok")
"""
    proc = run_without_jax(deploy, code)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-3000:]


def test_the_bare_network_snippets_give_the_reported_classes(trained, tmp_path):
    """The export README's bare-network snippets (torch, then ONNX) on a model trained on four
    classes and reported on three: both load, and their merged logits agree."""
    deploy = shutil.copytree(trained / "export", tmp_path / "deploy")
    bare = (deploy / "README.md").read_text().split("## The bare network", 1)[1]
    torch_block, onnx_block = re.findall(r"```python\n(.*?)```", bare, re.S)[:2]
    code = (
        torch_block + "torch_reported = reported\n" + onnx_block
        + "assert torch_reported.shape == reported.shape == (1, 3), reported.shape\n"
        + "assert abs(torch_reported - reported).max() < 1e-5\nprint('ok')\n"
    )
    proc = run_without_jax(deploy, code)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-3000:]


def test_a_mixed_diagnosis_patient_is_reported_per_class(trained, tiny_cohort, tmp_path):
    """An external test set in which patient P004 walked ASD and DHS clips: the trained run,
    whose data are gone, reports P004|ASD and P004|DHS as two patient-level units."""
    folder = with_mixed_patients(tiny_cohort, tmp_path / "mixed")
    proc = run_launch(trained, tmp_path / "tfds", FILES, f"--config.data.manual_dir={folder}", mode="eval")
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {r["patient_id"]: r for r in read_csv(trained / "report_external" / "predictions_patients.csv")}
    assert rows["P004|ASD"]["label"] == "ASD" and rows["P004|DHS"]["label"] == "DHS" and "P004" not in rows
    assert "P001" in rows and rows["P001"]["label"] == "LCS_HipOA"  # HipOA and LCS clips: one class, one unit
    results = json.loads((trained / "report_external" / "results.json").read_text())
    assert results["test_patients"] == len(rows)


def test_bundles_stand_alone_or_are_refused(tmp_path):
    with pytest.raises(ValueError, match="neither bundled nor renamed"):
        bundle.bundle(["asd_jax.base.preprocess"], title="x")  # needs base.skeleton
    with pytest.raises(ValueError, match="defined by both"):
        bundle.bundle(["asd_jax.base.errors", "asd_jax.base.errors"], title="x")
    source = bundle.bundle(["asd_jax.base.errors", "asd_jax.base.skeleton", "asd_jax.base.preprocess"], title="x")
    namespace: dict = {}
    exec(compile(source, "bundle", "exec"), namespace)  # noqa: S102 - our own generated source
    pose = np.random.default_rng(0).uniform(size=(40, 17, 3)).astype(np.float32)
    from asd_jax.base import preprocess

    np.testing.assert_array_equal(namespace["normalize_pose"](pose), preprocess.normalize_pose(pose))
    assert "asd_jax" not in "\n".join(line for line in source.splitlines() if "import" in line)


def test_the_project_readme_shows_the_snippet_the_export_writes():
    from asd_jax.pytorch.deploy import SNIPPET

    assert f"```python\n{SNIPPET}```" in (ROOT / "README.md").read_text()

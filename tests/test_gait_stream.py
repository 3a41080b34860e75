"""crossattn and cnn with the clips' clinical gait features as a second input stream (model.gait_features):
the standardisation by the training patients, the pipeline that carries the features, the PyTorch
twin, and a smoke run end to end: predicted, exported with the features measured by the standalone
predictor, and explained with both streams."""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx
from test_export import TOLERANCE, inputs, randomized_flax, smoke_config
from test_input_pipeline import setup  # noqa: F401 - the pipeline's fixture
from test_launch import run_launch
from test_predict import (  # noqa: F401 - new_clips, trained, predicted: test_predict's fixtures
    new_clips,
    predict_launch,
    predicted,
    read_csv,
    run_without_jax,
    trained,
)

from asd_jax.base.errors import ConfigError
from asd_jax.base.gait import CLINICAL_FEATURE_NAMES, clinical_features
from asd_jax.data import folds, input_pipeline
from asd_jax.evaluation.explanations import FEATURE_GROUPS
from asd_jax.evaluation.head_weights import POSE_WEIGHTS, choose
from asd_jax.models import build_model
from asd_jax.models.layers import GaitFeatureEncoder, feature_statistics
from asd_jax.modes import export, head_weights
from asd_jax.pytorch import convert
from asd_jax.training import optim, steps
from asd_jax.training import setup as training_setup
from asd_jax.training.parallel import make_data_parallel

CONFIG = "crossattn_clip_gait_diagnoses"
GAIT_CONFIGS = (CONFIG, "cnn_clip_gait_bones_diagnoses", "stgcn_clip_gait_bones_diagnoses")  # every family that reads the features


def test_feature_statistics_are_median_and_iqr_over_present_values():
    features = np.array([[1.0, np.nan, 3.0], [2.0, np.nan, 3.0], [4.0, np.nan, 3.0], [np.nan, np.nan, 3.0]])
    center, spread = feature_statistics(features)
    # column 0: values 1, 2, 4 -> median 2, quartiles 1.5 and 3 -> IQR 1.5 / 1.349
    np.testing.assert_allclose(center, [2.0, 0.0, 3.0])
    np.testing.assert_allclose(spread, [1.5 / 1.349, 1.0, 1.0], rtol=1e-6)  # no data, no spread: 1


def test_encoder_reads_a_missing_feature_as_the_median_and_clips_outliers():
    encoder = GaitFeatureEncoder(3, 8, 0.0, 0, dtype=jnp.float32, rngs=nnx.Rngs(0))
    encoder.center[...] = jnp.array([10.0, -2.0, 0.5])
    encoder.spread[...] = jnp.array([2.0, 1.0, 0.25])
    at_median = encoder(jnp.array([[10.0, -2.0, 0.5]]), None)
    missing = encoder(jnp.array([[np.nan, -2.0, 0.5]]), None)
    np.testing.assert_array_equal(missing, at_median)
    five_spreads = encoder(jnp.array([[20.0, -2.0, 0.5]]), None)  # (20 - 10) / 2 = 5
    np.testing.assert_array_equal(encoder(jnp.array([[1e6, -2.0, 0.5]]), None), five_spreads)
    assert not np.allclose(five_spreads, at_median)
    with pytest.raises(ConfigError, match=r"gait features \[..., 4\] for a model built for model.gait_features=3"):
        encoder(jnp.zeros((1, 4)), None)


def test_the_explanations_reinitialised_model_keeps_the_feature_statistics():
    """explain's chance level: fresh weights, but the training median and spread kept, so a hidden
    (NaN) feature means the same to both models."""
    config = smoke_config(CONFIG)
    fitted = build_model(config, 3, nnx.Rngs(0))
    fitted.gait.center[...] = jnp.arange(len(CLINICAL_FEATURE_NAMES), dtype=jnp.float32)
    fitted.gait.spread[...] = jnp.full(len(CLINICAL_FEATURE_NAMES), 2.0)
    fresh = training_setup.reinitialised_like(config, fitted, 3)
    np.testing.assert_array_equal(fresh.gait.center[...], fitted.gait.center[...])
    np.testing.assert_array_equal(fresh.gait.spread[...], fitted.gait.spread[...])
    assert not np.allclose(fresh.head.kernel[...], fitted.head.kernel[...])


def test_examples_carry_their_clips_gait_features(setup):  # noqa: F811 - the pipeline's fixture
    source, table, data = setup
    rows = np.arange(len(table))
    expected = {int(r): clinical_features(source[int(table.record[r])]["pose"], float(source[int(table.record[r])]["fps"])) for r in rows}
    batch = next(input_pipeline.train_iterator(source, table, rows, data, seed=0, gait_features=True))
    assert batch["features"].shape == (data.batch_size, len(CLINICAL_FEATURE_NAMES))
    examples = input_pipeline.TrainExamples(source, table, rows, data, 0, gait_features=True)
    for position in range(4):
        row = int(examples.epoch(0)[position])
        np.testing.assert_array_equal(examples(position)["features"], expected[row])
    for batch in input_pipeline.eval_batches(source, table, rows, data, gait_features=True):
        for index, features in zip(batch["clip_index"], batch["features"]):
            if index >= 0:
                np.testing.assert_array_equal(features, expected[int(index)])
    assert "features" not in next(input_pipeline.train_iterator(source, table, rows, data, seed=0))


@pytest.mark.parametrize("name", GAIT_CONFIGS)
@pytest.mark.parametrize("fusion", ["sum", "concat"])
def test_the_twin_reads_the_gait_features_like_jax(name, fusion):
    config = smoke_config(name)
    config.model.gait_fusion = fusion
    model, flat = randomized_flax(config)  # the standardisation's constants included
    twin = export.torch_twin(config, 3, convert.flax_to_torch(flat))
    pose, prior = inputs(config.data.window)
    features = np.random.default_rng(2).normal(size=(len(pose), len(CLINICAL_FEATURE_NAMES))).astype(np.float32)
    features[0, 3], features[1, 5] = np.nan, 40.0  # a missing measure and an outlier
    with torch.no_grad():
        torch_logits = twin(torch.from_numpy(pose), torch.from_numpy(prior), torch.from_numpy(features)).numpy()
    flax_logits = np.asarray(model(jnp.asarray(pose), jnp.asarray(prior), features=jnp.asarray(features)).logits)
    np.testing.assert_allclose(torch_logits, flax_logits, **TOLERANCE)
    with pytest.raises(ConfigError, match="model.gait_features needs the clips' gait features"):
        model(jnp.asarray(pose), jnp.asarray(prior))


@pytest.mark.parametrize("name", GAIT_CONFIGS)
def test_summed_streams_are_each_trained_on_the_labels(name):
    """gait_fusion='sum': the logits are the pose head's plus the gait head's, and the training
    objective is the cross-entropy of the sum plus that of each head alone."""
    config = smoke_config(name)
    config.model.dropout = 0.0  # the step's dropout keys then change nothing
    optimizer = optim.make_optimizer(config.optim, 10)
    graphdef, state = training_setup.create_state(config, 3, optimizer)
    loss_config = steps.LossConfig(3, config.optim.label_smoothing, None)
    dp = make_data_parallel(
        "shard_map",
        functools.partial(steps.train_step, graphdef=graphdef, optimizer=optimizer, loss_config=loss_config),
        functools.partial(steps.eval_step, graphdef=graphdef),
        jax.devices()[:1],
    )
    pose, prior = inputs(config.data.window)
    features = np.random.default_rng(3).normal(size=(len(pose), len(CLINICAL_FEATURE_NAMES))).astype(np.float32)
    labels = np.array([0, 1, 2, 0], np.int32)
    # In training mode, as the step runs it (ST-GCN's BatchNorm then uses the batch's statistics);
    # with no dropout the keys' values change nothing.
    keys = jax.random.split(jax.random.PRNGKey(0), len(pose))
    out = nnx.merge(graphdef, state.params, state.model_state)(
        jnp.asarray(pose), jnp.asarray(prior), features=jnp.asarray(features), dropout_keys=keys
    )
    pose_logits, gait_logits = out.stream_logits
    np.testing.assert_array_equal(out.logits, pose_logits + gait_logits)
    cross_entropy = functools.partial(
        optim.classification_loss, labels=labels, valid=np.ones(4, np.float32), num_classes=3,
        label_smoothing=config.optim.label_smoothing, class_weights=None,
    )
    expected = sum(float(cross_entropy(logits)[0]) for logits in (out.logits, pose_logits, gait_logits)) / 4 + float(out.aux_loss)
    batch = {"pose": pose, "prior": prior, "features": features, "label": labels, "valid": np.ones(4, np.float32)}
    _, metrics = dp.train_step(dp.put_state(state), dp.put_batch(batch))
    assert float(metrics["loss"]) == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ConfigError, match=r"model.gait_fusion='max': expected one of \('concat', 'sum'\)"):
        config.model.gait_fusion = "max"
        build_model(config, 3, nnx.Rngs(0))


@pytest.fixture(scope="module")
def gait_run(tmp_path_factory, data_dir):
    workdir = tmp_path_factory.mktemp("gait") / "run"
    proc = run_launch(
        workdir, data_dir, "--config.train.num_steps=10", "--config.train.eval_every=10", config=f"configs/{CONFIG}.py:smoke"
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return workdir


def test_a_run_standardises_by_its_training_patients_only(gait_run, data_dir):
    config = smoke_config(CONFIG)
    config.data.train_classes = json.loads((gait_run / "config.json").read_text())["data"]["train_classes"]
    config.data.data_dir = str(data_dir)
    fold = folds.prepare_fold(config, gait_run)
    model, _ = training_setup.restore_model(config, gait_run, len(fold.class_names))
    source = fold.source
    train = np.stack([clinical_features(source[int(fold.table.record[r])]["pose"], float(source[int(fold.table.record[r])]["fps"]))
                      for r in fold.split.train])
    center, spread = feature_statistics(train)
    np.testing.assert_allclose(np.asarray(model.gait.center[...]), center, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(model.gait.spread[...]), spread, rtol=1e-6)
    everyone = np.concatenate([fold.split.train, fold.split.val, fold.split.test])
    all_clips = np.stack([clinical_features(source[int(fold.table.record[r])]["pose"], float(source[int(fold.table.record[r])]["fps"]))
                          for r in everyone])
    assert not np.allclose(feature_statistics(all_clips)[0], center)  # the held-out patients would have moved it
    results = json.loads((gait_run / "report" / "results.json").read_text())
    assert 0.0 <= results["headline"]["patient_macro_f1"] <= 1.0


def assert_same_predictions(snippet_output: Path, prediction_folder: Path) -> None:
    """The export snippet's predictions.json holds the clip and patient probabilities of a
    --mode=predict (or fused) folder's CSV files, to 1e-5."""
    got = json.loads(snippet_output.read_text())
    classes = ("ASD", "DHS", "LCS_HipOA")
    for level, key in (("clips", "clip_id"), ("patients", "patient_id")):
        rows = read_csv(prediction_folder / f"predictions_{level}.csv")
        assert sorted(got[level]) == sorted(row[key] for row in rows)
        for row in rows:
            probabilities = got[level][row[key]]["probabilities"] if level == "clips" else got[level][row[key]]
            np.testing.assert_allclose([probabilities[c] for c in classes], [float(row[f"p_{c}"]) for c in classes], atol=1e-5)


@pytest.fixture(scope="module")
def gait_predicted(gait_run, new_clips, tmp_path_factory) -> Path:  # noqa: F811
    """The gait run's --mode=predict folder of the new patients' clips."""
    out = tmp_path_factory.mktemp("gait_predicted") / "predicted"
    proc = predict_launch(f"--workdir={gait_run}", f"--input={new_clips}", f"--out={out}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def gait_exported(gait_run, data_dir) -> Path:
    proc = run_launch(gait_run, data_dir, config=f"configs/{CONFIG}.py:smoke", mode="export")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return gait_run / export.EXPORT_DIR


def test_the_export_measures_the_gait_features_and_predicts_like_predict_mode(
    gait_run, gait_predicted, gait_exported, new_clips, tmp_path  # noqa: F811
):
    """Exported, a gait-stream model's predictor measures each clip's clinical gait features itself
    (bundled asd_jax/base/gait.py) and gives --mode=predict's clip and patient probabilities on new
    clips at two frame rates, without JAX or asd_jax; its ONNX graph takes the features as a third
    input and agrees."""
    out = gait_predicted
    assert len(list((out / "figures").glob("*_regions_time.png"))) == 10  # the pose's occlusion, the features kept
    for row in read_csv(out / "predictions_clips.csv"):  # each head's own diagnosis beside the model's
        for stream in ("pose", "gait_features"):
            assert abs(sum(float(row[f"{stream}_p_{c}"]) for c in ("ASD", "DHS", "LCS_HipOA")) - 1.0) < 1e-4
    manifest = json.loads((gait_run / export.EXPORT_DIR / "config.json").read_text())
    assert manifest["parity"]["max_abs_logit_diff_torch_vs_jax"] <= export.PARITY_TOLERANCE
    assert manifest["parity"]["max_abs_logit_diff_onnx_vs_torch"] <= export.PARITY_TOLERANCE
    assert "features" in manifest["input"]

    deploy = shutil.copytree(gait_exported, tmp_path / "deploy")  # outside the repository
    shutil.copytree(new_clips, deploy / "keypoints")
    snippet = re.search(r"## Predict.*?```python\n(.*?)```", (deploy / "README.md").read_text(), re.S).group(1)
    onnx_check = f"""
onnx_predictor = Predictor(".", backend="onnx")
for skeleton in skeletons:
    args = (skeleton["keypoint"], skeleton["keypoint_score"], 25.0)
    assert predictor.gait_features(*args, img_shape=skeleton["img_shape"]).shape == ({len(CLINICAL_FEATURE_NAMES)},)
    a = predictor.predict(*args, img_shape=skeleton["img_shape"])
    b = onnx_predictor.predict(*args, img_shape=skeleton["img_shape"])
    assert abs(a.probabilities - b.probabilities).max() < 1e-5
"""
    proc = run_without_jax(deploy, snippet + onnx_check)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_same_predictions(deploy / "predictions.json", out)


def test_exports_of_two_runs_diagnose_together_like_the_fused_predict_folders(
    gait_exported, gait_predicted, trained, predicted, new_clips, tmp_path  # noqa: F811
):
    """Two runs of one task (the gait-stream crossattn and test_predict's plain one), each exported:
    the export README's Ensemble, run without JAX, gives the clip and patient probabilities of
    `python -m asd_jax.modes.ensemble` fusing their --mode=predict folders; exports that report
    other classes are refused in one line."""
    fused = tmp_path / "fused"
    proc = subprocess.run(
        [sys.executable, "-m", "asd_jax.modes.ensemble", f"--out={fused}", str(gait_predicted), str(predicted[0])],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    fused_columns = read_csv(fused / "predictions_clips.csv")[0]  # the clip's gait, not one member's own heads
    assert "cadence_steps_per_min" in fused_columns and not any(c.startswith(("pose_p_", "gait_features_p_")) for c in fused_columns)
    members = tmp_path / "members"
    deploy = shutil.copytree(gait_exported, members / "gait")
    shutil.copytree(trained / export.EXPORT_DIR, members / "plain")
    other = shutil.copytree(trained / export.EXPORT_DIR, members / "other_classes")
    manifest = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps(manifest | {"class_names": ["A", "B", "C"]}))
    shutil.copytree(new_clips, deploy / "keypoints")
    readme = (deploy / "README.md").read_text()
    snippet = re.search(r"## Predict.*?```python\n(.*?)```", readme, re.S).group(1)
    ensemble = re.search(r"## Several exported runs.*?```python\n(.*?)```", readme, re.S).group(1)
    assert 'Ensemble([".", "../../seed_1/export", "../../seed_2/export"])' in ensemble
    members_line = ensemble.replace('"../../seed_1/export", "../../seed_2/export"', '"../plain"')
    code = members_line + snippet.replace('predictor = Predictor(".")', "")
    code += """
try:
    Ensemble([".", "../other_classes"])
except ValueError as err:
    print("refused:", err)
"""
    proc = run_without_jax(deploy, code)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "refused: ../other_classes: reports classes ['A', 'B', 'C'], . ['ASD', 'DHS', 'LCS_HipOA']" in proc.stdout
    assert_same_predictions(deploy / "predictions.json", fused)


def test_explain_reports_what_the_pose_and_the_gait_features_carry(gait_run, data_dir):
    """--mode=explain on a gait-stream run: the pose's occlusion (the features kept), the features'
    occlusion by region with its agreement and randomisation check, each stream's share per
    class and per chosen clip, and the features' figure."""
    proc = run_launch(gait_run, data_dir, config=f"configs/{CONFIG}.py:smoke", mode="explain")
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = gait_run / "report" / "explain"
    report = json.loads((out / "explanations.json").read_text())
    classes = ["ASD", "DHS", "LCS_HipOA"]
    assert "the clip's gait features kept" in report["method"]
    gait = report["gait_features"]
    assert sorted(gait["mean_attribution"]) == classes and all(len(v) == 5 for v in gait["mean_attribution"].values())
    assert list(gait["feature_groups"]) == list(FEATURE_GROUPS)
    assert set(gait["randomisation_check"]) == {"rank_correlation", "passed"}
    assert np.isfinite([v for row in gait["mean_attribution"].values() for v in row]).all()
    for name in classes:
        assert set(report["streams"][name]) == {"pose", "gait_features"}
        assert np.isfinite(list(report["streams"][name].values())).all()
    clips = report["clips"]
    assert clips and all(set(c["streams"]) == {"pose", "gait_features"} and list(c["gait_feature_attribution"]) == list(FEATURE_GROUPS)
                         for c in clips.values())
    readings = report["stream_readings"]  # a head per stream (gait_fusion='sum'): what each diagnoses alone
    for stream in ("pose", "gait_features"):
        assert 0.0 <= readings[stream]["accuracy"] <= 1.0
        assert np.asarray(readings[stream]["confusion_matrix"]).sum() == readings["clips"] >= len(clips)
        assert all(sorted(c["stream_readings"][stream]) == classes for c in clips.values())
        np.testing.assert_allclose([sum(c["stream_readings"][stream].values()) for c in clips.values()], 1.0, atol=1e-4)
    assert 0.0 <= readings["streams_agree"] <= 1.0
    assert (out / "gait_feature_attribution_by_class.png").stat().st_size > 0


def test_head_weights_choose_on_validation_and_reproduce_the_run_as_trained(gait_run, trained, capsys):  # noqa: F811
    """The pose head reweighed: every weight scored on the validation patients, the choice by the
    rule, and the test score at weight 1 exactly the fold's own report (the same model); a run
    without summed heads is refused in one line, before any data is read."""
    head_weights.main([str(gait_run)])
    payload = json.loads((gait_run / "head_weights.json").read_text())
    validation = {float(w): (v["patient_macro_f1"], v["clip_log_loss"]) for w, v in payload["validation"].items()}
    assert sorted(validation) == list(POSE_WEIGHTS) and all(loss > 0 for _, loss in validation.values())
    assert payload["chosen_pose_weight"] == choose(validation)
    report = json.loads((gait_run / "report" / "results.json").read_text())
    assert payload["test"]["as_trained"] == pytest.approx(report["headline"], abs=1e-9)
    assert payload["selected_step"] == report["selected_step"]
    assert f"| {gait_run} | {report['selected_step']} |" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        head_weights.main([str(trained)])
    assert "has no pose and gait-feature heads that add up" in capsys.readouterr().err

"""Baselines and ablations: shapes and gradients, smoke training, and the PhaseMix step detector."""

from __future__ import annotations

import importlib
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from test_launch import run_launch

from asd_jax.data import transforms
from asd_jax.data.synthetic import CohortParams, WalkSpec, simulate_walk
from asd_jax.models import build_model
from asd_jax.models.phase import step_boundaries, widest_stride_mask

EXPLAINED = ("cnn", "stgcn_clip_diagnoses", "vit_phasemix")  # one smoke explanation per pose-model family without attention
CONFIGS = (
    "cnn", "cnn_clip", "cnn_clip_angles", "cnn_clip_bones_diagnoses", "cnn_clip_bones_angles_diagnoses",
    "cnn_clip_joints_bones_diagnoses", "stgcn", "vit_phasemix",
    "crossattn_no_prior", "crossattn_self_only", "crossattn_no_align", "crossattn_always_prior",
    "crossattn_clip_stats_diagnoses", "stgcn_clip_diagnoses", "stgcn_clip_gait_bones_diagnoses",
)
# Trained end to end through launch.py: one per model family (crossattn itself in test_launch.py;
# its ablations differ by flags that test_forward_and_backward and test_crossattn.py exercise),
# and crossattn and ST-GCN over whole clips, trained on four classes reported as three.
FAMILIES = ("cnn", "stgcn_clip_diagnoses", "vit_phasemix", "crossattn_no_prior", "crossattn_clip_diagnoses")


def smoke_config(name: str):
    config = importlib.import_module(f"configs.{name}").get_config("smoke")
    if "sync_batch_norm" in config.model:
        config.model.sync_batch_norm = False  # no `data` axis outside the data-parallel step
    config.data.train_classes = ""  # three logits, whatever classes the config trains on
    return config


def macro_f1_of(report_dir) -> float:
    """Patient macro-F1 recomputed from a report's predictions CSV, over every class of the run
    (what its results.json must say)."""
    import csv

    from sklearn.metrics import f1_score

    class_names = json.loads((report_dir / "results.json").read_text())["class_names"]
    with open(report_dir / "predictions_patients.csv") as f:
        rows = list(csv.DictReader(f))
    return float(
        f1_score([r["label"] for r in rows], [r["prediction"] for r in rows], labels=class_names, average="macro", zero_division=0)
    )


@pytest.mark.parametrize("name", CONFIGS)
def test_forward_and_backward(name):
    config = smoke_config(name)
    model = build_model(config, 3, nnx.Rngs(0))
    rng = np.random.default_rng(0)
    pose = jnp.asarray(rng.normal(size=(4, 32, 17, 3)), jnp.float32)
    prior = jnp.full((4, 5), 0.2)
    width = config.model.get("gait_features", 0)  # a model that reads the clinical gait features gets some
    gait = {"features": jnp.asarray(rng.normal(size=(4, width)), jnp.float32)} if width else {}
    keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.PRNGKey(0), i))(jnp.arange(4))
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)

    def loss(variables):  # BatchNorm statistics are traced with the params, as in steps.train_step
        out = nnx.merge(graphdef, *variables)(pose, prior, **gait, dropout_keys=keys)
        return jnp.mean(out.logits**2) + out.aux_loss

    value, (grads, _) = jax.value_and_grad(loss)((params, rest))
    assert np.isfinite(float(value))
    norms = [float(jnp.linalg.norm(g)) for g in jax.tree.leaves(grads)]
    assert all(np.isfinite(norms)) and sum(n > 0 for n in norms) > len(norms) // 2
    assert nnx.merge(graphdef, params, rest)(pose, prior, **gait).logits.shape == (4, 3)


@pytest.mark.parametrize("name", FAMILIES)
def test_every_family_trains_and_explains_in_its_smoke_variant(name, tmp_path, data_dir):
    proc = run_launch(
        tmp_path / name, data_dir, "--config.train.num_steps=10", "--config.train.eval_every=10", config=f"configs/{name}.py:smoke"
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((tmp_path / name / "report" / "results.json").read_text())
    assert results["headline"]["patient_macro_f1"] == pytest.approx(macro_f1_of(tmp_path / name / "report"), abs=1e-12)
    if name in EXPLAINED:
        proc = run_launch(tmp_path / name, data_dir, config=f"configs/{name}.py:smoke", mode="explain")
        assert proc.returncode == 0, proc.stderr[-3000:]
        payload = json.loads((tmp_path / name / "report" / "explain" / "explanations.json").read_text())
        assert "attention_prior_biased" not in payload  # no attention map: nothing to mislabel
        assert np.isfinite(payload["randomisation_check"]["rank_correlation"])
        assert any(np.abs(v).sum() > 0 for v in payload["mean_attribution"].values())


@pytest.mark.parametrize("seed", range(4))
def test_step_detector_finds_the_widest_stride_frames(seed):
    walk = simulate_walk(WalkSpec(num_frames=150, cadence=100.0 + 5 * seed), CohortParams(), np.random.default_rng(seed))
    pose = np.concatenate([walk["keypoints"] / 1920, walk["scores"][..., None]], -1)
    seen = (pose[:, [15, 16], 2] >= transforms.MIN_SCORE).all(1)
    found = np.flatnonzero(np.asarray(widest_stride_mask(jnp.asarray(transforms.normalize_pose(pose)))))
    truth = [t for t in walk["truth"]["widest_stride_frames"] if 3 <= t < 147 and seen[max(0, t - 3) : t + 4].all()]
    assert truth, "the walk should show some widest-stride moments"
    for t in truth:
        assert np.min(np.abs(found - t)) <= 2, (t, found)
    assert np.all(np.diff(found) >= 10)


def test_without_visible_ankles_the_window_is_cut_evenly():
    boundaries, valid = step_boundaries(jnp.zeros((64, 17, 3)), max_steps=6)
    assert boundaries.tolist() == np.linspace(0, 63, 7).round().astype(int).tolist()
    assert valid.sum() == 4


def test_comparison_document_has_a_row_per_model(tmp_path, data_dir):
    import subprocess
    import sys

    from conftest import ROOT

    out = tmp_path / "results.md"
    out.write_text("# stale tables\n\n## Reading\n\nA hand-written reading.\n")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "asd_jax.modes.compare",
            "--variant",
            "smoke",
            "--workdir",
            str(tmp_path / "runs"),
            "--out",
            str(out),
            "--override",
            f"data.data_dir={data_dir}",
            "--override",
            "train.num_steps=6",
            "--override",
            "train.eval_every=6",
            "--override",
            "data.num_folds=2",
            "features",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = out.read_text()
    assert "## Patient level" in text and "## Clip level" in text
    assert "stale tables" not in text and text.endswith("## Reading\n\nA hand-written reading.\n")
    figure = tmp_path / "figures" / "results_patient.png"
    assert "](figures/results_patient.png)" in text and figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sum(line.startswith("| features |") for line in text.splitlines()) == 3  # patient, clip, new patients
    assert (tmp_path / "runs" / "features" / "report" / "results.json").exists()
    external = text[text.index("## New patients, seen differently") :]
    row = next(line for line in external.splitlines() if line.startswith("| features |")).strip("| ").split(" | ")
    summary = json.loads((tmp_path / "runs" / "features" / "report" / "results.json").read_text())["summary"]
    shifted = [tmp_path / "runs" / "features" / "fold_0" / f"report_external_{i}" for i in range(2)]
    expected = [summary["patient"]["metrics"]["macro_f1"], *(macro_f1_of(report) for report in shifted)]
    assert [float(cell) for cell in row[1:]] == pytest.approx(expected, abs=5e-4)  # CV mean and both shifted cohorts, as rounded


def test_compare_refuses_a_bad_data_setting_before_writing_anything(tmp_path, monkeypatch, capsys):
    from asd_jax.modes import compare

    argv = ["compare", "--override", "data.source=foo", "--workdir", str(tmp_path / "runs"), "--out", str(tmp_path / "cmp.md"), "features"]
    monkeypatch.setattr("sys.argv", argv)
    with pytest.raises(SystemExit) as stopped:
        compare.main()
    assert stopped.value.code == 1
    assert capsys.readouterr().err == "error: data.source='foo': expected 'synthetic' or 'files'\n"
    assert list(tmp_path.iterdir()) == []


def test_compare_takes_a_variant_per_config_and_overrides_for_all():
    from asd_jax.modes.compare import load_config

    config = load_config("stgcn:compact", ["train.num_steps=5"], variant="smoke")
    assert (config.model.dim, config.model.depth, config.train.num_steps) == (16, 4, 5)
    assert load_config("cnn", [], variant="smoke").model.dim == 16  # the global variant applies where none is named
    with pytest.raises(ValueError, match="unknown config variant"):
        load_config("stgcn:huge", [])


@pytest.mark.parametrize("text", ["True", "true"])
def test_an_override_reads_json_and_python_literals_in_the_fields_type(text):
    from asd_jax.modes.compare import load_config

    config = load_config("cnn", [f"data.test_flip={text}", "optim.weight_decay=1", "data.classes=2"], variant="smoke")
    assert config.data.test_flip is True and config.data.classes == "2"
    assert config.optim.weight_decay == 1.0 and isinstance(config.optim.weight_decay, float)


@pytest.mark.parametrize(("spec", "message"), [
    ("configs/cnn.py", "configs/cnn.py: not a config name; give the name of configs/<name>.py, e.g. crossattn"),
    ("__init__", "__init__: configs/__init__.py has no get_config(), so it is not a config"),
])
def test_a_config_name_that_is_no_config_is_refused_in_one_line(spec, message):
    from asd_jax.base.errors import ConfigError
    from asd_jax.modes.compare import load_config

    with pytest.raises(ConfigError) as refused:
        load_config(spec, [])
    assert str(refused.value) == message


@pytest.mark.parametrize(("item", "message"), [
    ("seed.x=1", "--override seed.x=1: cnn has no field 'seed.x'."),
    ("data.test_flip=maybe", "--override data.test_flip=maybe: cannot read 'maybe' as a value"),
    ("train.num_steps=0.5", "--override train.num_steps=0.5: expected int, got float '0.5'"),
    ("train.num_steps=True", "--override train.num_steps=True: expected int, got bool 'True'"),
    ("data.test_flip=1", "--override data.test_flip=1: expected bool, got int '1'"),
])
def test_an_override_of_the_wrong_type_is_refused_in_one_line(item, message):
    from asd_jax.base.errors import ConfigError
    from asd_jax.modes.compare import load_config

    with pytest.raises(ConfigError) as refused:
        load_config("cnn", [item], variant="smoke")
    assert str(refused.value) == message

"""PyTorch export: twins match the Flax models both ways, conversion is strict and bitwise, and an
exported smoke run reproduces its patient-level predictions in PyTorch and back in JAX."""

from __future__ import annotations

import csv
import importlib
import json
import shutil

import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
import torch
from flax import nnx
from test_launch import ROOT, run_launch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from asd_jax.base.errors import ConversionError, WeightsError
from asd_jax.data import folds, input_pipeline, transforms
from asd_jax.data.synthetic import CohortParams, WalkSpec, simulate_walk
from asd_jax.evaluation import aggregate
from asd_jax.models import build_model
from asd_jax.models.variables import flat_state, with_values
from asd_jax.modes import export, import_weights
from asd_jax.pytorch import convert
from asd_jax.pytorch.twins import build_twin

FAMILIES = (
    "crossattn", "cnn", "cnn_clip", "stgcn", "vit_phasemix", "crossattn_self_only", "crossattn_no_prior", "crossattn_clip_diagnoses",
    "stgcn_clip_diagnoses",
)
TOLERANCE = {"atol": 1e-5, "rtol": 1e-5}


def smoke_config(name: str) -> ml_collections.ConfigDict:
    config = importlib.import_module(f"configs.{name}").get_config("smoke")
    if "sync_batch_norm" in config.model:
        config.model.sync_batch_norm = False  # no `data` axis outside the data-parallel step
    config.data.train_classes = ""  # three logits, whatever classes the config trains on (tests/test_predict.py has four)
    return config


def inputs(frames: int, count: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Generated walks (so PhaseMix finds real steps) plus one window of noise, and random priors."""
    rng = np.random.default_rng(0)
    poses = []
    for i in range(count - 1):
        walk = simulate_walk(WalkSpec(num_frames=frames, cadence=95.0 + 7 * i), CohortParams(), rng)
        poses.append(transforms.normalize_pose(np.concatenate([walk["keypoints"] / 1920, walk["scores"][..., None]], -1)))
    poses.append(np.concatenate([rng.normal(size=(frames, 17, 2)), rng.uniform(size=(frames, 17, 1))], -1))
    return np.stack(poses).astype(np.float32), rng.dirichlet(np.ones(5), count).astype(np.float32)


def randomized_flax(config: ml_collections.ConfigDict) -> tuple[nnx.Module, dict]:
    """A Flax model whose every variable, BatchNorm statistics included, is random, so a wrong
    layout or a skipped variable cannot go unnoticed."""
    model = build_model(config, 3, nnx.Rngs(0))
    rng = np.random.default_rng(1)
    flat = {
        path: (rng.uniform(0.5, 1.5, v.shape) if str(path[-1]) == "var" else rng.normal(0.0, 0.3, v.shape)).astype(v.dtype)
        for path, v in flat_state(nnx.state(model)).items()
    }
    nnx.update(model, with_values(nnx.state(model), flat))
    return model, flat


def logits_of(model: nnx.Module, twin: torch.nn.Module, pose: np.ndarray, prior: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with torch.no_grad():
        torch_out = twin(torch.from_numpy(pose), torch.from_numpy(prior)).numpy()
    return np.asarray(model(jnp.asarray(pose), jnp.asarray(prior)).logits), torch_out


@pytest.mark.parametrize("name", FAMILIES)
def test_flax_weights_give_the_same_logits_in_torch(name):
    config = smoke_config(name)
    model, flat = randomized_flax(config)
    twin = export.torch_twin(config, 3, convert.flax_to_torch(flat))
    pose, prior = inputs(config.data.window)
    flax_logits, torch_logits = logits_of(model, twin, pose, prior)
    np.testing.assert_allclose(torch_logits, flax_logits, **TOLERANCE)
    assert np.abs(flax_logits).max() > 0.1  # a real signal, not two zero vectors


@pytest.mark.parametrize("name", FAMILIES)
def test_torch_weights_give_the_same_logits_in_flax(name):
    config = smoke_config(name)
    torch.manual_seed(0)
    twin = build_twin(config.model, 3)
    with torch.no_grad():
        for key, value in twin.state_dict().items():
            if key.endswith("running_var"):
                value.uniform_(0.5, 1.5)
            elif value.is_floating_point():
                value.normal_(0.0, 0.3)
    model = build_model(config, 3, nnx.Rngs(5))
    flat = convert.torch_to_flax(twin.state_dict(), flat_state(nnx.state(model)))
    nnx.update(model, with_values(nnx.state(model), flat))
    pose, prior = inputs(config.data.window)
    flax_logits, torch_logits = logits_of(model, twin, pose, prior)
    np.testing.assert_allclose(flax_logits, torch_logits, **TOLERANCE)


@pytest.mark.parametrize("name", FAMILIES)
def test_flax_to_torch_to_flax_is_bitwise(name):
    config = smoke_config(name)
    _, flat = randomized_flax(config)
    twin = export.torch_twin(config, 3, convert.flax_to_torch(flat))
    back = convert.torch_to_flax(twin.state_dict(), flat)
    assert back.keys() == flat.keys()
    for path in flat:
        assert back[path].dtype == flat[path].dtype and np.array_equal(back[path], flat[path]), path


class OneDevicePerOp(TorchDispatchMode):
    """Refuses any op whose tensor arguments sit on more than one device, as CUDA refuses most
    (`meta` alone lets a convolution take a CPU weight)."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        devices = {t.device.type for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor) and t.dim() > 0}
        if len(devices) > 1:
            raise AssertionError(f"{func} mixes devices {sorted(devices)}")
        return func(*args, **kwargs)


@pytest.mark.parametrize(
    "name, model_overrides",
    [(name, {}) for name in (*FAMILIES, "crossattn_clip_stats_diagnoses", "crossattn_clip_gait_diagnoses", "cnn_clip_gait_bones_diagnoses",
                                    "stgcn_clip_gait_bones_diagnoses")]
    + [("crossattn", {"pooling": "stats"})],  # stats pooling without masked frames: its own code path
)
def test_twins_compute_on_the_device_of_their_inputs(name, model_overrides):
    """Every tensor a twin makes while it runs is made where its inputs are, so an exported model
    trains and predicts on a GPU (the bench times it there). Checked without a GPU: forward and
    backward on torch's `meta` device, every op refused if its tensors are on two devices."""
    config = smoke_config(name)
    config.model.update(model_overrides)
    twin = build_twin(config.model, 3).to("meta")
    pose, prior = (torch.from_numpy(x).to("meta") for x in inputs(config.data.window))
    features = torch.zeros(len(pose), config.model.gait_features, device="meta") if config.model.get("gait_features") else None
    with OneDevicePerOp():
        logits = twin(pose, prior, features) if features is not None else twin(pose, prior)
        logits.sum().backward()
    assert logits.device.type == "meta" and tuple(logits.shape) == (4, 3)
    grads = [p.grad for p in twin.parameters() if p.grad is not None]
    assert grads and all(g.device.type == "meta" for g in grads)


@pytest.mark.parametrize("pooling", ["mean", "stats"])
def test_padded_whole_clips_give_the_same_logits_in_torch(pooling):
    """crossattn over whole clips masks the patches of a clip's missing tail: the twin must too,
    whether the head reads their mean or their mean, spread and drift."""
    config = smoke_config("crossattn_clip_diagnoses")
    config.model.pooling = pooling
    model, flat = randomized_flax(config)
    twin = export.torch_twin(config, 3, convert.flax_to_torch(flat))
    pose, prior = inputs(config.data.window)
    pose[:2, -12:] = 0.0  # two clips end 12 frames early: padded with frames where nothing was seen
    flax_logits, torch_logits = logits_of(model, twin, pose, prior)
    np.testing.assert_allclose(torch_logits, flax_logits, **TOLERANCE)


@pytest.mark.parametrize("name", ("crossattn", "cnn", "stgcn", "vit_phasemix"))
def test_onnx_graph_matches_the_twin(name, tmp_path):
    config = smoke_config(name)
    _, flat = randomized_flax(config)
    twin = export.torch_twin(config, 3, convert.flax_to_torch(flat))
    pose, prior = inputs(config.data.window, count=5)
    gap = export.export_onnx(twin, {"pose": pose, "prior": prior}, tmp_path / "model.onnx")
    assert gap is not None and gap <= 1e-5


@pytest.mark.parametrize("kernel_size", [(3,), (3, 2), (3, 2, 2)])
def test_conv_kernel_layouts_match_torch(kernel_size):
    dims = len(kernel_size)
    conv = nnx.Conv(4, 6, kernel_size, padding="VALID", rngs=nnx.Rngs(0))
    torch_conv = getattr(torch.nn, f"Conv{dims}d")(4, 6, kernel_size)
    state = convert.flax_to_torch(flat_state(nnx.state(conv)))
    torch_conv.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()}, strict=True)
    x = np.random.default_rng(0).normal(size=(2, *(5,) * dims, 4)).astype(np.float32)  # channels last
    with torch.no_grad():
        torch_out = torch_conv(torch.from_numpy(x).movedim(-1, 1)).movedim(1, -1).numpy()
    np.testing.assert_allclose(torch_out, np.asarray(conv(jnp.asarray(x))), **TOLERANCE)


def test_embeddings_and_layer_norms_convert():
    class Tiny(nnx.Module):
        def __init__(self):
            self.embed = nnx.Embed(7, 4, rngs=nnx.Rngs(0))
            self.norm = nnx.LayerNorm(4, rngs=nnx.Rngs(0))

    state = convert.flax_to_torch(flat_state(nnx.state(Tiny())))
    assert state["embed.weight"].shape == (7, 4) and {"norm.weight", "norm.bias"} <= state.keys()


def test_a_mismatched_state_dict_is_one_error_listing_every_key():
    config = smoke_config("crossattn")
    _, flat = randomized_flax(config)
    state = convert.flax_to_torch(flat)
    del state["head.bias"]
    state["extra.weight"] = np.zeros(3, np.float32)
    state["pose_embed.weight"] = state["pose_embed.weight"][:, :-1]
    with pytest.raises(ConversionError) as err:
        convert.torch_to_flax(state, flat, what="weights.pt")
    message = str(err.value)
    assert "weights.pt" in message
    assert "missing (1): head.bias" in message
    assert "unexpected (1): extra.weight" in message
    assert "misshapen (1): pose_embed.weight" in message


def test_a_file_that_is_not_a_state_dict_is_named_in_the_error(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save([1, 2, 3], path)
    with pytest.raises(WeightsError, match="weights.pt: expected a state_dict"):
        import_weights.load_state_dict(path)
    path.write_bytes(b"not a pickle")
    with pytest.raises(WeightsError, match="weights.pt: not a PyTorch state_dict") as refused:
        import_weights.load_state_dict(path)
    assert "\n" not in str(refused.value) and "weights_only=False" not in str(refused.value)  # one line, no advice to unpickle it


def test_unknown_model_has_no_twin():
    config = smoke_config("crossattn")
    config.model.name = "resnet"
    with pytest.raises(ValueError, match="no PyTorch twin"):
        build_twin(config.model, 3)


def read_csv(path):
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def exported_run(tmp_path_factory, data_dir):
    workdir = tmp_path_factory.mktemp("export") / "run"
    for mode in ("train", "export"):
        proc = run_launch(workdir, data_dir, mode=mode)
        assert proc.returncode == 0, proc.stderr[-3000:]
    return workdir


def test_export_writes_loadable_files_with_parity(exported_run):
    import onnxruntime
    import safetensors.numpy

    out = exported_run / "export"
    manifest = json.loads((out / "config.json").read_text())
    assert manifest["parity"]["max_abs_logit_diff_torch_vs_jax"] <= 1e-5
    assert manifest["parity"]["max_abs_logit_diff_onnx_vs_torch"] <= 1e-5
    pt = torch.load(out / "model.pt", weights_only=True)
    st = safetensors.numpy.load_file(str(out / "model.safetensors"))
    assert pt.keys() == st.keys() and all(np.array_equal(pt[k].numpy(), st[k]) for k in pt)
    session = onnxruntime.InferenceSession(str(out / "model.onnx"))
    assert [i.name for i in session.get_inputs()] == ["pose", "prior"]
    assert "load_state_dict" in (out / "README.md").read_text()


def test_the_onnx_file_at_another_batch_size_gives_the_twins_logits(exported_run):
    """The exported graph at a batch size it was not traced with (3), against the twin rebuilt here
    from model.pt: gaps measured by the test, not read from what the export wrote about itself."""
    import onnxruntime

    manifest = json.loads((exported_run / "export" / "config.json").read_text())
    config = ml_collections.ConfigDict(manifest["config"])
    twin = build_twin(config.model, len(manifest["class_names"]))
    twin.load_state_dict(torch.load(exported_run / "export" / "model.pt", weights_only=True))
    twin.eval()
    pose, prior = inputs(config.data.window, count=3)
    (onnx_logits,) = onnxruntime.InferenceSession(str(exported_run / "export" / "model.onnx")).run(
        ["logits"], {"pose": pose, "prior": prior}
    )
    with torch.no_grad():
        expected = twin(torch.from_numpy(pose), torch.from_numpy(prior)).numpy()
    assert onnx_logits.shape == (3, len(manifest["class_names"]))
    np.testing.assert_allclose(onnx_logits, expected, **TOLERANCE)


def test_a_twin_that_disagrees_with_jax_is_refused_and_nothing_is_written(exported_run, data_dir, tmp_path, monkeypatch):
    from asd_jax.base.errors import ParityError
    from asd_jax.training import checkpointing

    workdir = tmp_path / "run"
    shutil.copytree(exported_run, workdir, ignore=shutil.ignore_patterns("export"))
    convert_exactly = convert.flax_to_torch

    def off_by_a_little(flat):  # one bias 1e-2 off: a wrong layout rule would do worse
        state_dict = convert_exactly(flat)
        key = next(k for k in state_dict if k.endswith("head.bias"))
        state_dict[key] = state_dict[key] + 1e-2
        return state_dict

    monkeypatch.setattr(convert, "flax_to_torch", off_by_a_little)
    config = checkpointing.load_run_config(workdir)
    config.data.data_dir = str(data_dir)
    with pytest.raises(ParityError, match=r"differ from JAX's by 1\.00e-02 \(> 0\.0001\); not exported"):
        export.export_workdir(config, workdir)
    assert not (workdir / "export").exists()


def test_exported_model_reproduces_patient_predictions_in_torch(exported_run, data_dir):
    manifest = json.loads((exported_run / "export" / "config.json").read_text())
    config = ml_collections.ConfigDict(manifest["config"])
    twin = build_twin(config.model, len(manifest["class_names"]))
    twin.load_state_dict(torch.load(exported_run / "export" / "model.pt", weights_only=True))
    fold = folds.prepare_fold(config, exported_run)
    rows = fold.split.test
    logits, clip_index = [], []
    for batch in input_pipeline.eval_batches(fold.source, fold.table, rows, config.data):
        keep = batch["valid"] > 0
        with torch.no_grad():
            logits.append(twin(torch.from_numpy(batch["pose"][keep]), torch.from_numpy(batch["prior"][keep])).numpy())
        clip_index.append(batch["clip_index"][keep])
    clips = aggregate.clips_from_windows(np.concatenate(logits), np.concatenate(clip_index), rows, fold.table.clip_id, fold.table.label)
    patients = aggregate.patients_from_clips(clips, fold.table.patient_id[rows])
    jax_rows = {r["patient_id"]: r for r in read_csv(exported_run / "report" / "predictions_patients.csv")}
    assert sorted(jax_rows) == sorted(patients.ids.tolist())
    for patient, probs, pred in zip(patients.ids, patients.probs, patients.preds):
        row = jax_rows[patient]
        assert row["prediction"] == fold.class_names[pred]
        np.testing.assert_allclose(probs, [float(row[f"p_{c}"]) for c in fold.class_names], atol=1e-5)


def test_imported_weights_evaluate_like_the_original(exported_run, data_dir, tmp_path):
    imported = tmp_path / "imported"
    proc = run_launch(imported, data_dir, f"--weights={exported_run / 'export' / 'model.safetensors'}", mode="import")
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = run_launch(imported, data_dir, mode="eval")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert read_csv(imported / "report" / "predictions_patients.csv") == read_csv(exported_run / "report" / "predictions_patients.csv")

    again = run_launch(imported, data_dir, f"--weights={exported_run / 'export' / 'model.pt'}", mode="import")
    assert again.returncode != 0 and "already holds checkpoints" in again.stderr

    finetune = run_launch(imported, data_dir, "--config.train.num_steps=4", "--config.train.eval_every=4")
    assert finetune.returncode == 0, finetune.stderr[-3000:]
    assert "resumed from step 0" in finetune.stderr
    assert json.loads((imported / "report" / "results.json").read_text())["selected_step"] == 4


def test_weights_of_another_config_are_refused_with_every_key_named(exported_run, data_dir, tmp_path):
    wrong = tmp_path / "wrong"
    proc = run_launch(wrong, data_dir, "--config.model.dim=8", f"--weights={exported_run / 'export' / 'model.pt'}", mode="import")
    assert proc.returncode != 0
    assert "misshapen" in proc.stderr and "head.weight" in proc.stderr and "Traceback" not in proc.stderr
    assert not list((wrong / "checkpoints").glob("[0-9]*"))


def test_training_code_never_imports_torch():
    import subprocess
    import sys

    code = (
        "import sys, launch; from asd_jax.modes import cv, evaluate, explain, train; from asd_jax.evaluation import protocol; "
        "assert 'torch' not in sys.modules"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_pytorch_side_imports_and_builds_twins_without_jax():
    """A PyTorch user needs neither JAX nor flax: twins and converter import and work without them."""
    import subprocess
    import sys

    code = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split('.')[0] in ('jax', 'jaxlib', 'flax', 'optax', 'orbax'):
            raise ImportError('blocked ' + name)
sys.meta_path.insert(0, Block())
import importlib, torch
from asd_jax.pytorch import convert
from asd_jax.pytorch.twins import TWINS, build_twin
for name in ('crossattn', 'cnn', 'stgcn', 'vit_phasemix'):
    config = importlib.import_module('configs.' + name).get_config('smoke')
    twin = build_twin(config.model, 3)
    logits = twin(torch.zeros(2, config.data.window, 17, 3), torch.full((2, 5), 0.2))
    assert tuple(logits.shape) == (2, 3), name
    assert convert.torch_key(('head', 'kernel')) == 'head.weight'
assert not any(m.split('.')[0] in ('jax', 'flax') for m in sys.modules)
print('ok', sorted(TWINS))
"""
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("ok")

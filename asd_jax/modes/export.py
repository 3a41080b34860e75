"""`--mode=export`: a trained run as a deployable predictor for PyTorch and ONNX stacks.

Export writes `<workdir>/export/`: model.pt (state_dict), model.safetensors, model.onnx (dynamic
batch and window length), config.json (classes, preprocessing, model config, parity numbers),
asd_twins.py and asd_predictor.py (the twins, the preprocessing, the clinical gait features for a
model that reads them, and the clip/patient aggregation as files that need neither JAX nor this
repository; asd_jax/pytorch/deploy.py) and a README whose snippet predicts a keypoint folder.
Before writing anything it runs the JAX model and its PyTorch twin (and the ONNX graph, when
onnxruntime is installed) on real test windows and refuses to export if their logits differ by
more than PARITY_TOLERANCE.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import ml_collections
import numpy as np
from absl import logging
from flax import nnx

from asd_jax.base.errors import ParityError
from asd_jax.base.files import atomic_path, write_atomically
from asd_jax.base.gait import CLINICAL_FEATURE_NAMES
from asd_jax.base.labels import model_outputs, task_groups
from asd_jax.base.skeleton import NUM_JOINTS, REGION_NAMES
from asd_jax.data import folds, input_pipeline
from asd_jax.models import gait_inputs, reads_gait_features
from asd_jax.models.variables import flat_state
from asd_jax.pytorch import convert, deploy
from asd_jax.training import checkpointing, setup

EXPORT_DIR = "export"
PARITY_TOLERANCE = 1e-4  # max |logit difference| on real windows; fp32 reorderings stay near 1e-6


def sample_windows(config: ml_collections.ConfigDict, fold: folds.FoldData, rows: np.ndarray) -> dict[str, np.ndarray]:
    """The first evaluation batch of `rows` (valid windows only): realistic inputs for parity checks,
    with their clips' gait features for a model that reads them."""
    batch = next(iter(input_pipeline.eval_batches(fold.source, fold.table, rows, config.data, gait_features=reads_gait_features(config))))
    keep = batch["valid"] > 0
    return {name: batch[name][keep].astype(np.float32) for name in ("pose", "prior", "features") if name in batch}


def model_inputs(sample: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
    """The network's positional inputs, in its order: pose, prior and, where read, the gait features."""
    return tuple(sample[name] for name in ("pose", "prior", "features") if name in sample)


def torch_twin(config: ml_collections.ConfigDict, num_classes: int, state_dict: dict[str, np.ndarray]):
    """The PyTorch twin holding `state_dict` (numpy arrays), checked strictly first."""
    import torch

    from asd_jax.pytorch.twins import build_twin

    twin = build_twin(config.model, num_classes)
    expected = {k: tuple(v.shape) for k, v in twin.state_dict().items()}
    convert.check_fits("Converted weights", {k: v.shape for k, v in state_dict.items()}, expected)
    twin.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state_dict.items()}, strict=True)
    return twin


def torch_logits(twin, sample: dict[str, np.ndarray]) -> np.ndarray:
    import torch

    with torch.no_grad():
        return twin(*(torch.from_numpy(x) for x in model_inputs(sample))).numpy()


def export_onnx(twin, sample: dict[str, np.ndarray], path: Path) -> float | None:
    """Writes the twin as ONNX with a dynamic batch axis and, where the twin allows it
    (`window_multiple`), a dynamic window length; returns its max logit gap to the twin under
    onnxruntime (on the sample, and on windows twice as long), or None without onnxruntime."""
    import torch

    names = [name for name in ("pose", "prior", "features") if name in sample]
    batch = torch.export.Dim("batch", min=1)
    axes = {name: {0: batch} for name in names}
    if twin.window_multiple:
        axes["pose"][1] = twin.window_multiple * torch.export.Dim("window_units", min=1, max=100_000)
    with warnings.catch_warnings():  # exporter internals' deprecation chatter, not the user's concern
        warnings.simplefilter("ignore", FutureWarning)
        warnings.filterwarnings("ignore", message=".*will not be used, since it shares the same shape constraints")
        with atomic_path(path) as tmp:
            torch.onnx.export(
                twin,
                tuple(torch.from_numpy(x) for x in model_inputs(sample)),
                str(tmp),
                input_names=names,
                output_names=["logits"],
                dynamic_shapes={name: axes[name] for name in names},
                dynamo=True,
                external_data=False,  # one self-contained file; these models are small
                verbose=False,
            )
    try:
        import onnxruntime
    except ImportError:
        logging.warning("onnxruntime is not installed: %s was written but not checked", path)
        return None
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inputs = [sample]
    if twin.window_multiple:  # the graph must not have kept the traced length
        inputs.append(sample | {"pose": np.concatenate([sample["pose"], sample["pose"]], axis=1)})
    gaps = []
    for example in inputs:
        (logits,) = session.run(["logits"], example)
        gaps.append(float(np.abs(logits - torch_logits(twin, example)).max()))
    return max(gaps)


def export_workdir(config: ml_collections.ConfigDict, workdir: Path) -> dict[str, Any]:
    """`--mode=export`: see the module docstring. Returns what config.json records about parity."""
    import safetensors.numpy
    import torch

    checkpointing.load_run_config(workdir)  # a trained run, before its splits are written
    fold = folds.prepare_fold(config, workdir)
    model, step = setup.restore_model(config, workdir, len(fold.class_names))
    state_dict = convert.flax_to_torch(flat_state(nnx.state(model)))
    twin = torch_twin(config, model_outputs(config.data, len(fold.class_names)), state_dict)
    sample = sample_windows(config, fold, fold.split.test)
    jax_logits = np.asarray(model(sample["pose"], sample["prior"], **gait_inputs(sample)).logits)
    gap = float(np.abs(torch_logits(twin, sample) - jax_logits).max())
    if not gap <= PARITY_TOLERANCE:
        raise ParityError(f"{workdir}: the PyTorch twin's logits differ from JAX's by {gap:.2e} (> {PARITY_TOLERANCE}); not exported")

    out = workdir / EXPORT_DIR
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "model.pt") as tmp:
        torch.save({k: torch.from_numpy(np.array(v)) for k, v in state_dict.items()}, tmp)
    with atomic_path(out / "model.safetensors") as tmp:
        safetensors.numpy.save_file({k: np.ascontiguousarray(v) for k, v in state_dict.items()}, str(tmp))
    onnx_gap = export_onnx(twin, sample, out / "model.onnx")
    summary = {
        "selected_step": step,
        "class_names": list(fold.class_names),
        # trained on finer classes: the reported class of each logit (base.labels.class_groups)
        "class_groups": list(task_groups(config.data)),
        "parity": {"windows": len(sample["pose"]), "max_abs_logit_diff_torch_vs_jax": gap, "max_abs_logit_diff_onnx_vs_torch": onnx_gap},
    }
    lengths = f"any multiple of {twin.window_multiple}" if twin.window_multiple else str(config.data.window)
    manifest = {
        **summary,
        "model": config.model.to_dict(),
        "preprocessing": deploy.preprocessing(config.data),
        "input": {
            "pose": f"float32 [batch, window ({lengths}), {NUM_JOINTS}, 3]: x, y, confidence, normalised as asd_predictor.normalize_pose",
            "prior": f"float32 [batch, {len(REGION_NAMES)}]: clinical attention prior over {list(REGION_NAMES)}",
            **({"features": f"float32 [batch, {len(CLINICAL_FEATURE_NAMES)}]: the clip's clinical gait features "
                f"{list(CLINICAL_FEATURE_NAMES)}, NaN where unmeasured, as asd_predictor.clinical_features"}
               if "features" in sample else {}),
            "window_multiple": twin.window_multiple,
        },
        "output": (
            "logits [batch, training classes]; merged into class_names by class_groups (merge_class_logits) when it is not empty; "
            "a clip: softmax of its windows' mean logits; a patient: the mean of its clips' probabilities"
        ),
        "config": json.loads(config.to_json_best_effort()),
    }
    write_atomically(out / "config.json", json.dumps(manifest, indent=2))
    deploy.write_sources(out)
    gait_width = int(config.model.get("gait_features", 0))
    readme = deploy.readme(config.model.name, fold.class_names, manifest["preprocessing"], twin.window_multiple, gait_width)
    write_atomically(out / "README.md", readme)
    logging.info("exported %s (parity %.1e)", out, gap)
    return summary


def run(invocation) -> dict[str, Any]:
    return export_workdir(invocation.config, invocation.workdir)

"""`--mode=import`: PyTorch weights (a twin's state_dict) as the step-0 checkpoint of a fresh run,
which `--mode=eval` evaluates and `--mode=train` fine-tunes."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import jax
import ml_collections
import numpy as np
from flax import nnx, traverse_util

from asd_jax.base.errors import UserError, WeightsError
from asd_jax.data import folds, input_pipeline
from asd_jax.models import build_model, reads_gait_features
from asd_jax.models.variables import flat_state, with_values
from asd_jax.pytorch import convert
from asd_jax.training import checkpointing, setup


def load_state_dict(path: Path) -> dict[str, np.ndarray]:
    """A state_dict from .safetensors or a torch.save'd .pt/.pth file (tensors only)."""
    if not path.exists():
        raise WeightsError(f"{path}: no such weights file")
    if path.suffix == ".safetensors":
        import safetensors.numpy

        try:
            return safetensors.numpy.load_file(str(path))
        except Exception as err:  # a truncated or foreign file
            raise WeightsError(f"{path}: not a safetensors file ({type(err).__name__}: {err})") from None
    import torch

    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a file that is not a state_dict
        first_line = (str(err).strip().splitlines() or [""])[0]  # torch's advice (weights_only=False) is not for a state_dict
        raise WeightsError(f"{path}: not a PyTorch state_dict ({type(err).__name__}: {first_line})") from None
    if not isinstance(loaded, dict) or not all(hasattr(v, "numpy") for v in loaded.values()):
        raise WeightsError(f"{path}: expected a state_dict (a dict of tensors), got {type(loaded).__name__}")
    return {k: v.numpy() for k, v in loaded.items()}


def check_fits_config(config: ml_collections.ConfigDict, state_dict: dict[str, np.ndarray], weights: Path) -> None:
    """Refuses weights that do not fit `config`'s model, from the model's shapes alone
    (nnx.eval_shape: nothing computed), before any data is read or file written."""
    num_classes = len(folds.class_names(config.data))
    abstract = nnx.eval_shape(lambda: build_model(config, num_classes, nnx.Rngs(params=config.seed)))
    shapes = traverse_util.flatten_dict(nnx.to_pure_dict(nnx.state(abstract)))
    expected = {convert.torch_key(path): convert.torch_shape(path, value.shape) for path, value in shapes.items()}
    got = {key: value.shape for key, value in state_dict.items() if not key.endswith(f".{convert.TORCH_ONLY}")}
    convert.check_fits(f"{weights}", got, expected)


def import_weights(config: ml_collections.ConfigDict, workdir: Path, weights: Path) -> dict[str, Any]:
    """Writes `weights` as the step-0 checkpoint of the fresh run `workdir`; returns its provenance."""
    state_dict = load_state_dict(weights)
    check_fits_config(config, state_dict, weights)
    manager = checkpointing.open_manager(workdir, config.train)
    try:
        if manager.latest_step() is not None:  # checked before anything is written
            raise UserError(f"{workdir}: already holds checkpoints; import into a new --workdir so nothing is overwritten")
        fold = folds.prepare_fold(config, workdir)
        dp, state, _ = setup.setup_parallel_state(config, fold)
        host = dp.get_state(state)
        params, model_state = flat_state(host.params), flat_state(host.model_state)
        flat = convert.torch_to_flax(state_dict, {**params, **model_state}, what=f"{weights}")
        imported = with_values(host.params, {p: flat[p] for p in params})
        host = host.replace(
            params=imported,
            ema_params=imported,
            model_state=with_values(host.model_state, {p: flat[p] for p in model_state}),
        )
        train_iter = input_pipeline.train_iterator(
            fold.source, fold.table, fold.split.train, config.data, seed=config.seed,
            process_index=jax.process_index(), process_count=jax.process_count(), gait_features=reads_gait_features(config),
        )
        checkpointing.save_run_config(workdir, config)
        provenance = {"weights": str(weights.resolve()), "sha256": hashlib.sha256(weights.read_bytes()).hexdigest()}
        checkpointing.save_imported(manager, workdir, jax.tree.map(np.asarray, host), train_iter, provenance)
    finally:
        manager.close()
    return {**provenance, "step": 0}


def run(invocation) -> dict[str, Any]:
    if invocation.weights is None:
        raise UserError("--mode=import needs --weights=<a state_dict .pt or .safetensors file>")
    return import_weights(invocation.config, invocation.workdir, invocation.weights)

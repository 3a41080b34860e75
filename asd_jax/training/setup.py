"""The compiled steps and placed train state of one fold: fresh, or restored from its checkpoint.

One home for "model + optimiser + loss settings -> DataParallel + TrainState", used by training,
by every mode that reads a trained run, and by import.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from absl import logging
from flax import nnx

from asd_jax.base.gait import FEATURE_FPS
from asd_jax.base.labels import model_outputs
from asd_jax.data.folds import FoldData
from asd_jax.data.gait_features import FeatureCache
from asd_jax.models import build_model, reads_gait_features
from asd_jax.models.layers import FeatureStatistic, feature_statistics
from asd_jax.models.variables import flat_state, with_values
from asd_jax.training import checkpointing, optim, steps
from asd_jax.training.parallel import DataParallel, check_batch_divisible, make_data_parallel


def create_state(config: ml_collections.ConfigDict, num_classes: int, optimizer: optax.GradientTransformation):
    """Model graph (static) and the initial TrainState (host arrays)."""
    model = build_model(config, num_classes, nnx.Rngs(params=config.seed))
    graphdef, params, model_state = nnx.split(model, nnx.Param, ...)
    state = steps.TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        ema_params=jax.tree.map(jnp.copy, params),
        model_state=model_state,
        opt_state=optimizer.init(params),
        rng=jax.random.PRNGKey(config.seed),
        nonfinite_step=jnp.full((), -1, jnp.int32),
    )
    return graphdef, state


def build_parallel(config: ml_collections.ConfigDict, graphdef: Any, optimizer: Any, loss_config: Any) -> DataParallel:
    check_batch_divisible(config.data.batch_size)
    check_batch_divisible(config.data.eval_batch_size, "data.eval_batch_size")
    parallel = make_data_parallel(
        config.train.parallel,
        functools.partial(
            steps.train_step, graphdef=graphdef, optimizer=optimizer, loss_config=loss_config, ema_decay=config.optim.ema_decay
        ),
        functools.partial(steps.eval_step, graphdef=graphdef),
    )
    logging.info(
        "data parallel (%s) over %d devices in %d process(es)", config.train.parallel, jax.device_count(), jax.process_count()
    )
    return parallel


def fresh_parallel(
    config: ml_collections.ConfigDict, num_classes: int, weights: np.ndarray | None = None
) -> tuple[DataParallel, Any, nnx.GraphDef]:
    """The steps of `config` and its freshly initialised host state (not yet placed), with the
    graph: what training starts from, and what the benchmark (modes/bench.py) times."""
    optimizer = optim.make_optimizer(config.optim, config.train.num_steps)
    loss_config = steps.LossConfig(
        num_classes=model_outputs(config.data, num_classes),  # the training classes
        label_smoothing=config.optim.label_smoothing,
        class_weights=None if weights is None else jnp.asarray(weights, jnp.float32),
    )
    graphdef, host_state = create_state(config, num_classes, optimizer)
    return build_parallel(config, graphdef, optimizer, loss_config), host_state, graphdef


def setup_parallel_state(config: ml_collections.ConfigDict, fold: FoldData) -> tuple[DataParallel, Any, np.ndarray | None]:
    """The compiled steps, the initial placed train state for `fold`, and the class weights used."""
    num_classes = len(fold.class_names)
    train_labels = fold.table.train_label[fold.split.train]
    counts = np.bincount(train_labels, minlength=model_outputs(config.data, num_classes))
    weights = optim.class_weights(config.optim.class_weights, counts)
    dp, host_state, _ = fresh_parallel(config, num_classes, weights)
    if reads_gait_features(config):
        host_state = with_gait_statistics(host_state, fold)
    return dp, dp.put_state(host_state), weights


def with_gait_statistics(host_state: Any, fold: FoldData) -> Any:
    """The state with its gait-feature encoder standardising by the median and spread of the
    fold's training clips (never its validation or test clips), which checkpoints then keep."""
    features = FeatureCache(fold.source, fold.table, FEATURE_FPS).matrix(fold.split.train)
    center, spread = feature_statistics(features)
    flat = flat_state(host_state.model_state) | {("gait", "center"): center, ("gait", "spread"): spread}
    return host_state.replace(model_state=with_values(host_state.model_state, flat))


def restore_selected(config: ml_collections.ConfigDict, workdir: Path, num_classes: int) -> tuple[DataParallel, Any, int]:
    """The state of the checkpoint a finished run stands for (checkpointing.selected_step), built
    from the run's config and its number of classes alone: no dataset is read, so a run whose
    training data were deleted still predicts. The steps are compiled for evaluation only (the
    training loss settings, e.g. class weights, do not matter there)."""
    dp, host_state, _ = fresh_parallel(config, num_classes)
    manager = checkpointing.open_manager(workdir, config.train)
    try:
        step = checkpointing.selected_step(manager, workdir)
        try:
            restored = checkpointing.restore(manager, step, checkpointing.abstract_like(dp.get_state(dp.put_state(host_state))))
        except Exception as error:  # orbax raises ValueError and bare Exception for a misfit or damaged file
            raise checkpointing.unrestorable(config, workdir, step, error) from None
    finally:
        manager.close()
    return dp, dp.put_state(restored), step


def restore_model(config: ml_collections.ConfigDict, workdir: Path, num_classes: int) -> tuple[nnx.Module, int]:
    """The Flax model with the weights of the run's selected checkpoint (the EMA weights when on),
    computing in float32 even when the run trained in bfloat16: for export parity and for
    attributions, which take gradients and compare small differences of log-probabilities."""
    config = config.copy_and_resolve_references()
    config.train.compute_dtype = "float32"
    dp, state, step = restore_selected(config, workdir, num_classes)
    host = dp.get_state(state)
    model = build_model(config, num_classes, nnx.Rngs(0))
    nnx.update(model, host.ema_params, host.model_state)
    return model, step


def reinitialised_like(config: ml_collections.ConfigDict, model: nnx.Module, num_classes: int) -> nnx.Module:
    """`model`'s architecture with fresh weights (seed + 1) that keeps the constants fitted on the
    training patients (the gait features' median and spread), so the explanations' chance level
    and randomisation check read the inputs as the trained model does: only the learning differs."""
    config = config.copy_and_resolve_references()
    config.train.compute_dtype = "float32"
    fresh = build_model(config, num_classes, nnx.Rngs(config.seed + 1))
    nnx.update(fresh, nnx.state(model, FeatureStatistic))
    return fresh

"""Training and evaluation of one fold: `train_and_evaluate(config, workdir)`.

Order of a run: data and splits (saved to the workdir and checked against any earlier run) →
model, optimiser and state → resume from the latest checkpoint → train with periodic validation
on the fold's validation patients → restore the checkpoint that scored best on validation →
evaluate the held-out test patients once → report.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from absl import logging
from flax import nnx
from tqdm import tqdm

from asd_jax import checkpointing, dataset, evaluation, input_pipeline, optim, splits, steps
from asd_jax.labels import parse_label_map
from asd_jax.metric_writer import MetricWriter
from asd_jax.models import build_model
from asd_jax.parallel import DataParallel, check_batch_divisible, make_data_parallel


IMPORTED_MARKER = "imported.json"  # written by --mode=import beside weights trained elsewhere


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN/inf loss; the last good checkpoint is kept."""


def is_time(step: int, every: int, total: int) -> bool:
    """Whether a periodic action is due after `step` steps (always at the last step)."""
    return step == total or (every > 0 and step % every == 0)


@dataclasses.dataclass
class FoldData:
    """The clips of one fold: source, metadata table and the train/validation/test split."""

    source: Any
    table: splits.ClipTable
    split: splits.Splits
    class_names: tuple[str, ...]


def prepare_fold(config: ml_collections.ConfigDict, workdir: Path | None) -> FoldData:
    """Loads (building on first use) the dataset and makes the fold's patient-grouped split.

    The split is saved to `<workdir>/splits.json` for audit; a later run in the same workdir must
    produce the same split, else the data or split settings changed under a checkpoint.
    """
    label_map = parse_label_map(config.data.classes)
    source, _ = dataset.load_source(config.data)
    table = splits.ClipTable.from_source(source, label_map)
    split = splits.make_splits(
        table,
        num_folds=config.data.num_folds,
        fold=config.data.fold,
        val_fraction=config.data.val_fraction,
        seed=config.data.split_seed,
    )
    if workdir is not None:
        path = workdir / "splits.json"
        if path.exists():
            splits.check_same_split(split, path)
        elif jax.process_index() == 0:
            splits.save_splits(split, table, path)
    return FoldData(source, table, split, label_map.class_names)


def external_fold(config: ml_collections.ConfigDict, class_names: tuple[str, ...]) -> FoldData:
    """All clips of `config.data` as a test set for a model trained elsewhere (same classes)."""
    label_map = parse_label_map(config.data.classes)
    if label_map.class_names != tuple(class_names):
        raise ValueError(f"data.classes gives {label_map.class_names}, but the model was trained on {tuple(class_names)}")
    source, _ = dataset.load_source(config.data)
    table = splits.ClipTable.from_source(source, label_map)
    rows = np.arange(len(table))
    patients = sorted(set(table.patient_id))
    split = splits.Splits(rows[:0], rows[:0], rows, {"train": [], "val": [], "test": patients}, fold=-1, num_folds=0, seed=-1)
    return FoldData(source, table, split, label_map.class_names)


def create_state(config: ml_collections.ConfigDict, num_classes: int, optimizer: optax.GradientTransformation):
    """Model graph (static) and the initial TrainState (host arrays)."""
    model = build_model(config, num_classes, nnx.Rngs(params=config.seed))
    graphdef, params, model_state = nnx.split(model, nnx.Param, ...)
    state = steps.TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        model_state=model_state,
        opt_state=optimizer.init(params),
        rng=jax.random.PRNGKey(config.seed),
        nonfinite_step=jnp.full((), -1, jnp.int32),
    )
    return graphdef, state


def build_parallel(config: ml_collections.ConfigDict, graphdef: Any, optimizer: Any, loss_config: Any) -> DataParallel:
    check_batch_divisible(config.data.batch_size)
    check_batch_divisible(config.data.eval_batch_size, "data.eval_batch_size")
    return make_data_parallel(
        config.train.parallel,
        functools.partial(steps.train_step, graphdef=graphdef, optimizer=optimizer, loss_config=loss_config),
        functools.partial(steps.eval_step, graphdef=graphdef),
    )


def setup_parallel_state(config: ml_collections.ConfigDict, fold: FoldData) -> tuple[DataParallel, Any, np.ndarray | None]:
    """The compiled steps and the initial, placed train state for `fold`."""
    num_classes = len(fold.class_names)
    train_labels = fold.table.label[fold.split.train]
    optimizer = optim.make_optimizer(config.optim, config.train.num_steps)
    weights = optim.class_weights(config.optim.class_weights, np.bincount(train_labels, minlength=num_classes))
    loss_config = steps.LossConfig(
        num_classes=num_classes,
        label_smoothing=config.optim.label_smoothing,
        class_weights=None if weights is None else jnp.asarray(weights, jnp.float32),
    )
    graphdef, host_state = create_state(config, num_classes, optimizer)
    dp = build_parallel(config, graphdef, optimizer, loss_config)
    return dp, dp.put_state(host_state), weights


def restore_best(config: ml_collections.ConfigDict, workdir: Path, fold: FoldData) -> tuple[DataParallel, Any, int]:
    """The state of the checkpoint a finished run chose on its validation patients."""
    dp, state, _ = setup_parallel_state(config, fold)
    manager = checkpointing.make_manager(
        workdir / "checkpoints", keep=config.train.keep_checkpoints, best_metric=config.train.select_metric
    )
    best_step = manager.best_step()
    if best_step is None and (workdir / IMPORTED_MARKER).exists():
        best_step = manager.latest_step()  # imported weights: they were selected where they were trained
        logging.info("no validated checkpoint; using the imported weights (step %s)", best_step)
    if best_step is None:
        raise FileNotFoundError(f"{workdir / 'checkpoints'}: no checkpoint; train first (--mode=train)")
    restored = checkpointing.restore(manager, best_step, checkpointing.abstract_like(dp.get_state(state)))
    manager.close()
    return dp, dp.put_state(restored), best_step


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | Path) -> dict[str, Any]:
    """Trains one fold, selects on its validation patients, tests once; returns the test report."""
    workdir = Path(workdir)
    is_main = jax.process_index() == 0
    if is_main:
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "config.json").write_text(config.to_json_best_effort(indent=2))

    fold = prepare_fold(config, workdir)
    dp, state, _ = setup_parallel_state(config, fold)

    train_iter = input_pipeline.train_iterator(
        fold.source,
        fold.table,
        fold.split.train,
        config.data,
        seed=config.seed,
        process_index=jax.process_index(),
        process_count=jax.process_count(),
    )
    manager = checkpointing.make_manager(
        workdir / "checkpoints", keep=config.train.keep_checkpoints, best_metric=config.train.select_metric
    )
    latest = manager.latest_step()
    start_step = latest or 0
    if latest is not None:  # step 0 is a checkpoint too: weights brought in with --mode=import
        restored = checkpointing.restore(
            manager, start_step, checkpointing.abstract_like(dp.get_state(state)), train_iter
        )
        state = dp.put_state(restored)
        logging.info("resumed from step %d", start_step)

    writer = MetricWriter(workdir)
    try:
        state = _train_loop(config, dp, state, train_iter, fold, manager, writer, start_step)
        manager.wait_until_finished()
        best_step = manager.best_step()
        state = dp.put_state(
            checkpointing.restore(manager, best_step, checkpointing.abstract_like(dp.get_state(state)))
        )
        logging.info("testing the step chosen on validation patients: %d", best_step)
        result = evaluation.evaluate_rows(config, dp, state, fold, fold.split.test)
        report = evaluation.write_fold_report(workdir / "report", fold, result, selected_step=best_step, seed=config.seed)
        writer.write(config.train.num_steps, {f"test_{k}": v for k, v in evaluation.headline(result).items()})
    finally:
        manager.wait_until_finished()
        manager.close()
        writer.close()
    return report


def _train_loop(
    config: ml_collections.ConfigDict,
    dp: DataParallel,
    state: Any,
    train_iter: Any,
    fold: FoldData,
    manager: Any,
    writer: MetricWriter,
    start_step: int,
) -> Any:
    """Steps from `start_step` to `config.train.num_steps`; validation, checkpoints and logs."""
    total = config.train.num_steps
    best, evals_since_best = -np.inf, 0
    compiled = False
    bar = tqdm(total=total, initial=start_step, disable=jax.process_index() != 0, dynamic_ncols=True)
    last_time, last_step = time.perf_counter(), start_step
    for step in range(start_step + 1, total + 1):
        local_batch = next(train_iter)
        batch = dp.put_batch(local_batch)
        if not compiled:
            start = time.perf_counter()
            dp.compile(state, batch)
            writer.write(step - 1, {"compile_seconds": time.perf_counter() - start})
            compiled = True
        state, metrics = dp.train_step(state, batch)
        bar.update(1)

        if is_time(step, config.train.log_every, total):
            _check_finite(dp, state)
            now = time.perf_counter()
            scalars = {k: dp.scalar(v) for k, v in metrics.items()}
            scalars["steps_per_second"] = (step - last_step) / (now - last_time)
            scalars["learning_rate"] = float(optim.learning_rate(config.optim, total)(step - 1))
            scalars["batch_fingerprint"] = evaluation.fingerprint(local_batch)
            last_time, last_step = now, step
            writer.write(step, scalars)
            bar.set_postfix(loss=f"{scalars['loss']:.3f}", steps_s=f"{scalars['steps_per_second']:.1f}")

        val_metrics = None
        if is_time(step, config.train.eval_every, total):
            _check_finite(dp, state)
            result = evaluation.evaluate_rows(config, dp, state, fold, fold.split.val)
            val_metrics = {f"val_{k}": v for k, v in evaluation.headline(result).items()}
            writer.write(step, val_metrics)
            score = evaluation.selection_score(result, config.train.select_metric)
            best, evals_since_best = (score, 0) if score > best else (best, evals_since_best + 1)
        if val_metrics is not None or is_time(step, config.train.checkpoint_every, total):
            _check_finite(dp, state)
            metrics_for_best = None
            if val_metrics is not None:
                metrics_for_best = {config.train.select_metric: score}
            checkpointing.save(manager, step, dp.get_state(state), train_iter, metrics_for_best)
        patience = config.train.early_stop_patience
        if patience and evals_since_best >= patience:
            logging.info("early stop at step %d: no validation gain in %d evaluations", step, patience)
            break
    bar.close()
    return state


def _check_finite(dp: DataParallel, state: Any) -> None:
    bad_step = int(dp.scalar(state.nonfinite_step))
    if bad_step >= 0:
        raise NonFiniteLossError(
            f"non-finite loss at step {bad_step + 1}; training stopped, the last checkpoint before it is kept. "
            "Lower optim.learning_rate, check the input data for extreme values, or use float32 compute."
        )

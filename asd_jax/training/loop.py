"""The train loop of one fold: `fit(config, workdir, fold, validate, writer)`.

Order: train state and data iterator → resume from the latest checkpoint that restores (with the iterator) →
train, validating every `train.eval_every` steps through the `validate` callback (the evaluation
layer's; training does not know how predictions are scored) → keep the best checkpoint on
validation → return the state restored from it. SIGTERM checkpoints the step in flight and raises
Preempted.
"""

from __future__ import annotations

import dataclasses
import signal
import threading
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import ml_collections
import numpy as np
from absl import logging

from asd_jax.base.errors import ConfigError, NonFiniteLossError, Preempted
from asd_jax.base.progress import progress_bar
from asd_jax.data import input_pipeline
from asd_jax.data.folds import FoldData
from asd_jax.models import reads_gait_features
from asd_jax.training import checkpointing, optim
from asd_jax.training.metric_writer import MetricWriter
from asd_jax.training.parallel import DataParallel
from asd_jax.training.setup import setup_parallel_state

# validate(dp, state) -> (scalars to log, the score that selects checkpoints; higher is better)
Validate = Callable[[DataParallel, Any], tuple[dict[str, float], float]]


@dataclasses.dataclass
class Fitted:
    """A trained fold: steps, the state of the selected checkpoint, and its step."""

    dp: DataParallel
    state: Any
    selected_step: int


def is_time(step: int, every: int, total: int) -> bool:
    """Whether a periodic action is due after `step` steps (always at the last step)."""
    return step == total or (every > 0 and step % every == 0)


def fingerprint(batch: dict[str, np.ndarray]) -> int:
    """A checksum of a host batch, logged so a resumed run can prove it saw the same data."""
    checksum = 0
    for key in sorted(batch):
        checksum = zlib.crc32(np.ascontiguousarray(batch[key]).tobytes(), checksum)
    return checksum


class StopOnSigterm:
    """Notes SIGTERM instead of dying of it, so the loop can checkpoint the step in flight and
    stop; the previous handler is back on exit. Off the main thread (no signals there) and with
    several processes it stays out of the way: they may be signalled at different steps, and a
    checkpoint is a collective that all of them must join at the same one."""

    def __init__(self) -> None:
        self.received = False
        self._previous = None

    def __enter__(self) -> StopOnSigterm:
        if threading.current_thread() is threading.main_thread() and jax.process_count() == 1:
            self._previous = signal.signal(signal.SIGTERM, self._note)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)

    def _note(self, signum: int, frame: object) -> None:
        logging.warning("SIGTERM received: stopping after this step, with a checkpoint")
        self.received = True


def fit(config: ml_collections.ConfigDict, workdir: Path, fold: FoldData, validate: Validate, writer: MetricWriter) -> Fitted:
    """Trains (or resumes) one fold and returns the state of its best checkpoint on validation."""
    if config.train.select_after >= config.train.num_steps:
        raise ConfigError(
            f"train.select_after={config.train.select_after} leaves no checkpoint to select in "
            f"train.num_steps={config.train.num_steps}; lower it"
        )
    dp, state, _ = setup_parallel_state(config, fold)
    train_iter = input_pipeline.train_iterator(
        fold.source,
        fold.table,
        fold.split.train,
        config.data,
        seed=config.seed,
        process_index=jax.process_index(),
        process_count=jax.process_count(),
        gait_features=reads_gait_features(config),
    )
    manager = checkpointing.open_manager(workdir, config.train)
    try:
        start_step, restored = checkpointing.restore_latest(manager, checkpointing.abstract_like(dp.get_state(state)), train_iter)
        if start_step is not None:  # step 0 is a checkpoint too: weights brought in with --mode=import
            state = dp.put_state(restored)
            logging.info("resumed from step %d", start_step)
        with StopOnSigterm() as stop:
            state = _train_loop(config, dp, state, train_iter, manager, writer, start_step or 0, validate, stop)
        manager.wait_until_finished()
        best_step = manager.best_step()
        state = dp.put_state(checkpointing.restore(manager, best_step, checkpointing.abstract_like(dp.get_state(state))))
        logging.info("selected on validation patients: step %d", best_step)
    finally:
        manager.wait_until_finished()
        manager.close()
    return Fitted(dp, state, best_step)


def _train_loop(
    config: ml_collections.ConfigDict,
    dp: DataParallel,
    state: Any,
    train_iter: Any,
    manager: Any,
    writer: MetricWriter,
    start_step: int,
    validate: Validate,
    stop: StopOnSigterm,
) -> Any:
    """Steps from `start_step` to `config.train.num_steps`; validation, checkpoints and logs.
    Raises Preempted after a step that SIGTERM interrupted, once that step is checkpointed."""
    total = config.train.num_steps
    best, evals_since_best = -np.inf, 0
    bar = progress_bar(total=total, initial=start_step, hidden=jax.process_index() != 0, dynamic_ncols=True)
    last_time, last_step = time.perf_counter(), start_step
    for step in range(start_step + 1, total + 1):
        local_batch = next(train_iter)
        batch = dp.put_batch(local_batch)
        if step == start_step + 1:
            compile_start = time.perf_counter()
            dp.compile(state, batch)
            writer.write(step - 1, {"compile_seconds": time.perf_counter() - compile_start})
        state, metrics = dp.train_step(state, batch)
        bar.update(1)

        if is_time(step, config.train.log_every, total):
            _check_finite(dp, state)
            now = time.perf_counter()
            scalars = {k: dp.scalar(v) for k, v in metrics.items()}
            scalars["steps_per_second"] = (step - last_step) / (now - last_time)
            scalars["learning_rate"] = float(optim.learning_rate(config.optim, total)(step - 1))
            scalars["batch_fingerprint"] = fingerprint(local_batch)
            last_time, last_step = now, step
            writer.write(step, scalars)
            bar.set_postfix(loss=f"{scalars['loss']:.3f}", steps_s=f"{scalars['steps_per_second']:.1f}")

        metrics_for_best = None
        if is_time(step, config.train.eval_every, total):
            _check_finite(dp, state)
            val_scalars, score = validate(dp, state)
            writer.write(step, val_scalars)
            if step >= config.train.select_after:  # earlier checkpoints are kept for resuming, never selected
                metrics_for_best = {config.train.select_metric: score}
                best, evals_since_best = (score, 0) if score > best else (best, evals_since_best + 1)
        stopping = stop.received  # read once: a SIGTERM between the save and the raise waits a step
        if metrics_for_best is not None or is_time(step, config.train.checkpoint_every, total) or stopping:
            _check_finite(dp, state)
            checkpointing.save(manager, step, dp.get_state(state), train_iter, metrics_for_best)
        if stopping:
            raise Preempted(f"SIGTERM at step {step}; its checkpoint is in {manager.directory}, rerun the same command to resume")
        patience = config.train.early_stop_patience
        if patience and evals_since_best >= patience:
            logging.info("early stop at step %d: no validation gain in %d evaluations", step, patience)
            break
    bar.close()
    return state


def _check_finite(dp: DataParallel, state: Any) -> None:
    bad_step = int(dp.scalar(dp.get_state(state).nonfinite_step))
    if bad_step >= 0:
        raise NonFiniteLossError(
            f"non-finite loss at step {bad_step + 1}; training stopped, the last checkpoint before it is kept. "
            "Lower optim.learning_rate, check the input data for extreme values, or use float32 compute."
        )

"""Orbax checkpoints of everything a restart needs: train state (params, optimiser, step, RNG)
and the grain iterator, saved together so a resumed run sees exactly the data it would have seen.

Kept: the latest `keep` steps (for resume) and the best step by the validation metric (for
testing). Restoring takes an abstract target carrying the current shardings, so a checkpoint
written on one device layout restores onto another.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grain
import jax
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers

STATE, DATA = "state", "data"


def make_manager(directory: str | Path, *, keep: int, best_metric: str) -> ocp.CheckpointManager:
    """A manager that saves asynchronously and keeps the latest `keep` and the single best step."""
    policy = checkpoint_managers.AnyPreservationPolicy(
        [
            checkpoint_managers.LatestN(n=keep),
            checkpoint_managers.BestN(
                get_metric_fn=lambda metrics: metrics[best_metric],
                n=1,
                keep_checkpoints_without_metrics=False,
            ),
        ]
    )
    options = ocp.CheckpointManagerOptions(
        best_fn=lambda metrics: metrics[best_metric],
        best_mode="max",
        preservation_policy=policy,
        enable_async_checkpointing=True,
    )
    return ocp.CheckpointManager(Path(directory).absolute(), options=options, item_names=(STATE, DATA))


def save(
    manager: ocp.CheckpointManager,
    step: int,
    state: Any,
    data_iterator: grain.DatasetIterator,
    metrics: dict[str, float] | None = None,
) -> None:
    """Starts an asynchronous save; the caller waits (`wait_until_finished`) before exiting."""
    manager.save(
        step,
        args=ocp.args.Composite(
            **{STATE: ocp.args.StandardSave(state), DATA: grain.checkpoint.CheckpointSave(data_iterator)}
        ),
        metrics=metrics,
        force=True,
    )


def restore(
    manager: ocp.CheckpointManager,
    step: int,
    abstract_state: Any,
    data_iterator: grain.DatasetIterator | None = None,
) -> Any:
    """Restores the state (onto the shardings of `abstract_state`) and, if given, the iterator in place."""
    items = {STATE: ocp.args.StandardRestore(abstract_state)}
    if data_iterator is not None:
        items[DATA] = grain.checkpoint.CheckpointRestore(data_iterator)
    restored = manager.restore(step, args=ocp.args.Composite(**items))
    return restored[STATE]


def abstract_like(state: Any) -> Any:
    """Shape, dtype and sharding of every leaf: the restore target for `state`'s layout."""
    return jax.tree.map(ocp.utils.to_shape_dtype_struct, state)

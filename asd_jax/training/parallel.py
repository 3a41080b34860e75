"""Data parallelism: one per-shard step, run by `jit(shard_map)` over a mesh or by `pmap`.

The mesh is 1-D (`data`) over every device of every process. Params and optimiser state are
replicated; a batch is split along its first axis. Each process feeds only its own part of the
global batch (`make_array_from_process_local_data`), so the same code runs on one CPU, one host
with 8 GPUs, or a pod slice.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from absl import logging
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from asd_jax.base.architecture import DATA_AXIS
from asd_jax.base.errors import ConfigError

PARALLEL_MODES = ("shard_map", "pmap")


def check_batch_divisible(batch_size: int, what: str = "data.batch_size") -> None:
    """The global batch must split evenly over devices and processes: fail before any work."""
    if batch_size < 1:
        raise ConfigError(f"{what}={batch_size}: a batch needs at least one example per device")
    devices, processes = jax.device_count(), jax.process_count()
    if batch_size % devices:
        raise ConfigError(
            f"{what}={batch_size} does not divide by the {devices} devices of this run; "
            f"use a multiple of {devices}"
        )
    if batch_size % processes:
        raise ConfigError(f"{what}={batch_size} does not divide by the {processes} processes")


class StateLayout:
    """The train state's tree structure, fixed by the first `put_state`. Placed, the state is its
    list of leaves and the compiled steps take and return that list: flattening and rebuilding its
    hundreds of nnx Variables in Python around every call made dispatching one crossattn step take
    8.0 ms instead of 2.5 (`python -m asd_jax.bench --profile` showed it)."""

    def __init__(self) -> None:
        self.treedef: Any = None

    def leaves(self, state: Any) -> list[Any]:
        leaves, treedef = jax.tree.flatten(state)
        if self.treedef is None:
            self.treedef = treedef
        elif treedef != self.treedef:
            raise ValueError(
                f"a train state of another structure ({treedef.num_leaves} leaves) than the one these steps "
                f"were built for ({self.treedef.num_leaves} leaves): place it with the run's own put_state"
            )
        return leaves

    def on_leaves(self, step: Callable[..., Any], returns_state: bool) -> Callable[..., Any]:
        """`step(state, batch)` as a function of the state's leaves (and, if it returns a new
        state, returning that state's leaves)."""
        def run(leaves: list[Any], batch: Any) -> Any:
            if self.treedef is None or not isinstance(leaves, list):
                raise ValueError("the steps take the state put_state placed (its list of leaves)")
            out = step(jax.tree.unflatten(self.treedef, leaves), batch)
            return (self.leaves(out[0]), *out[1:]) if returns_state else out

        return run


@dataclasses.dataclass
class DataParallel:
    """Places state and batches for one parallel mode and runs the compiled per-shard steps."""

    mode: str
    mesh: jax.sharding.Mesh
    _train: Callable[..., Any]
    _eval: Callable[..., Any]
    layout: StateLayout
    _stack: Callable[[Any], Any] | None = None  # pmap: an identity pmap, which lays copies out as the steps expect

    @property
    def replicated(self) -> NamedSharding:
        return NamedSharding(self.mesh, P())

    @property
    def batch_sharding(self) -> NamedSharding:
        return NamedSharding(self.mesh, P(DATA_AXIS))

    def put_state(self, state: Any) -> list[Any]:
        """Host or single-device state -> the leaves the steps expect (replicated / stacked)."""
        leaves = self.layout.leaves(state)
        if self.mode == "pmap":  # from host copies: a restored state is committed to the mesh, which pmap refuses
            count = self.mesh.local_mesh.size
            return self._stack([np.broadcast_to(_host_copy(x), (count, *np.shape(x))) for x in leaves])
        return jax.device_put(leaves, self.replicated)

    def get_state(self, leaves: list[Any]) -> Any:
        """The single logical copy of the state (for checkpoints and export)."""
        if self.mode == "pmap":
            leaves = [x[0] for x in leaves]
        return jax.tree.unflatten(self.layout.treedef, leaves)

    def put_batch(self, local_batch: dict[str, np.ndarray]) -> dict[str, jax.Array]:
        """This process's rows of the global batch -> a global array (or a per-device stack)."""
        if self.mode == "pmap":
            count = self.mesh.local_mesh.size
            return {k: v.reshape(count, v.shape[0] // count, *v.shape[1:]) for k, v in local_batch.items()}
        return {
            k: jax.make_array_from_process_local_data(self.batch_sharding, v) for k, v in local_batch.items()
        }

    def fetch(self, tree: Any) -> Any:
        """Batch-sharded step outputs -> host numpy of the whole GLOBAL batch, on every process."""
        if self.mode == "pmap":
            tree = jax.tree.map(lambda x: np.asarray(x).reshape(-1, *x.shape[2:]), tree)
            if jax.process_count() == 1:
                return tree
        return multihost_utils.process_allgather(tree, tiled=True)

    def train_step(self, state: Any, batch: dict[str, jax.Array]) -> tuple[Any, dict[str, jax.Array]]:
        return self._train(state, batch)

    def eval_step(self, state: Any, batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
        return self._eval(state, batch)

    def scalar(self, x: jax.Array) -> float:
        """A replicated scalar metric as a Python float (reads this process's first copy)."""
        return float(np.asarray(x.addressable_data(0)).reshape(-1)[0])

    def compile(self, state: Any, batch: dict[str, jax.Array]) -> jax.stages.Compiled | None:
        """AOT-compiles the train step and logs the time and memory it needs; returns the
        executable (None under pmap) so its cost and memory analyses can be read."""
        if self.mode == "pmap":
            return None
        start = time.perf_counter()
        compiled = self._train.lower(state, batch).compile()
        logging.info("train step compiled in %.1f s", time.perf_counter() - start)
        memory = compiled.memory_analysis()
        if memory is not None:
            logging.info(
                "train step memory: arguments %.1f MiB, temporaries %.1f MiB",
                memory.argument_size_in_bytes / 2**20,
                memory.temp_size_in_bytes / 2**20,
            )
        self._train = compiled
        return compiled


def _host_copy(x: Any) -> np.ndarray:
    """This process's copy of a replicated leaf (a numpy or JAX array) as numpy."""
    return np.asarray(x.addressable_data(0)) if isinstance(x, jax.Array) else np.asarray(x)


def make_mesh(devices: list[jax.Device] | None = None) -> jax.sharding.Mesh:
    """The one 1-D mesh of the run, over all devices of all processes (or the `devices` given)."""
    devices = jax.devices() if devices is None else devices
    return jax.make_mesh((len(devices),), (DATA_AXIS,), axis_types=(jax.sharding.AxisType.Explicit,), devices=devices)


def make_data_parallel(
    mode: str,
    train_step: Callable[..., Any],
    eval_step: Callable[..., Any],
    devices: list[jax.Device] | None = None,
) -> DataParallel:
    """Wraps per-shard `train_step(state, batch)` / `eval_step(state, batch)` for `mode`."""
    if mode not in PARALLEL_MODES:
        raise ConfigError(f"train.parallel={mode!r}: expected one of {PARALLEL_MODES}")
    mesh = make_mesh(devices)
    layout = StateLayout()
    train_step, eval_step = layout.on_leaves(train_step, returns_state=True), layout.on_leaves(eval_step, returns_state=False)
    if mode == "pmap":
        local = None if devices is None else list(mesh.local_mesh.devices.flat)
        return DataParallel(
            mode,
            mesh,
            jax.pmap(train_step, axis_name=DATA_AXIS, donate_argnums=0, devices=local),
            jax.pmap(eval_step, axis_name=DATA_AXIS, devices=local),
            layout,
            jax.pmap(lambda tree: tree, devices=local),
        )
    # check_vma=False gives collectives inside the differentiated loss (sync BatchNorm) pmap's
    # per-shard transpose: the step differentiates each shard's own objective and averages the
    # gradients itself. With varying-axis checks on, autodiff would also sum those collectives'
    # cotangents over shards and count the cross-shard terms twice.
    sharded_train = jax.shard_map(
        train_step, mesh=mesh, in_specs=(P(), P(DATA_AXIS)), out_specs=(P(), P()), check_vma=False
    )
    sharded_eval = jax.shard_map(eval_step, mesh=mesh, in_specs=(P(), P(DATA_AXIS)), out_specs=P(DATA_AXIS))
    return DataParallel(mode, mesh, jax.jit(sharded_train, donate_argnums=0), jax.jit(sharded_eval), layout)

"""Multi-host start-up on JAX's distributed runtime."""

from __future__ import annotations

import jax
import ml_collections
from absl import logging


def maybe_initialize(train: ml_collections.ConfigDict) -> None:
    """Joins the JAX distributed runtime when `train.distributed` is set; a no-op on one host and
    when already joined (idempotent).

    On TPU pods, SLURM and Open MPI, JAX discovers the coordinator, process count and index itself.
    Elsewhere give them in the config (`train.coordinator_address`, `train.num_processes`,
    `train.process_id`) or as JAX_COORDINATOR_ADDRESS plus the two config fields. CPU processes talk
    through gloo collectives.
    """
    if not train.distributed or jax.distributed.is_initialized():
        return
    explicit = {
        "coordinator_address": train.coordinator_address or None,
        "num_processes": train.num_processes if train.num_processes > 0 else None,
        "process_id": train.process_id if train.process_id >= 0 else None,
    }
    jax.distributed.initialize(**{k: v for k, v in explicit.items() if v is not None})
    logging.info("process %d of %d, %d devices in all", jax.process_index(), jax.process_count(), jax.device_count())

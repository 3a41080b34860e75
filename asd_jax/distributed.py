"""Multi-host start-up on JAX's distributed runtime."""

from __future__ import annotations

import jax
from absl import logging


def maybe_initialize(enabled: bool) -> None:
    """Joins the JAX distributed runtime when asked; a no-op on one host and when already joined.

    With no arguments JAX discovers the coordinator, process count and index itself on TPU pods,
    SLURM and Open MPI, or from JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES / JAX_PROCESS_ID.
    """
    if not enabled or jax.distributed.is_initialized():
        return
    jax.distributed.initialize()
    logging.info("process %d of %d, %d devices in all", jax.process_index(), jax.process_count(), jax.device_count())

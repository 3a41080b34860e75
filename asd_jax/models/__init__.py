"""Models, picked by `config.model.name`: module `asd_jax.models.<name>` exposes `build`.

Each model maps a batch of normalised poses [B, T, 17, 3] and clinical priors [B, 5] to a
`ModelOutput`; adding a model is adding a module, with no registry to edit.
"""

from __future__ import annotations

import importlib
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
from flax import nnx


class ModelOutput(NamedTuple):
    """logits [B, C]; attention [B, R, T'] (region x time, or None); aux_loss scalar (0 if none)."""

    logits: jax.Array
    attention: jax.Array | None
    aux_loss: jax.Array


def compute_dtype(config: ml_collections.ConfigDict):
    """The activation dtype of `config.train.compute_dtype`; parameters always stay float32."""
    names = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
    if config.train.compute_dtype not in names:
        raise ValueError(f"train.compute_dtype={config.train.compute_dtype!r}: expected one of {list(names)}")
    return names[config.train.compute_dtype]


def build_model(config: ml_collections.ConfigDict, num_classes: int, rngs: nnx.Rngs) -> nnx.Module:
    """Instantiates `config.model.name`; an unknown name lists the available modules."""
    name = config.model.name
    try:
        module: Any = importlib.import_module(f"asd_jax.models.{name}")
    except ModuleNotFoundError as err:
        if err.name != f"asd_jax.models.{name}":
            raise
        raise ValueError(f"unknown model {name!r}: no module asd_jax/models/{name}.py") from None
    return module.build(config, num_classes=num_classes, rngs=rngs)

"""A Flax model's variables as a flat {path: host array} dict and back, the form the PyTorch
converter (asd_jax.pytorch.convert) works in."""

from __future__ import annotations

import jax
import numpy as np
from flax import nnx, traverse_util


def flat_state(model_state: nnx.State) -> dict[tuple, np.ndarray]:
    """Every variable of a model (params and BatchNorm statistics) as {path: host array}."""
    return {path: np.asarray(value) for path, value in traverse_util.flatten_dict(nnx.to_pure_dict(model_state)).items()}


def with_values(model_state: nnx.State, flat: dict[tuple, np.ndarray]) -> nnx.State:
    """A copy of `model_state` holding the values of `flat` (same paths)."""
    state = jax.tree.map(lambda x: x, model_state)  # a copy: the caller's state stays as it was
    pure = traverse_util.unflatten_dict({path: np.asarray(value) for path, value in flat.items()})
    nnx.replace_by_pure_dict(state, pure)
    return state

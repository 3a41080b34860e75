"""What every keypoint model returns."""

from __future__ import annotations

from typing import NamedTuple

import jax


class ModelOutput(NamedTuple):
    """logits [B, C]; attention [B, R, T'] (region x time, or None); aux_loss scalar (0 if none)."""

    logits: jax.Array
    attention: jax.Array | None
    aux_loss: jax.Array

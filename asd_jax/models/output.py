"""What every keypoint model returns."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from asd_jax.base.preprocess import merge_class_logits


class ModelOutput(NamedTuple):
    """logits [B, C]; attention [B, R, T'] (region x time, or None); aux_loss scalar (0 if none);
    stream_logits: the logits of input streams whose sum `logits` is, each trained on the labels
    too (crossattn's gait_fusion='sum'), else ()."""

    logits: jax.Array
    attention: jax.Array | None
    aux_loss: jax.Array
    stream_logits: tuple[jax.Array, ...] = ()


def reported_logits(model, logits: jax.Array) -> jax.Array:
    """The logits of the classes a model reports: its own, or, trained on finer classes
    (`build_model` sets `class_groups`), those merged into the reported ones."""
    return merge_class_logits(logits, getattr(model, "class_groups", ()), xp=jnp)

"""Optimiser, learning-rate schedule and the classification loss."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from asd_jax.base.errors import ConfigError


def learning_rate(optim: ml_collections.ConfigDict, num_steps: int) -> optax.Schedule:
    """Linear warmup to the peak, then cosine decay to zero at `num_steps`."""
    warmup = min(optim.warmup_steps, max(num_steps - 1, 0))
    return optax.warmup_cosine_decay_schedule(0.0, optim.learning_rate, warmup, max(num_steps, warmup + 1))


def _decay_mask(params):
    """Weight decay on matrices only: not on biases, norm scales or 1-D codes."""
    return jax.tree.map(lambda p: p.ndim >= 2, params)


def make_optimizer(optim: ml_collections.ConfigDict, num_steps: int) -> optax.GradientTransformation:
    """AdamW on the schedule, after global-norm clipping (grad_clip <= 0 turns clipping off)."""
    adamw = optax.adamw(learning_rate(optim, num_steps), weight_decay=optim.weight_decay, mask=_decay_mask)
    if optim.grad_clip > 0:
        return optax.chain(optax.clip_by_global_norm(optim.grad_clip), adamw)
    return adamw


def class_weights(spec: str, label_counts: np.ndarray) -> np.ndarray | None:
    """'' -> None; 'balanced' -> n / (C * count_c); '1,2,0.5' -> those weights."""
    spec = spec.strip()
    if not spec:
        return None
    counts = np.asarray(label_counts, np.float64)
    if spec == "balanced":
        if (counts == 0).any():
            raise ConfigError(f"optim.class_weights='balanced' needs every class in training, got counts {counts.tolist()}")
        return (counts.sum() / (len(counts) * counts)).astype(np.float32)
    try:
        weights = np.asarray([float(w) for w in spec.split(",")], np.float32)
    except ValueError:
        raise ConfigError(f"optim.class_weights={spec!r}: expected '', 'balanced' or comma-separated numbers") from None
    if len(weights) != len(counts) or (weights < 0).any():
        raise ConfigError(f"optim.class_weights={spec!r}: need {len(counts)} non-negative weights")
    return weights


def classification_loss(
    logits: jax.Array,
    labels: jax.Array,
    valid: jax.Array,
    *,
    num_classes: int,
    label_smoothing: float,
    class_weights: jax.Array | None,
) -> tuple[jax.Array, jax.Array]:
    """(sum of weighted cross-entropies, sum of weights): the caller normalises globally."""
    targets = optax.smooth_labels(jax.nn.one_hot(labels, num_classes), label_smoothing)
    losses = optax.softmax_cross_entropy(logits.astype(jnp.float32), targets)
    weights = valid if class_weights is None else valid * class_weights[labels]
    return jnp.sum(losses * weights), jnp.sum(weights)

"""Reusable NNX blocks: attention with a logit bias, pre-norm blocks, per-example dropout, pooling over
time, the clip's clinical gait features as a vector the head reads."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from asd_jax.base.errors import ConfigError

POOLINGS = ("mean", "stats")


def pool_time(x: jax.Array, pooling: str, present: jax.Array) -> jax.Array:
    """[B, T, D] -> [B, D] mean over time, or [B, 3D] mean, std and last third minus first third
    ("stats"): a convolution is blind to where in the clip it is, so without the drift term it
    cannot see a lean that grows over the walk. Only frames where some joint was seen (`present`,
    [B, T]) count, so a whole-clip window padded with missing frames pools over the walk alone."""
    weight = present[..., None].astype(x.dtype)
    count = jnp.maximum(weight.sum(axis=1, keepdims=True), 1)  # [B, 1, 1]
    mean = (weight * x).sum(axis=1, keepdims=True) / count
    if pooling == "mean":
        return mean[:, 0]
    std = jnp.sqrt((weight * (x - mean) ** 2).sum(axis=1, keepdims=True) / count)
    rank = jnp.cumsum(weight, axis=1) - weight  # of each present frame among them, from 0
    third = jnp.maximum(jnp.floor(count / 3), 1)
    first, last = weight * (rank < third), weight * (rank >= count - third)
    drift = ((last - first) * x).sum(axis=1, keepdims=True) / third
    return jnp.concatenate([mean, std, drift], axis=-1)[:, 0]


class ExampleDropout(nnx.Module):
    """Dropout whose mask for an example depends only on that example's key and this layer's id.

    One key per example (not per batch) makes a data-parallel step independent of how the batch
    is split over devices.
    """

    def __init__(self, rate: float, layer_id: int):
        self.rate = rate
        self.layer_id = layer_id

    def __call__(self, x: jax.Array, keys: jax.Array | None) -> jax.Array:
        if keys is None or self.rate == 0.0:
            return x
        keep = 1.0 - self.rate
        mask = jax.vmap(lambda k: jax.random.bernoulli(jax.random.fold_in(k, self.layer_id), keep, x.shape[1:]))(keys)
        return jnp.where(mask, x / keep, 0.0).astype(x.dtype)


class Attention(nnx.Module):
    """Multi-head attention with an optional additive logit bias [B, K] over the keys."""

    def __init__(self, dim: int, num_heads: int, *, dtype, rngs: nnx.Rngs):
        if dim % num_heads:
            raise ValueError(f"model.dim={dim} must divide by model.num_heads={num_heads}")
        self.num_heads = num_heads
        dense = lambda bias=True: nnx.Linear(dim, dim, use_bias=bias, dtype=dtype, param_dtype=jnp.float32, rngs=rngs)  # noqa: E731
        # No key bias: softmax ignores a shift shared by all keys, so its gradient is pure rounding
        # noise that Adam would blow up into real, device-layout-dependent updates.
        self.query, self.key, self.value, self.out = dense(), dense(bias=False), dense(), dense()

    def _heads(self, x: jax.Array) -> jax.Array:
        return x.reshape(*x.shape[:-1], self.num_heads, -1)

    def __call__(
        self, queries: jax.Array, keys: jax.Array, bias: jax.Array | None = None, *, return_weights: bool = False
    ) -> tuple[jax.Array, jax.Array | None]:
        """queries [B, Q, D], keys [B, K, D] -> ([B, Q, D], weights [B, H, Q, K] or None)."""
        q, k, v = self._heads(self.query(queries)), self._heads(self.key(keys)), self._heads(self.value(keys))
        full_bias = None if bias is None else bias[:, None, None, :].astype(q.dtype)
        if return_weights:
            logits = jnp.einsum("bqhd,bkhd->bhqk", q, k) / np.sqrt(q.shape[-1])
            if full_bias is not None:
                logits = logits + full_bias
            weights = jax.nn.softmax(logits.astype(jnp.float32), axis=-1)
            out = jnp.einsum("bhqk,bkhd->bqhd", weights.astype(v.dtype), v)
        else:
            weights = None
            out = jax.nn.dot_product_attention(q, k, v, bias=full_bias)
        return self.out(out.reshape(*out.shape[:-2], -1)), weights


class Mlp(nnx.Module):
    def __init__(self, dim: int, ratio: int, *, dtype, rngs: nnx.Rngs):
        self.up = nnx.Linear(dim, dim * ratio, dtype=dtype, param_dtype=jnp.float32, rngs=rngs)
        self.down = nnx.Linear(dim * ratio, dim, dtype=dtype, param_dtype=jnp.float32, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.down(jax.nn.gelu(self.up(x)))


class Block(nnx.Module):
    """Pre-norm residual block: attention (self or to `context`), then MLP."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: int, dropout: float, layer_id: int, *, dtype, rngs: nnx.Rngs):
        norm = lambda: nnx.LayerNorm(dim, dtype=dtype, param_dtype=jnp.float32, rngs=rngs)  # noqa: E731
        self.norm_q, self.norm_kv, self.norm_mlp = norm(), norm(), norm()
        self.attention = Attention(dim, num_heads, dtype=dtype, rngs=rngs)
        self.mlp = Mlp(dim, mlp_ratio, dtype=dtype, rngs=rngs)
        self.drop_attention = ExampleDropout(dropout, 2 * layer_id)
        self.drop_mlp = ExampleDropout(dropout, 2 * layer_id + 1)

    def __call__(
        self,
        x: jax.Array,
        context: jax.Array | None = None,
        bias: jax.Array | None = None,
        *,
        dropout_keys: jax.Array | None = None,
        return_weights: bool = False,
    ) -> tuple[jax.Array, jax.Array | None]:
        queries = self.norm_q(x)
        keys = queries if context is None else self.norm_kv(context)
        attended, weights = self.attention(queries, keys, bias, return_weights=return_weights)
        x = x + self.drop_attention(attended, dropout_keys)
        x = x + self.drop_mlp(self.mlp(self.norm_mlp(x)), dropout_keys)
        return x, weights


class FeatureStatistic(nnx.Variable):
    """A constant of the model fitted on the training patients, not by the optimiser (it is not an
    nnx.Param), saved with the weights and exported with them."""


class GaitFeatureEncoder(nnx.Module):
    """The clip's clinical gait features [B, F] (asd_jax/base/gait.py, NaN where a measure
    had no data) -> [B, dim]: standardised by the training patients' median and spread
    (`center`, `spread`, set once before training), a missing or extreme value read as 0 or +-5
    spreads, per-example dropout over the features, one linear map and a GELU."""

    def __init__(self, num_features: int, dim: int, dropout: float, layer_id: int, *, dtype, rngs: nnx.Rngs):
        self.center = FeatureStatistic(jnp.zeros((num_features,), jnp.float32))
        self.spread = FeatureStatistic(jnp.ones((num_features,), jnp.float32))
        self.embed = nnx.Linear(num_features, dim, dtype=dtype, param_dtype=jnp.float32, rngs=rngs)
        self.drop = ExampleDropout(dropout, layer_id)

    def __call__(self, features: jax.Array, keys: jax.Array | None) -> jax.Array:
        if features.shape[-1] != self.center.shape[0]:
            raise ConfigError(f"gait features [..., {features.shape[-1]}] for a model built for model.gait_features={self.center.shape[0]}")
        z = (features.astype(jnp.float32) - self.center[...]) / self.spread[...]
        z = jnp.where(jnp.isfinite(z), jnp.clip(z, -FEATURE_CLIP, FEATURE_CLIP), 0.0)
        return jax.nn.gelu(self.embed(self.drop(z, keys).astype(self.embed.dtype)))


FEATURE_CLIP = 5.0  # standardised gait features beyond this many spreads are read as this many

# How the gait features meet the pose: one head over both ('concat'), or a head each whose logits
# add up, each also trained on its own ('sum'), so the pose stream cannot leave the work to them.
GAIT_FUSIONS = ("concat", "sum")


def classifier_heads(
    pooled_width: int, num_classes: int, dim: int, dropout: float, layer_id: int, *, gait_features: int, gait_fusion: str,
    dtype, rngs: nnx.Rngs,
) -> tuple[GaitFeatureEncoder | None, nnx.Linear, nnx.Linear | None]:
    """(gait encoder, head, gait head) of a model whose pooled pose features are `pooled_width` wide:
    without `gait_features` only the head; with them their encoder, and either a head each
    ('sum') or one head over the pose and the gait features together ('concat', gait head None).
    Built in this order, so a model's initial weights do not depend on whether it reads them."""
    if gait_fusion not in GAIT_FUSIONS:
        raise ConfigError(f"model.gait_fusion={gait_fusion!r}: expected one of {GAIT_FUSIONS}")
    linear = lambda i, o: nnx.Linear(i, o, dtype=dtype, param_dtype=jnp.float32, rngs=rngs)  # noqa: E731
    encoder = GaitFeatureEncoder(gait_features, dim, dropout, layer_id, dtype=dtype, rngs=rngs) if gait_features else None
    joint_head = bool(gait_features) and gait_fusion == "concat"
    head = linear(pooled_width + (dim if joint_head else 0), num_classes)
    gait_head = linear(dim, num_classes) if gait_features and not joint_head else None
    return encoder, head, gait_head


def classify(
    pooled: jax.Array, features: jax.Array | None, keys: jax.Array | None, *,
    head: nnx.Linear, encoder: GaitFeatureEncoder | None, gait_head: nnx.Linear | None,
) -> tuple[jax.Array, tuple[jax.Array, ...]]:
    """(logits [B, C] float32, the streams' logits whose sum they are, or ()) of the heads of
    `classifier_heads` over the pooled pose features [B, W] and the clip's gait features [B, F]."""
    if (encoder is None) != (features is None):
        raise ConfigError(
            "model.gait_features needs the clips' gait features (the input pipeline's 'features')"
            if features is None else "gait features given to a model built without model.gait_features"
        )
    if encoder is None:
        return head(pooled).astype(jnp.float32), ()
    gait = encoder(features, keys).astype(pooled.dtype)
    if gait_head is None:
        return head(jnp.concatenate([pooled, gait], axis=-1)).astype(jnp.float32), ()
    streams = (head(pooled).astype(jnp.float32), gait_head(gait).astype(jnp.float32))
    return streams[0] + streams[1], streams


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(median, spread) per column of the training clips' features [N, F], ignoring NaN: the spread
    is the interquartile range over 1.349 (the standard deviation of a normal), 1 where a column
    has no spread or no data, so that no feature is divided by zero."""
    with warnings.catch_warnings():  # a column without data gives NaN, replaced below
        warnings.simplefilter("ignore", RuntimeWarning)
        q25, center, q75 = np.nanpercentile(features, [25, 50, 75], axis=0)
    spread = (q75 - q25) / 1.349
    center = np.where(np.isfinite(center), center, 0.0)
    spread = np.where(np.isfinite(spread) & (spread > 1e-6), spread, 1.0)
    return center.astype(np.float32), spread.astype(np.float32)

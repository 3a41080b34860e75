"""Temporal convolutional baseline: the per-frame joint features of all joints, convolved in time.

With `gait_features`, the head also reads the clip's clinical gait features, as crossattn's does
(asd_jax/models/layers.py `classifier_heads`): still a pose-only model, whose second stream is
measured from the same poses.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from asd_jax.base.architecture import input_channels
from asd_jax.base.errors import ConfigError
from asd_jax.base.skeleton import MIN_SCORE, NUM_JOINTS
from asd_jax.models.inputs import model_inputs
from asd_jax.models.layers import POOLINGS, ExampleDropout, classifier_heads, classify, pool_time
from asd_jax.models.output import ModelOutput


class TemporalCNN(nnx.Module):
    def __init__(
        self, *, num_classes: int, dim: int, depth: int, kernel: int, dropout: float, inputs: str = "joints",
        pooling: str = "mean", gait_features: int = 0, gait_fusion: str = "concat", dtype, rngs: nnx.Rngs
    ):
        conv = lambda i, o, stride: nnx.Conv(i, o, (kernel,), strides=(stride,), dtype=dtype, param_dtype=jnp.float32, rngs=rngs)  # noqa: E731
        if pooling not in POOLINGS:
            raise ConfigError(f"model.pooling={pooling!r}: expected one of {POOLINGS}")
        self.dtype, self.inputs, self.pooling = dtype, inputs, pooling
        per_joint, per_frame = input_channels(inputs)
        self.stem = conv(NUM_JOINTS * per_joint + per_frame, dim, 1)
        self.convs = nnx.List([conv(dim, dim, 2 if i % 2 else 1) for i in range(depth)])
        self.norms = nnx.List([nnx.LayerNorm(dim, dtype=dtype, param_dtype=jnp.float32, rngs=rngs) for _ in range(depth)])
        self.drops = nnx.List([ExampleDropout(dropout, i) for i in range(depth)])
        self.gait, self.head, self.gait_head = classifier_heads(
            dim * (3 if pooling == "stats" else 1), num_classes, dim, dropout, depth,
            gait_features=gait_features, gait_fusion=gait_fusion, dtype=dtype, rngs=rngs,
        )

    def __call__(
        self, pose: jax.Array, prior: jax.Array, *, features: jax.Array | None = None, dropout_keys: jax.Array | None = None
    ) -> ModelOutput:
        del prior  # the baseline sees no clinical knowledge
        x = self.stem(model_inputs(pose.astype(jnp.float32), self.inputs).astype(self.dtype))  # [B, T, D]
        present = (pose[..., 2] >= MIN_SCORE).any(axis=-1)  # [B, T]
        for conv, norm, drop in zip(self.convs, self.norms, self.drops):
            y = drop(jax.nn.gelu(conv(norm(x))), dropout_keys)
            if y.shape != x.shape:  # a stride-2 convolution: keep the frames it kept
                step = x.shape[1] // y.shape[1]
                x, present = x[:, ::step][:, : y.shape[1]], present[:, ::step][:, : y.shape[1]]
            x = y + x
        logits, streams = classify(
            pool_time(x, self.pooling, present), features, dropout_keys, head=self.head, encoder=self.gait, gait_head=self.gait_head
        )
        return ModelOutput(logits, None, jnp.zeros((), jnp.float32), streams)


"""ST-GCN (Yan et al., 2018) over the COCO-17 graph, as pyskl / MMAction2 define it: spatial
graph convolution with the spatial partitioning strategy (self, centripetal, centrifugal
neighbours around the mid-hip centre), a 9-frame temporal convolution, BatchNorm and residuals.

BatchNorm statistics are averaged over the `data` axis during training (sync BN), so a
data-parallel step equals a single-device one. The features are pooled over the joints and over
the frames where some joint was seen (`pooling`: their mean, or mean, spread and drift for whole
clips padded with missing frames, as the temporal CNN does). Its BatchNorms still take their
statistics over every frame, padded ones included. With `gait_features`, the head also reads the
clip's clinical gait features, as the temporal CNN's does (asd_jax/models/layers.py
`classifier_heads`): still pose-only, the features being measured from the same poses.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from asd_jax.base.architecture import DATA_AXIS, block_plan, input_channels, spatial_partitions
from asd_jax.base.errors import ConfigError
from asd_jax.base.skeleton import MIN_SCORE, NUM_JOINTS
from asd_jax.models.inputs import frame_inputs, joint_inputs
from asd_jax.models.layers import POOLINGS, ExampleDropout, classifier_heads, classify, pool_time
from asd_jax.models.output import ModelOutput


def conv_over_time(conv: nnx.Conv, x: jax.Array, stride: int) -> jax.Array:
    """`conv`'s (k, 1) kernel as a 1-D convolution over time with the joints folded into the batch:
    [B, T, J, C] -> [B, T / stride, J, C']. The same sums as the 2-D convolution (parameters and
    twins unchanged), but XLA:CPU computes a 2-D kernel's gradient by a slow path (a window as big
    as the activation); folded, the step went from 0.13x to 0.73x of eager PyTorch (docs/performance.md)."""
    batch, _, joints, channels = x.shape
    kernel = conv.kernel[...][:, 0].astype(x.dtype)
    folded = jnp.moveaxis(x, 2, 1).reshape(batch * joints, -1, channels)
    y = jax.lax.conv_general_dilated(folded, kernel, (stride,), "SAME", dimension_numbers=("NWC", "WIO", "NWC"))
    if conv.bias is not None:
        y = y + conv.bias[...].astype(x.dtype)
    return jnp.moveaxis(y.reshape(batch, joints, -1, kernel.shape[-1]), 1, 2)


class STGCNBlock(nnx.Module):
    def __init__(self, in_dim: int, out_dim: int, stride: int, dropout: float, layer_id: int, *, dtype, sync_axis, rngs: nnx.Rngs):
        # No bias before a BatchNorm: it would be cancelled, and its rounding-noise gradient would
        # be amplified by Adam into device-layout-dependent updates.
        self.gcn = nnx.Linear(in_dim, 3 * out_dim, use_bias=False, dtype=dtype, param_dtype=jnp.float32, rngs=rngs)
        self.gcn_norm = nnx.BatchNorm(out_dim, axis_name=sync_axis, dtype=dtype, rngs=rngs)
        self.tcn = nnx.Conv(
            out_dim, out_dim, (9, 1), strides=(stride, 1), use_bias=False, dtype=dtype, param_dtype=jnp.float32, rngs=rngs
        )
        self.tcn_norm = nnx.BatchNorm(out_dim, axis_name=sync_axis, dtype=dtype, rngs=rngs)
        self.residual = (
            None
            if in_dim == out_dim and stride == 1
            else nnx.Conv(in_dim, out_dim, (1, 1), strides=(stride, 1), dtype=dtype, param_dtype=jnp.float32, rngs=rngs)
        )
        self.drop = ExampleDropout(dropout, layer_id)
        self.out_dim, self.stride = out_dim, stride

    def __call__(self, x: jax.Array, *, training: bool, dropout_keys: jax.Array | None) -> jax.Array:
        """x: [B, T, J, C]."""
        y = self.gcn(x).reshape(*x.shape[:3], 3, self.out_dim)
        y = jnp.einsum("kij,btjkc->btic", jnp.asarray(spatial_partitions(), y.dtype), y)
        y = jax.nn.relu(self.gcn_norm(y, use_running_average=not training))
        y = self.tcn_norm(conv_over_time(self.tcn, y, self.stride), use_running_average=not training)
        shortcut = x if self.residual is None else conv_over_time(self.residual, x, self.stride)
        return self.drop(jax.nn.relu(y + shortcut), dropout_keys)


class STGCN(nnx.Module):
    def __init__(
        self, *, num_classes: int, dim: int, depth: int, dropout: float, sync_batch_norm: bool, inputs: str = "joints",
        pooling: str = "mean", gait_features: int = 0, gait_fusion: str = "concat", dtype, rngs: nnx.Rngs,
    ):
        if pooling not in POOLINGS:
            raise ConfigError(f"model.pooling={pooling!r}: expected one of {POOLINGS}")
        sync_axis = DATA_AXIS if sync_batch_norm else None
        self.inputs, self.pooling = inputs, pooling
        per_joint, per_frame = input_channels(inputs)
        self.channels = per_joint + per_frame  # frame channels (angles) are given to every joint
        self.input_norm = nnx.BatchNorm(NUM_JOINTS * self.channels, axis_name=sync_axis, dtype=dtype, rngs=rngs)
        plan = block_plan(dim, depth, self.channels)
        self.blocks = nnx.List(
            [
                STGCNBlock(in_dim, out_dim, stride, dropout, i, dtype=dtype, sync_axis=sync_axis, rngs=rngs)
                for i, (in_dim, out_dim, stride) in enumerate(plan)
            ]
        )
        self.gait, self.head, self.gait_head = classifier_heads(
            plan[-1][1] * (3 if pooling == "stats" else 1), num_classes, plan[-1][1], dropout, len(plan),
            gait_features=gait_features, gait_fusion=gait_fusion, dtype=dtype, rngs=rngs,
        )
        self.dtype = dtype

    def __call__(
        self, pose: jax.Array, prior: jax.Array, *, features: jax.Array | None = None, dropout_keys: jax.Array | None = None
    ) -> ModelOutput:
        del prior  # the baseline sees no clinical knowledge
        training = dropout_keys is not None
        pose = pose.astype(jnp.float32)
        joints, frame = joint_inputs(pose, self.inputs), frame_inputs(pose, self.inputs)
        graph_inputs = jnp.concatenate([joints, jnp.broadcast_to(frame[:, :, None], (*joints.shape[:3], frame.shape[-1]))], -1)
        batch, frames = graph_inputs.shape[:2]
        x = self.input_norm(graph_inputs.reshape(batch, frames, -1).astype(self.dtype), use_running_average=not training)
        x = x.reshape(batch, frames, NUM_JOINTS, self.channels)
        present = (pose[..., 2] >= MIN_SCORE).any(axis=-1)  # [B, T]
        for block in self.blocks:
            x = block(x, training=training, dropout_keys=dropout_keys)
            present = present[:, :: block.stride]  # output frame i of a stride-s convolution sits near input frame s * i
        logits, streams = classify(
            pool_time(x.mean(axis=2), self.pooling, present), features, dropout_keys,
            head=self.head, encoder=self.gait, gait_head=self.gait_head,
        )
        return ModelOutput(logits, None, jnp.zeros((), jnp.float32), streams)


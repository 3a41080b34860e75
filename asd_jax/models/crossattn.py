"""Clinical-knowledge cross-attention over keypoint sequences (the default model).

Two token streams over time patches of `patch` frames:
- pose tokens: all joints of a patch, one token per patch (what the body does);
- region tokens: joints pooled per clinical region and patch (where clinicians look).
Each layer lets pose tokens attend to the region tokens of the whole window, with the clip's
clinical prior added to the logits as log(prior) (cross-attentive temporal fusion), then lets pose
tokens attend to each other over time (periodic gait dynamics). The attention mass on each region
is the explanation map and, optionally, is pulled towards the prior by an alignment loss.
With `gait_features`, the head also reads the clip's clinical gait features (cadence, trunk lean
and its drift, per-cycle hip and knee measures, asymmetry: asd_jax/base/gait.py), measured
on the whole clip at 30 fps, beside the pooled pose tokens.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from asd_jax.base.architecture import MASKED, PRIOR_EPS, input_channels, region_inputs, sinusoidal_positions
from asd_jax.base.errors import ConfigError
from asd_jax.base.skeleton import MIN_SCORE, NUM_JOINTS, NUM_REGIONS, region_membership
from asd_jax.models.inputs import joint_inputs, model_inputs
from asd_jax.models.layers import POOLINGS, Block, ExampleDropout, classifier_heads, classify, pool_time
from asd_jax.models.output import ModelOutput

ENCODERS = ("patch", "conv")  # pose tokens: one linear map of each patch, or a temporal conv then patching


def patch_presence(pose: jax.Array, patch: int) -> jax.Array:
    """[B, T'] 1.0 for a patch in which some joint was seen, else 0.0 (a padded stretch)."""
    seen = (pose[..., 2] >= MIN_SCORE).any(axis=-1)  # [B, T]
    return seen.reshape(seen.shape[0], -1, patch).any(axis=-1).astype(jnp.float32)


def mean_over_time(x: jax.Array, weight: jax.Array | None, axis: int) -> jax.Array:
    """The mean over the time axis of x, or over the patches of `weight` [B, T'] 1 only."""
    if weight is None:
        return x.mean(axis=axis)
    shape = [1] * x.ndim
    shape[0], shape[axis] = weight.shape
    w = weight.reshape(shape).astype(x.dtype)
    return (x * w).sum(axis=axis) / jnp.maximum(w.sum(axis=axis), 1.0)


class CrossAttnModel(nnx.Module):
    def __init__(
        self,
        *,
        num_classes: int,
        dim: int,
        num_heads: int,
        depth: int,
        patch: int,
        mlp_ratio: int,
        dropout: float,
        use_prior: bool,
        cross_attention: bool,
        align_weight: float,
        inputs: str = "joints",
        encoder: str = "patch",
        kernel: int = 9,
        mask_missing: bool = False,
        pooling: str = "mean",
        gait_features: int = 0,
        gait_fusion: str = "concat",
        dtype=jnp.float32,
        rngs: nnx.Rngs,
    ):
        choices = (("encoder", encoder, ENCODERS), ("pooling", pooling, POOLINGS))
        for field, value, allowed in choices:
            if value not in allowed:
                raise ConfigError(f"model.{field}={value!r}: expected one of {allowed}")
        self.patch, self.dim, self.inputs, self.encoder = patch, dim, inputs, encoder
        self.use_prior, self.cross_attention, self.align_weight = use_prior, cross_attention, align_weight
        self.mask_missing, self.pooling = mask_missing, pooling
        self.dtype = dtype
        linear = lambda i, o: nnx.Linear(i, o, dtype=dtype, param_dtype=jnp.float32, rngs=rngs)  # noqa: E731
        per_joint, per_frame = input_channels(inputs)
        frame_channels = NUM_JOINTS * per_joint + per_frame
        if encoder == "patch":
            self.pose_embed = linear(patch * frame_channels, dim)
        else:
            conv = lambda i, o, k, s: nnx.Conv(i, o, (k,), strides=(s,), dtype=dtype, param_dtype=jnp.float32, rngs=rngs)  # noqa: E731
            self.pose_stem = conv(frame_channels, dim, kernel, 1)
            self.pose_norm = nnx.LayerNorm(dim, dtype=dtype, param_dtype=jnp.float32, rngs=rngs)
            self.pose_embed = conv(dim, dim, patch, patch)
        self.joint_embed = linear(input_channels(region_inputs(inputs))[0], dim)
        self.joint_position = nnx.Param(0.02 * jax.random.normal(rngs.params(), (NUM_JOINTS, dim)))
        self.region_embedding = nnx.Param(0.02 * jax.random.normal(rngs.params(), (NUM_REGIONS, dim)))
        self.fusion = nnx.List(
            [Block(dim, num_heads, mlp_ratio, dropout, 2 * i, dtype=dtype, rngs=rngs) for i in range(depth)]
        )
        self.temporal = nnx.List(
            [Block(dim, num_heads, mlp_ratio, dropout, 2 * i + 1, dtype=dtype, rngs=rngs) for i in range(depth)]
        )
        self.token_dropout = ExampleDropout(dropout, 4 * depth + 1)
        self.norm = nnx.LayerNorm(dim, dtype=dtype, param_dtype=jnp.float32, rngs=rngs)
        # `gait_features`: how many the head reads (len(base.gait.CLINICAL_FEATURE_NAMES)), 0 = none
        self.gait, self.head, self.gait_head = classifier_heads(
            dim * (3 if pooling == "stats" else 1), num_classes, dim, dropout, 4 * depth + 2,
            gait_features=gait_features, gait_fusion=gait_fusion, dtype=dtype, rngs=rngs,
        )

    def tokens(self, pose: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Pose tokens [B, T', D] and region tokens [B, T', R, D]."""
        batch, frames = pose.shape[:2]
        if frames % self.patch:
            raise ValueError(f"window of {frames} frames is not a multiple of model.patch={self.patch}")
        num_patches = frames // self.patch
        pose = pose.astype(jnp.float32)
        frame = model_inputs(pose, self.inputs).astype(self.dtype)  # [B, T, C]
        time_codes = jnp.asarray(sinusoidal_positions(num_patches, self.dim), self.dtype)
        if self.encoder == "patch":
            pose_tokens = self.pose_embed(frame.reshape(batch, num_patches, -1))
        else:  # a temporal convolution sees the motion around each frame before patching
            pose_tokens = self.pose_embed(self.pose_norm(jax.nn.gelu(self.pose_stem(frame))))
        pose_tokens = pose_tokens + time_codes
        # A region token is the mean over its joints and the patch's frames of the embedded joint
        # features plus each joint's position code. The embedding is affine and the pooling weights
        # sum to 1, so pooling the features first is the same sum in another order, on
        # [B, T', R, F] instead of [B, T, J, D]: 14x fewer rows for the largest tensor of the step.
        per_joint = joint_inputs(pose, region_inputs(self.inputs)).astype(self.dtype)  # [B, T, J, F]
        patched = per_joint.reshape(batch, num_patches, self.patch, NUM_JOINTS, per_joint.shape[-1])
        membership = region_membership()
        pool = jnp.asarray(membership / membership.sum(1, keepdims=True), self.dtype)  # [R, J]
        pooled = jnp.einsum("rj,btpjf->btrf", pool / self.patch, patched)  # [B, T', R, F]
        positions = pool @ self.joint_position[...].astype(self.dtype)  # [R, D]
        regions = self.joint_embed(pooled) + positions
        regions = regions + self.region_embedding[...].astype(self.dtype) + time_codes[:, None, :]
        return pose_tokens, regions

    def pool(self, x: jax.Array, weight: jax.Array | None) -> jax.Array:
        """[B, T', D] -> the head's input: the mean over the present patches, or with pooling 'stats'
        their mean, spread and drift (`layers.pool_time`), what lifted the whole-clip CNN."""
        if self.pooling == "mean":
            return mean_over_time(x, weight, axis=1)
        present = jnp.ones(x.shape[:2], bool) if weight is None else weight > 0
        return pool_time(x, self.pooling, present)

    def __call__(
        self, pose: jax.Array, prior: jax.Array, *, features: jax.Array | None = None, dropout_keys: jax.Array | None = None
    ) -> ModelOutput:
        x, regions = self.tokens(pose)
        batch, num_patches = x.shape[:2]
        x = self.token_dropout(x, dropout_keys)
        context = regions.reshape(batch, num_patches * NUM_REGIONS, self.dim)
        bias, time_bias, weight = None, None, None
        if self.mask_missing:  # whole clips padded with missing frames: no token of them is read
            weight = patch_presence(pose, self.patch)  # [B, T']
            time_bias = jnp.where(weight > 0, 0.0, MASKED)
            bias = jnp.repeat(time_bias, NUM_REGIONS, axis=1)
        if self.use_prior:
            log_prior = jnp.log(prior.astype(jnp.float32) + PRIOR_EPS)  # [B, R]
            prior_bias = jnp.tile(log_prior, (1, num_patches))  # keys are ordered (time, region)
            bias = prior_bias if bias is None else prior_bias + bias
        region_mass = []
        for fusion, temporal in zip(self.fusion, self.temporal):
            if self.cross_attention:
                x, weights = fusion(x, context, bias, dropout_keys=dropout_keys, return_weights=True)
                per_key = weights.mean(axis=1).reshape(batch, num_patches, num_patches, NUM_REGIONS)
                region_mass.append(per_key.sum(axis=2))  # [B, T'(query), R]
            else:
                x, _ = fusion(x, bias=time_bias, dropout_keys=dropout_keys)
            x, _ = temporal(x, bias=time_bias, dropout_keys=dropout_keys)
        logits, streams = classify(
            self.pool(self.norm(x), weight), features, dropout_keys, head=self.head, encoder=self.gait, gait_head=self.gait_head
        )
        if not region_mass:
            return ModelOutput(logits, None, jnp.zeros((), jnp.float32), streams)
        attention = jnp.stack(region_mass).mean(axis=0).transpose(0, 2, 1)  # [B, R, T']
        aux_loss = jnp.zeros((), jnp.float32)
        if self.align_weight:
            mass = mean_over_time(attention, weight, axis=-1)  # [B, R], over the present patches
            target = prior.astype(jnp.float32)
            kl = jnp.sum(target * (jnp.log(target + PRIOR_EPS) - jnp.log(mass + PRIOR_EPS)), axis=-1)
            aux_loss = self.align_weight * kl.mean()
        return ModelOutput(logits, attention, aux_loss, streams)


"""ViT + PhaseMix, carried from the author's video code to keypoints.

The walk is cut into steps at the widest-stride frames (asd_jax/models/phase.py); each step is
resampled to `segment` frames; each first-phase step is fused with the following second-phase
step side by side (the reference put the two steps' frames side by side in one image; here their
features are concatenated). The fused sequence becomes tokens for a transformer.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from asd_jax.base.architecture import MASKED, input_channels, sinusoidal_positions
from asd_jax.base.skeleton import NUM_JOINTS
from asd_jax.models.inputs import model_inputs
from asd_jax.models.layers import Block
from asd_jax.models.output import ModelOutput
from asd_jax.models.phase import resample_segment, step_boundaries


def phasemix_sequence(features: jax.Array, pose: jax.Array, *, max_steps: int, segment: int) -> tuple[jax.Array, jax.Array]:
    """One clip: [T, C] features -> fused tokens [pairs * segment, 2 * C] and their mask."""
    boundaries, valid = step_boundaries(pose, max_steps)
    steps = jax.vmap(lambda a, b: resample_segment(features, a, b, segment))(boundaries[:-1], boundaries[1:])
    steps = steps.reshape(max_steps, segment, -1)
    pairs = max_steps // 2
    fused = jnp.concatenate([steps[0 : 2 * pairs : 2], steps[1 : 2 * pairs : 2]], axis=-1)  # [P, L, 2JF]
    pair_valid = valid[0 : 2 * pairs : 2] & valid[1 : 2 * pairs : 2]
    pair_valid = pair_valid.at[0].set(True)  # a window shorter than two steps still gives one token group
    return fused.reshape(pairs * segment, -1), jnp.repeat(pair_valid, segment)


class ViTPhaseMix(nnx.Module):
    def __init__(self, *, num_classes: int, dim: int, num_heads: int, depth: int, mlp_ratio: int, dropout: float,
                 max_steps: int, segment: int, inputs: str = "joints", dtype, rngs: nnx.Rngs):
        self.max_steps, self.segment, self.dim, self.dtype, self.inputs = max_steps, segment, dim, dtype, inputs
        per_joint, per_frame = input_channels(inputs)
        self.embed = nnx.Linear(2 * (NUM_JOINTS * per_joint + per_frame), dim, dtype=dtype, param_dtype=jnp.float32, rngs=rngs)
        self.blocks = nnx.List([Block(dim, num_heads, mlp_ratio, dropout, i, dtype=dtype, rngs=rngs) for i in range(depth)])
        self.norm = nnx.LayerNorm(dim, dtype=dtype, param_dtype=jnp.float32, rngs=rngs)
        self.head = nnx.Linear(dim, num_classes, dtype=dtype, param_dtype=jnp.float32, rngs=rngs)

    def __call__(self, pose: jax.Array, prior: jax.Array, *, dropout_keys: jax.Array | None = None) -> ModelOutput:
        del prior  # the baseline sees no clinical knowledge
        features = model_inputs(pose.astype(jnp.float32), self.inputs)
        tokens, valid = jax.vmap(lambda f, p: phasemix_sequence(f, p, max_steps=self.max_steps, segment=self.segment))(features, pose)
        x = self.embed(tokens.astype(self.dtype)) + jnp.asarray(sinusoidal_positions(tokens.shape[1], self.dim), self.dtype)
        bias = jnp.where(valid, 0.0, MASKED)
        for block in self.blocks:
            x, _ = block(x, bias=bias, dropout_keys=dropout_keys)
        weights = valid.astype(x.dtype)[..., None]
        pooled = (self.norm(x) * weights).sum(1) / weights.sum(1)
        return ModelOutput(self.head(pooled).astype(jnp.float32), None, jnp.zeros((), jnp.float32))


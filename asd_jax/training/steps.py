"""Pure per-shard train and eval steps.

Both run on one shard of the global batch and communicate only through collectives over the
`data` axis, so the same functions serve `jax.shard_map` over a mesh and `jax.pmap`
(asd_jax/parallel.py). Sharded results equal one device's, to rounding, because
- the loss is normalised by the GLOBAL example weight (a psum), not a per-shard mean, and
- dropout masks come from one key per example, derived from its global position in the batch.
"""

from __future__ import annotations

import functools
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import optax
from flax import nnx
from jax import lax

from asd_jax.base.architecture import DATA_AXIS
from asd_jax.models import ModelOutput, gait_inputs, reported_logits
from asd_jax.training import optim, threefry

threefry.unroll_on_cpu()  # the dropout keys' random bits, unrolled: same bits, faster on CPU


@flax.struct.dataclass
class TrainState:
    """Everything a step reads and writes; checkpointed as one pytree.

    `nonfinite_step` is -1 while every loss so far was finite, else the first step whose loss was
    not: that step and all later ones leave params untouched, so the last good weights survive and
    the host can stop the run with a message naming the step, without a sync every step.

    `ema_params` is the exponential moving average of `params` (equal to them when the decay is 0):
    the weights that are evaluated, checkpointed as the model and exported. Averaging the last few
    hundred steps makes the validation score, and so the selected checkpoint, far less noisy.
    """

    step: jax.Array
    params: Any
    ema_params: Any
    model_state: Any
    opt_state: Any
    rng: jax.Array
    nonfinite_step: jax.Array


@flax.struct.dataclass
class LossConfig:
    num_classes: int = flax.struct.field(pytree_node=False)
    label_smoothing: float = flax.struct.field(pytree_node=False)
    class_weights: jax.Array | None = None


def example_keys(step_key: jax.Array, local_batch: int) -> jax.Array:
    """One dropout key per example, indexed by its position in the GLOBAL batch."""
    offset = lax.axis_index(DATA_AXIS) * local_batch
    return jax.vmap(lambda i: jax.random.fold_in(step_key, i))(offset + jnp.arange(local_batch))


def train_step(
    state: TrainState,
    batch: dict[str, jax.Array],
    *,
    graphdef: nnx.GraphDef,
    optimizer: optax.GradientTransformation,
    loss_config: LossConfig,
    ema_decay: float = 0.0,
) -> tuple[TrainState, dict[str, jax.Array]]:
    """One optimiser step on the local shard; gradients averaged over the `data` axis."""
    num_shards = lax.axis_size(DATA_AXIS)
    labels = batch["label"]
    keys = example_keys(jax.random.fold_in(state.rng, state.step), labels.shape[0])
    targets = loss_targets(batch)
    weight = sum(batch["valid"] * share * class_weight(loss_config, target) for target, share in targets)
    global_weight = jnp.maximum(lax.psum(weight.sum(), DATA_AXIS), 1e-9)

    def local_objective(variables):
        params, model_state = variables
        model = nnx.merge(graphdef, params, model_state)
        out = model(batch["pose"], batch["prior"], **gait_inputs(batch), dropout_keys=keys)
        loss_sum = weighted_loss_sum(out, targets, batch["valid"], loss_config)
        # pmean of this over shards is the global objective: sum(w*l)/sum(w) + mean aux loss.
        objective = loss_sum * num_shards / global_weight + out.aux_loss
        _, _, new_model_state = nnx.split(model, nnx.Param, ...)
        return objective, (out, new_model_state)

    # model_state (e.g. BatchNorm statistics) must be traced like the params for the model to
    # update it inside the gradient; its own gradient is not used.
    (objective, (out, new_model_state)), (grads, _) = jax.value_and_grad(local_objective, has_aux=True)(
        (state.params, state.model_state)
    )
    grads = lax.pmean(grads, DATA_AXIS)
    loss = lax.pmean(objective, DATA_AXIS)
    new_model_state = lax.pmean(new_model_state, DATA_AXIS)
    updates, new_opt_state = optimizer.update(grads, state.opt_state, state.params)
    new_params = optax.apply_updates(state.params, updates)

    finite = jnp.isfinite(loss) & (state.nonfinite_step < 0)
    keep = functools.partial(jax.tree.map, lambda new, old: jnp.where(finite, new, old))
    new_state = state.replace(
        step=state.step + 1,
        params=keep(new_params, state.params),
        ema_params=keep(ema_update(state.ema_params, new_params, state.step, ema_decay), state.ema_params),
        model_state=keep(new_model_state, state.model_state),
        opt_state=keep(new_opt_state, state.opt_state),
        nonfinite_step=jnp.where(
            jnp.isfinite(loss) | (state.nonfinite_step >= 0), state.nonfinite_step, state.step
        ),
    )
    metrics = {
        "loss": loss,
        "aux_loss": lax.pmean(out.aux_loss, DATA_AXIS),
        "train_accuracy": global_accuracy(out.logits, labels, batch["valid"]),
        "grad_norm": optax.tree.norm(grads),
    }
    return new_state, metrics


def global_accuracy(logits: jax.Array, labels: jax.Array, valid: jax.Array) -> jax.Array:
    """The share of the GLOBAL batch's valid examples whose argmax is their label."""
    correct = ((logits.argmax(-1) == labels) * valid).sum()
    return lax.psum(correct, DATA_AXIS) / lax.psum(valid.sum(), DATA_AXIS)


def loss_targets(batch: dict[str, jax.Array]) -> list[tuple[jax.Array, jax.Array | float]]:
    """(labels, share of the loss) pairs: the batch's labels in full, or with mixup
    (`transforms.mix_examples`) each example's own label and its partner's by their shares."""
    if "mix_weight" not in batch:
        return [(batch["label"], 1.0)]
    return [(batch["label"], batch["mix_weight"]), (batch["mix_label"], 1.0 - batch["mix_weight"])]


def class_weight(loss_config: LossConfig, labels: jax.Array) -> jax.Array | float:
    return 1.0 if loss_config.class_weights is None else loss_config.class_weights[labels]


def weighted_loss_sum(
    out: ModelOutput, targets: list[tuple[jax.Array, jax.Array | float]], valid: jax.Array, loss_config: LossConfig
) -> jax.Array:
    """The sum of the weighted cross-entropies, against every target by its share, of the logits and
    of each input stream's own logits (`ModelOutput.stream_logits`: each stream must diagnose on its
    own too)."""
    loss_sum = jnp.zeros((), jnp.float32)
    for labels, share in targets:
        loss_of = functools.partial(
            optim.classification_loss,
            labels=labels,
            valid=valid * share,
            num_classes=loss_config.num_classes,
            label_smoothing=loss_config.label_smoothing,
            class_weights=loss_config.class_weights,
        )
        for logits in (out.logits, *out.stream_logits):
            loss_sum = loss_sum + loss_of(logits)[0]
    return loss_sum


def ema_update(ema: Any, params: Any, step: jax.Array, decay: float) -> Any:
    """One step of the moving average; its decay ramps up as (1 + step) / (10 + step) so the
    average does not remember the random initialisation (decay 0: the params themselves)."""
    if decay == 0.0:
        return params
    rate = jnp.minimum(decay, (1.0 + step) / (10.0 + step))
    return jax.tree.map(lambda e, p: rate * e + (1.0 - rate) * p, ema, params)


def eval_step(
    state: TrainState, batch: dict[str, jax.Array], *, graphdef: nnx.GraphDef
) -> dict[str, jax.Array]:
    """Forward pass without dropout; per-window logits of the reported classes (`reported_logits`),
    sharded like the batch, and for a model whose logits are the sum of its input streams' each
    stream's own logits over the training classes.

    The batch's `clip_index` and `valid` come back beside the logits so that gathered outputs
    of all processes stay aligned with the clips they belong to.
    """
    model = nnx.merge(graphdef, state.ema_params, state.model_state)
    out = model(batch["pose"], batch["prior"], **gait_inputs(batch))
    outputs = {
        "logits": reported_logits(model, out.logits.astype(jnp.float32)),
        "clip_index": batch["clip_index"],
        "valid": batch["valid"],
    }
    if out.attention is not None:
        outputs["attention"] = out.attention.astype(jnp.float32)
    if out.stream_logits:  # [B, STREAMS, training classes]: what asd_jax.evaluation.head_weights reweighs
        outputs["stream_logits"] = jnp.stack(out.stream_logits, axis=1).astype(jnp.float32)
    return outputs

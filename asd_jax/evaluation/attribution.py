"""Attributions that the clinical prior does not write: what in the walk drives a prediction.

- `occlusion`: hide a region's joints over a span of the window, as the pipeline hides a missing
  joint (coordinates and score 0), and measure the drop in the log-probability of the class
  (region x time, for every model; a model that also reads the clip's gait features keeps them).
- `feature_occlusion`: for a model that reads the clip's clinical gait features, hide groups of
  them as the model reads a feature it could not measure (NaN: the training patients' median) and
  measure the same drop; `stream_occlusion` hides the whole pose or every feature, which says how
  much of a diagnosis each stream carries.
- `integrated_gradients`: per joint and frame, the path integral of the gradient of that
  log-probability from a neutral, still standing pose (base.skeleton.neutral_pose; scores kept,
  so which joints are seen does not change along the path and the model is smooth on it; an
  all-zero baseline would not do: segment angles jump there); completeness: the attributions sum
  to f(input) - f(baseline).
- `grouped_permutation`: for the `features` baseline, shuffle a region's features jointly across
  clips and measure the drop in the log-probability of the true class.
- Sanity checks (Adebayo et al. 2018): the same attributions of a re-initialised model must differ
  (`rank_agreement` near 0); an untrained model's agreement with the raters is the chance level.
All JAX functions are jitted and batched over windows.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from scipy.stats import spearmanr

from asd_jax.base.skeleton import NUM_JOINTS, NUM_REGIONS, neutral_pose, region_membership
from asd_jax.models import reported_logits

# (pose [B, T, 17, 3], prior [B, 5], gait features [B, F]) -> logits [B, C]; F = 0 for a model
# that reads no gait features, so every model has one signature and one compiled shape per batch.
Apply = Callable[[jax.Array, jax.Array, jax.Array], jax.Array]


def no_features(batch: int) -> np.ndarray:
    """The gait-feature input [batch, 0] of a model that reads none."""
    return np.zeros((batch, 0), np.float32)


def model_apply(model: nnx.Module) -> Apply:
    """A jitted, dropout-free forward pass of an NNX model: (pose, prior, features) -> logits of
    the reported classes."""
    graphdef, state = nnx.split(model)

    def apply(pose: jax.Array, prior: jax.Array, features: jax.Array) -> jax.Array:
        module = nnx.merge(graphdef, state)
        gait = {"features": features} if features.shape[-1] else {}
        return reported_logits(module, module(pose, prior, **gait).logits)

    return jax.jit(apply)


def stream_apply(model: nnx.Module) -> Callable[[jax.Array, jax.Array, jax.Array], jax.Array] | None:
    """A jitted, dropout-free forward pass that keeps each input stream apart: (pose, prior,
    features) -> [B, STREAMS, C], the reported logits of the pose head and of the gait-feature
    head. Only for a model whose logits are the sum of those heads' (`model.gait_fusion='sum'`,
    each head trained to diagnose on its own), so each stream's softmax is its own diagnosis,
    with nothing hidden and no baseline; None for every other model."""
    if getattr(model, "gait_head", None) is None:
        return None
    graphdef, state = nnx.split(model)

    def apply(pose: jax.Array, prior: jax.Array, features: jax.Array) -> jax.Array:
        module = nnx.merge(graphdef, state)
        streams = module(pose, prior, features=features).stream_logits
        return jnp.stack([reported_logits(module, logits) for logits in streams], axis=1)

    return jax.jit(apply)


def occlusion_masks(frames: int, bins: int) -> np.ndarray:
    """[regions * bins, frames, joints] 1 = kept, 0 = hidden: each region over each time bin."""
    membership = region_membership() > 0
    edges = np.linspace(0, frames, bins + 1).round().astype(int)
    masks = np.ones((NUM_REGIONS, bins, frames, NUM_JOINTS), np.float32)
    for r in range(NUM_REGIONS):
        for k in range(bins):
            masks[r, k, edges[k] : edges[k + 1], membership[r]] = 0.0
    return masks.reshape(NUM_REGIONS * bins, frames, NUM_JOINTS)


def _target_log_prob(apply: Apply, pose: jax.Array, prior: jax.Array, features: jax.Array, target: jax.Array) -> jax.Array:
    log_probs = jax.nn.log_softmax(apply(pose, prior, features).astype(jnp.float32))
    return jnp.take_along_axis(log_probs, target[:, None], axis=1)[:, 0]


@functools.partial(jax.jit, static_argnames=("apply", "bins"))
def occlusion(
    apply: Apply, pose: jax.Array, prior: jax.Array, features: jax.Array, target: jax.Array, *, bins: int = 8
) -> jax.Array:
    """[B, regions, bins]: log p(target) of the window minus that with the region hidden over the bin."""
    masks = jnp.asarray(occlusion_masks(pose.shape[1], bins))
    full = _target_log_prob(apply, pose, prior, features, target)
    hidden = jax.lax.map(lambda mask: _target_log_prob(apply, pose * mask[None, :, :, None], prior, features, target), masks)
    return (full[None] - hidden).T.reshape(pose.shape[0], NUM_REGIONS, bins)


def hide_features(features: jax.Array, hidden: jax.Array) -> jax.Array:
    """`features` [B, F] with the columns where `hidden` [F] is true unmeasured (NaN), which the
    model's encoder reads as the training patients' median (models.layers.GaitFeatureEncoder)."""
    return jnp.where(hidden[None], jnp.nan, features)


@functools.partial(jax.jit, static_argnames=("apply",))
def feature_occlusion(
    apply: Apply, pose: jax.Array, prior: jax.Array, features: jax.Array, target: jax.Array, groups: jax.Array
) -> jax.Array:
    """[B, G]: log p(target) minus that with group g's gait features hidden (`groups` [G, F] true
    for a group's columns); the pose is kept."""
    full = _target_log_prob(apply, pose, prior, features, target)
    hidden = jax.lax.map(lambda group: _target_log_prob(apply, pose, prior, hide_features(features, group), target), groups)
    return (full[None] - hidden).T


STREAMS = ("pose", "gait_features")


@functools.partial(jax.jit, static_argnames=("apply",))
def stream_occlusion(apply: Apply, pose: jax.Array, prior: jax.Array, features: jax.Array, target: jax.Array) -> jax.Array:
    """[B, 2] (STREAMS): log p(target) minus that with every joint of every frame hidden (the
    features kept), and minus that with every gait feature hidden (the pose kept)."""
    full = _target_log_prob(apply, pose, prior, features, target)
    without_pose = _target_log_prob(apply, jnp.zeros_like(pose), prior, features, target)
    without_features = _target_log_prob(apply, pose, prior, hide_features(features, jnp.ones(features.shape[-1], bool)), target)
    return jnp.stack([full - without_pose, full - without_features], axis=-1)


@functools.partial(jax.jit, static_argnames=("apply", "steps"))
def integrated_gradients(
    apply: Apply, pose: jax.Array, prior: jax.Array, features: jax.Array, target: jax.Array, *, steps: int = 32
) -> tuple[jax.Array, jax.Array]:
    """([B, T, J] attributions, [B] f(input) - f(baseline)); midpoint rule over `steps`; the
    gait features, if any, stay as measured along the path."""
    xy = pose[..., :2]
    baseline = jnp.broadcast_to(jnp.asarray(neutral_pose()), xy.shape)

    def log_prob(path_xy: jax.Array) -> jax.Array:
        return _target_log_prob(apply, pose.at[..., :2].set(path_xy), prior, features, target)

    alphas = (jnp.arange(steps, dtype=jnp.float32) + 0.5) / steps
    grads = jax.lax.map(lambda a: jax.grad(lambda p: log_prob(p).sum())(baseline + a * (xy - baseline)), alphas)
    attributions = ((xy - baseline) * grads.mean(0)).sum(-1)
    return attributions, log_prob(xy) - log_prob(baseline)


def region_scores(joint_attributions: np.ndarray) -> np.ndarray:
    """[..., J] -> [..., regions]: the summed attribution of each region's joints."""
    return joint_attributions @ region_membership().T


def permutation_drops(
    log_prob: Callable[[np.ndarray], np.ndarray], features: np.ndarray, labels: np.ndarray, groups: dict[str, list[int]],
    *, repeats: int = 5, seed: int = 0,
) -> dict[str, np.ndarray]:
    """Per row, the drop in log p(true class) when a group's columns are shuffled jointly across
    all rows (mean over `repeats` shuffles); `log_prob(features)` -> [N, classes] log-probabilities.
    Averaging the rows of one class gives that class's importance with values drawn from every class."""
    rng = np.random.default_rng(seed)
    rows = np.arange(len(labels))
    base = log_prob(features)[rows, labels]
    drops = {}
    for name, columns in groups.items():
        losses = np.zeros(len(labels))
        for _ in range(repeats if columns else 0):
            shuffled = features.copy()
            shuffled[:, columns] = features[rng.permutation(len(features))][:, columns]
            losses += (base - log_prob(shuffled)[rows, labels]) / repeats
        drops[name] = losses
    return drops


def grouped_permutation(
    log_prob: Callable[[np.ndarray], np.ndarray], features: np.ndarray, labels: np.ndarray, groups: dict[str, list[int]],
    *, repeats: int = 5, seed: int = 0,
) -> dict[str, float]:
    """Mean drop in log p(true class) over all rows when a group's columns are shuffled jointly."""
    return {name: float(d.mean()) for name, d in permutation_drops(log_prob, features, labels, groups, repeats=repeats, seed=seed).items()}


def rank_agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two attribution maps (flattened); NaN if either is constant."""
    a, b = np.ravel(a), np.ravel(b)
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(spearmanr(a, b).statistic)


RANDOMISATION_THRESHOLD = 0.5  # rank correlation above which attributions barely depend on the weights


def randomisation_check(trained: np.ndarray, reinitialised: np.ndarray) -> dict[str, float | bool]:
    """Model-randomisation sanity check: attributions [N, ...] of N inputs by the trained model and
    by the same architecture with fresh weights, rank-correlated input by input and averaged.
    Explanations that survive re-initialisation describe the architecture or the input, not what
    was learned."""
    rhos = [rank_agreement(a, b) for a, b in zip(np.asarray(trained), np.asarray(reinitialised), strict=True)]
    rho = float(np.nanmean(rhos)) if np.isfinite(rhos).any() else float("nan")
    return {"rank_correlation": round(rho, 4), "passed": bool(np.isfinite(rho) and rho < RANDOMISATION_THRESHOLD)}


def agreement_with_raters(region_attribution: np.ndarray, prior: np.ndarray) -> dict[str, float]:
    """Rank correlation of a clip's region attribution with its raters' prior, and whether the top
    region matches (NaN when the prior is flat: nobody marked anything)."""
    if np.ptp(prior) == 0:
        return {"spearman": float("nan"), "top_region_match": float("nan")}
    return {
        "spearman": rank_agreement(region_attribution, prior),
        "top_region_match": float(np.argmax(region_attribution) == np.argmax(prior)),
    }

"""The crossattn model: shapes, attention maps, prior bias, per-example dropout, overfitting."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from asd_jax.models import build_model
from asd_jax.training import optim
from configs.crossattn import get_config


def tiny_config(**model):
    config = get_config("smoke")
    for key, value in model.items():
        setattr(config.model, key, value)
    return config


def inputs(batch=4, frames=32, seed=0):
    rng = np.random.default_rng(seed)
    pose = rng.normal(size=(batch, frames, 17, 3)).astype(np.float32)
    pose[..., 2] = rng.uniform(0, 1, size=(batch, frames, 17))
    return jnp.asarray(pose), jnp.asarray(rng.dirichlet(np.ones(5), size=batch).astype(np.float32))


@pytest.mark.parametrize(
    "variant",
    [{}, {"use_prior": False}, {"cross_attention": False}, {"align_weight": 0.0}],
    ids=["default", "no_prior", "no_cross_attention", "no_alignment"],
)
def test_shapes_and_attention_maps(variant):
    config = tiny_config(**variant)
    model = build_model(config, 3, nnx.Rngs(0))
    pose, prior = inputs()
    out = model(pose, prior)
    assert out.logits.shape == (4, 3) and out.logits.dtype == jnp.float32
    if variant.get("cross_attention") is False:
        assert out.attention is None and float(out.aux_loss) == 0.0
        return
    assert out.attention.shape == (4, 5, 32 // config.model.patch)
    np.testing.assert_allclose(out.attention.sum(axis=1), 1.0, atol=1e-5)
    assert (float(out.aux_loss) > 0) == (config.model.align_weight > 0)


def test_bfloat16_compute_keeps_float32_params():
    config = tiny_config()
    config.train.compute_dtype = "bfloat16"
    model = build_model(config, 3, nnx.Rngs(0))
    out = model(*inputs())
    assert out.logits.dtype == jnp.float32 and np.isfinite(np.asarray(out.logits)).all()
    params = nnx.state(model, nnx.Param)
    assert {leaf.dtype for leaf in jax.tree.leaves(params)} == {jnp.dtype(jnp.float32)}
    exact = build_model(tiny_config(), 3, nnx.Rngs(0))(*inputs()).logits  # same weights, float32 arithmetic
    gap = float(jnp.abs(out.logits - exact).max())
    assert 1e-5 < gap < 0.1  # bfloat16 really computes (a dtype that is ignored would give 0)


def test_a_peaked_prior_moves_attention_to_its_region():
    model = build_model(tiny_config(), 3, nnx.Rngs(0))
    pose, _ = inputs()
    head_prior = jnp.tile(jnp.asarray([[0.96, 0.01, 0.01, 0.01, 0.01]]), (4, 1))
    foot_prior = jnp.tile(jnp.asarray([[0.01, 0.01, 0.01, 0.01, 0.96]]), (4, 1))
    head, foot = model(pose, head_prior).attention.mean(-1), model(pose, foot_prior).attention.mean(-1)
    assert (head[:, 0] > 0.5).all() and (foot[:, 4] > 0.5).all()


def test_dropout_per_example_does_not_depend_on_the_batch_split():
    model = build_model(tiny_config(dropout=0.3), 3, nnx.Rngs(0))
    pose, prior = inputs(batch=6)
    keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.PRNGKey(5), i))(jnp.arange(6))
    whole = model(pose, prior, dropout_keys=keys).logits
    parts = jnp.concatenate(
        [model(pose[:2], prior[:2], dropout_keys=keys[:2]).logits, model(pose[2:], prior[2:], dropout_keys=keys[2:]).logits]
    )
    np.testing.assert_allclose(whole, parts, atol=1e-5)
    assert not np.allclose(whole, model(pose, prior).logits)  # dropout did something
    np.testing.assert_array_equal(model(pose, prior).logits, model(pose, prior).logits)


def test_window_not_a_multiple_of_the_patch_is_an_error():
    model = build_model(tiny_config(), 3, nnx.Rngs(0))
    with pytest.raises(ValueError, match="not a multiple of model.patch=4"):
        model(*inputs(frames=30))


def test_overfits_one_small_batch():
    config = tiny_config(dropout=0.0, align_weight=0.0)
    config.optim.learning_rate = 3e-3
    config.optim.label_smoothing = 0.0
    config.optim.warmup_steps = 10
    model = build_model(config, 3, nnx.Rngs(0))
    pose, prior = inputs(batch=8, seed=1)
    labels = jnp.asarray([0, 1, 2, 0, 1, 2, 0, 1])
    optimizer = optim.make_optimizer(config.optim, 300)
    graphdef, params = nnx.split(model, nnx.Param)
    opt_state = optimizer.init(params)

    @jax.jit
    def step(params, opt_state):
        def loss_fn(p):
            logits = nnx.merge(graphdef, p)(pose, prior).logits
            total, weight = optim.classification_loss(logits, labels, jnp.ones(8), num_classes=3, label_smoothing=0.0, class_weights=None)
            return total / weight

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    for _ in range(300):
        params, opt_state, loss = step(params, opt_state)
    assert float(loss) < 0.05


@pytest.mark.parametrize("pooling", ["mean", "stats"])
def test_whole_clip_crossattn_never_reads_the_padded_tail(pooling):
    """`model.mask_missing`: a clip padded with missing frames scores the same whatever fills the
    masked patches' tokens and however long the padding is (no attention, pooling or alignment
    reads them), while a model without the mask does read them."""
    from configs import crossattn_clip_diagnoses

    config = crossattn_clip_diagnoses.get_config("smoke")
    config.data.train_classes = ""
    config.model.pooling = pooling
    model = build_model(config, 3, nnx.Rngs(0))
    rng = np.random.default_rng(0)
    walk = np.concatenate([rng.normal(size=(2, 16, 17, 2)), np.full((2, 16, 17, 1), 0.9)], -1).astype(np.float32)
    prior = jnp.full((2, 5), 0.2)
    short = np.concatenate([walk, np.zeros((2, 16, 17, 3), np.float32)], 1)  # 32 frames, the last 16 missing
    longer = np.concatenate([walk, np.zeros((2, 32, 17, 3), np.float32)], 1)  # 48 frames, the last 32 missing
    junk = short.copy()
    junk[:, 16:, :, :2] = rng.normal(size=(2, 16, 17, 2))  # positions where nothing was seen (score 0)
    out = model(jnp.asarray(short), prior)
    np.testing.assert_allclose(np.asarray(model(jnp.asarray(longer), prior).logits), np.asarray(out.logits), atol=1e-5)
    np.testing.assert_allclose(np.asarray(model(jnp.asarray(junk), prior).logits), np.asarray(out.logits), atol=1e-5)
    model.mask_missing = False
    assert np.abs(np.asarray(model(jnp.asarray(longer), prior).logits) - np.asarray(out.logits)).max() > 1e-3


def test_stats_pooling_sees_drift_and_an_unknown_pooling_is_one_error():
    """`model.pooling='stats'`: the head reads mean, spread and drift of the tokens, 3x the width."""
    from asd_jax.base.errors import ConfigError

    config = tiny_config(pooling="stats")
    model = build_model(config, 3, nnx.Rngs(0))
    assert model.head.kernel.shape == (3 * config.model.dim, 3)
    with pytest.raises(ConfigError, match=r"model.pooling='max': expected one of \('mean', 'stats'\)"):
        build_model(tiny_config(pooling="max"), 3, nnx.Rngs(0))

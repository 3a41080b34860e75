"""The NaN guard: a non-finite loss leaves the weights untouched and names its step."""

from __future__ import annotations

import functools

import jax
import numpy as np
import pytest

from asd_jax.base.errors import NonFiniteLossError
from asd_jax.training import loop, optim, setup, steps
from asd_jax.training.parallel import make_data_parallel
from configs.crossattn import get_config


def smoke_step():
    """A one-device DataParallel of crossattn's smoke model, its unplaced state and a batch."""
    config = get_config("smoke")
    optimizer = optim.make_optimizer(config.optim, 10)
    graphdef, state = setup.create_state(config, 3, optimizer)
    dp = make_data_parallel(
        "shard_map",
        functools.partial(steps.train_step, graphdef=graphdef, optimizer=optimizer, loss_config=steps.LossConfig(3, 0.0, None)),
        functools.partial(steps.eval_step, graphdef=graphdef),
        jax.devices()[:1],
    )
    rng = np.random.default_rng(0)
    batch = {
        "pose": rng.normal(size=(4, config.data.window, 17, 3)).astype(np.float32),
        "prior": np.full((4, 5), 0.2, np.float32),
        "label": np.array([0, 1, 2, 0], np.int32),
        "valid": np.ones(4, np.float32),
    }
    return dp, state, batch


def test_a_step_takes_only_the_state_put_state_placed():
    """Placed, the state is its list of leaves; the tree itself, or a state of another structure,
    is refused in one line rather than failing deep inside jax."""
    dp, state, batch = smoke_step()
    with pytest.raises(ValueError, match="the steps take the state put_state placed"):
        dp.train_step(state, dp.put_batch(batch))
    placed = dp.put_state(state)
    assert isinstance(placed, list) and len(placed) == len(jax.tree.leaves(state))
    with pytest.raises(ValueError, match=r"another structure \(\d+ leaves\) than the one these steps were built for"):
        dp.put_state(state.params)


def test_nonfinite_loss_keeps_the_last_good_params_and_is_reported():
    dp, state, batch = smoke_step()
    state = dp.put_state(state)
    state, _ = dp.train_step(state, dp.put_batch(batch))
    good = jax.tree.map(np.asarray, dp.get_state(state).params)
    bad = dict(batch, pose=np.full_like(batch["pose"], np.nan))
    state, metrics = dp.train_step(state, dp.put_batch(bad))
    state, _ = dp.train_step(state, dp.put_batch(batch))  # later steps do not resume updating
    assert not np.isfinite(dp.scalar(metrics["loss"]))
    host = dp.get_state(state)
    assert int(host.nonfinite_step) == 1 and int(host.step) == 3
    jax.tree.map(np.testing.assert_array_equal, jax.tree.map(np.asarray, host.params), good)
    with pytest.raises(NonFiniteLossError, match="non-finite loss at step 2"):
        loop._check_finite(dp, state)


def test_mixup_loss_is_the_share_weighted_loss_of_both_labels():
    """A mixed example's loss is its share of the loss against its own label plus the rest against
    its partner's: share 1 is the plain step, share 0 the step on the partner's labels, and a half
    share their mean (the cross-entropy is linear in the target)."""
    dp, state, batch = smoke_step()
    state = jax.tree.map(np.asarray, state)  # on the host: each step donates the state it is given
    other = np.array([2, 0, 1, 1], np.int32)

    def loss(batch):
        _, metrics = dp.train_step(dp.put_state(state), dp.put_batch(batch))
        return dp.scalar(metrics["loss"])

    own, theirs = loss(batch), loss(dict(batch, label=other))
    mixed = lambda share: loss(dict(batch, mix_label=other, mix_weight=np.full(4, share, np.float32)))  # noqa: E731
    assert abs(own - theirs) > 1e-3
    np.testing.assert_allclose([mixed(1.0), mixed(0.0), mixed(0.5)], [own, theirs, (own + theirs) / 2], rtol=1e-5)


DROPOUT_BITS = """
import sys, jax, numpy as np
keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.PRNGKey(7), i))(np.arange(8))
masks = jax.jit(jax.vmap(lambda k: jax.random.bernoulli(k, 0.9, (24, 64))))(keys)
np.save(sys.argv[1], np.asarray(masks))
"""


def test_threefry_unrolled_on_cpu_draws_the_bits_of_the_rolled_loop(tmp_path):
    """steps.py installs JAX's unrolled Threefry lowering for CPU (training/threefry.py): no
    `while` loop left in a step's random draws, and the same masks as a process without it."""
    import subprocess
    import sys

    from asd_jax.training import threefry

    assert threefry.unroll_on_cpu()
    subprocess.run([sys.executable, "-c", DROPOUT_BITS, str(tmp_path / "rolled.npy")], check=True, env={"JAX_PLATFORMS": "cpu"})
    keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.PRNGKey(7), i))(np.arange(8))
    draw = jax.jit(jax.vmap(lambda k: jax.random.bernoulli(k, 0.9, (24, 64))))
    assert "while" not in draw.lower(keys).compile().as_text()
    np.testing.assert_array_equal(np.asarray(draw(keys)), np.load(tmp_path / "rolled.npy"))

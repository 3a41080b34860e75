"""Loss arithmetic, class weights and the schedule."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from asd_jax.training import optim
from configs.crossattn import get_config


def test_loss_matches_a_hand_computation_with_smoothing_weights_and_padding():
    logits = jnp.asarray([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [5.0, 5.0, 5.0]])
    labels = jnp.asarray([0, 1, 2])
    valid = jnp.asarray([1.0, 1.0, 0.0])  # the third row is padding
    weights = jnp.asarray([1.0, 2.0, 3.0])
    total, weight_sum = optim.classification_loss(logits, labels, valid, num_classes=3, label_smoothing=0.3, class_weights=weights)

    def cross_entropy(row, label):
        log_p = row - np.log(np.exp(row).sum())
        target = np.full(3, 0.1)
        target[label] += 0.7
        return -(target * log_p).sum()

    expected = 1.0 * cross_entropy(np.array([2.0, 0, 0]), 0) + 2.0 * cross_entropy(np.array([0, 1.0, 0]), 1)
    assert float(total) == pytest.approx(expected, rel=1e-6)
    assert float(weight_sum) == 3.0


def test_class_weights():
    counts = np.array([10, 30, 60])
    np.testing.assert_allclose(optim.class_weights("balanced", counts), 100 / (3 * counts), rtol=1e-6)
    np.testing.assert_allclose(optim.class_weights("1,2,0.5", counts), [1, 2, 0.5])
    assert optim.class_weights("", counts) is None
    with pytest.raises(ValueError, match="need 3 non-negative weights"):
        optim.class_weights("1,2", counts)


def test_schedule_warms_up_then_decays_to_zero():
    config = get_config().optim
    schedule = optim.learning_rate(config, 1000)
    assert float(schedule(0)) == 0.0
    assert float(schedule(config.warmup_steps)) == pytest.approx(config.learning_rate)
    assert float(schedule(1000)) == pytest.approx(0.0, abs=1e-9)

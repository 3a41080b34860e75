"""The pose-head weight of a model whose pose and gait-feature heads add up: the reweighed logits
and the rule that picks a weight on the validation patients (a run end to end:
tests/test_gait_stream.py)."""

from __future__ import annotations

import numpy as np

from asd_jax.evaluation.head_weights import POSE_WEIGHTS, choose, weighted_logits


def test_weighted_logits_are_the_pose_head_scaled_plus_the_feature_head_merged_into_reported_classes():
    streams = np.array([[[1.0, 2.0, 0.0, -1.0], [0.5, -0.5, 1.0, 2.0]]], np.float32)  # [1 window, pose + features, 4 classes]
    np.testing.assert_allclose(weighted_logits(streams, 1.0), [[1.5, 1.5, 1.0, 1.0]])
    np.testing.assert_allclose(weighted_logits(streams, 0.0), streams[:, 1])
    np.testing.assert_allclose(weighted_logits(streams, 0.5), [[1.0, 0.5, 1.0, 1.5]])
    # LCS and HipOA trained apart, reported as one: log(e^1 + e^1.5) for the merged class
    merged = weighted_logits(streams, 0.5, groups=(0, 1, 2, 2))
    np.testing.assert_allclose(merged, [[1.0, 0.5, np.log(np.exp(1.0) + np.exp(1.5))]], rtol=1e-6)


def test_the_choice_is_the_selection_score_then_the_lower_log_loss_then_the_larger_weight():
    assert POSE_WEIGHTS[0] == 0.0 and POSE_WEIGHTS[-1] == 1.0
    assert choose({0.0: (0.9, 0.1), 0.5: (1.0, 0.4), 1.0: (0.95, 0.2)}) == 0.5  # the score first
    assert choose({0.0: (1.0, 0.3), 0.5: (1.0, 0.2), 1.0: (1.0, 0.25)}) == 0.5  # tied: the log-loss
    assert choose({0.25: (1.0, 0.2), 0.75: (1.0, 0.2), 0.5: (0.8, 0.1)}) == 0.75  # tied twice: nearer the model as trained

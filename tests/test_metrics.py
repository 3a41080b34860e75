"""Metric arithmetic against hand-computed values, aggregation with fixed logits, bootstrap."""

from __future__ import annotations

import numpy as np
import pytest

from asd_jax.evaluation import aggregate, metrics


def test_three_class_metrics_by_hand():
    labels = np.array([0, 0, 1, 1, 2, 2])
    probs = np.array([[0.8, 0.1, 0.1], [0.4, 0.5, 0.1], [0.1, 0.8, 0.1], [0.2, 0.7, 0.1], [0.1, 0.1, 0.8], [0.6, 0.2, 0.2]])
    result = metrics.classification_metrics(labels, probs, ("a", "b", "c"))
    # predictions 0,1,1,1,2,0 -> confusion [[1,1,0],[0,2,0],[1,0,1]]
    assert result["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert result["accuracy"] == pytest.approx(4 / 6)
    assert result["balanced_accuracy"] == pytest.approx((0.5 + 1 + 0.5) / 3)
    f1 = [2 * 0.5 * 0.5 / 1.0, 2 * (2 / 3) * 1 / (2 / 3 + 1), 2 * 1 * 0.5 / 1.5]
    assert result["macro_f1"] == pytest.approx(np.mean(f1))
    assert result["per_class"]["a"] == {"sensitivity": 0.5, "specificity": 0.75, "support": 2}
    assert result["per_class"]["c"]["specificity"] == 1.0
    # macro one-vs-rest AUC: class a orders 7 of its 8 positive-negative pairs, b and c all 8
    assert result["auc"] == pytest.approx((7 / 8 + 1 + 1) / 3)
    # ECE: six singleton-ish bins; |accuracy - confidence| weighted by share.
    conf = probs.max(1)
    correct = probs.argmax(1) == labels
    bins = np.clip(np.digitize(conf, np.linspace(0, 1, 16)[1:-1]), 0, 14)
    expected = sum((bins == b).mean() * abs(correct[bins == b].mean() - conf[bins == b].mean()) for b in np.unique(bins))
    assert result["ece"] == pytest.approx(expected)


def test_binary_auc_and_missing_class_auc():
    labels = np.array([0, 0, 1, 1])
    probs = np.array([[0.9, 0.1], [0.3, 0.7], [0.35, 0.65], [0.2, 0.8]])
    assert metrics.auc(labels, probs) == pytest.approx(0.75)  # 3 of 4 positive-negative pairs ordered
    assert np.isnan(metrics.auc(np.array([0, 0]), probs[:2]))


def test_windows_to_clips_to_patients_with_fixed_logits():
    clip_ids = np.array(["c0", "c1", "c2"])
    labels = np.array([1, 1, 0])
    window_logits = np.array([[0.0, 2.0], [0.0, -1.0], [1.0, 0.0], [3.0, 0.0]])
    window_rows = np.array([0, 0, 1, 2])
    clips = aggregate.clips_from_windows(window_logits, window_rows, np.arange(3), clip_ids, labels)
    expected_c0 = np.exp([0.0, 0.5]) / np.exp([0.0, 0.5]).sum()  # mean logits [0, 0.5]
    np.testing.assert_allclose(clips.probs[0], expected_c0)
    patients = aggregate.patients_from_clips(clips, np.array(["p", "p", "q"]))
    np.testing.assert_allclose(patients.probs[0], (clips.probs[0] + clips.probs[1]) / 2)
    assert patients.ids.tolist() == ["p", "q"] and patients.labels.tolist() == [1, 0]
    with pytest.raises(ValueError, match="got no evaluation window, e.g. 'c2'"):
        aggregate.clips_from_windows(window_logits[:3], window_rows[:3], np.arange(3), clip_ids, labels)
    # A patient with clips of two classes is one unit per class; the others keep their plain id.
    two_labels = aggregate.Predictions(clip_ids, np.array([1, 0, 0]), clips.probs)
    mixed = aggregate.patients_from_clips(two_labels, np.array(["p", "p", "q"]), ("a", "b"))
    assert mixed.ids.tolist() == ["p|a", "p|b", "q"] and mixed.labels.tolist() == [0, 1, 0]
    np.testing.assert_allclose(mixed.probs, clips.probs[[1, 0, 2]])


def test_bootstrap_is_seeded_and_brackets_the_estimate():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 60)
    p = np.clip(labels * 0.3 + rng.uniform(0, 0.7, 60), 0, 1)
    probs = np.stack([1 - p, p], 1)
    accuracy = metrics.METRIC_FUNCTIONS["accuracy"]
    low, high = metrics.bootstrap_ci(labels, probs, accuracy, seed=3, num_samples=300)
    assert (low, high) == metrics.bootstrap_ci(labels, probs, accuracy, seed=3, num_samples=300)
    assert low <= accuracy(labels, probs) <= high and low < high
    grouped = metrics.bootstrap_ci(labels, probs, accuracy, groups=np.arange(60) // 6, seed=3, num_samples=300)
    assert grouped[0] <= accuracy(labels, probs) <= grouped[1]


def test_bootstrap_draws_every_class_and_never_collapses_to_certainty():
    """Stratified by class: no draw is skipped; with one patient in a class there is no CI at all."""
    labels = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2])
    probs = np.eye(3)[[0, 1, 0, 1, 1, 2, 2, 2, 0]]
    macro_f1 = metrics.METRIC_FUNCTIONS["macro_f1"]
    low, high = metrics.bootstrap_ci(labels, probs, macro_f1, num_samples=200)
    assert 0.0 < low < high < 1.0  # a real interval around an imperfect classifier
    two_patients = metrics.bootstrap_ci(np.array([0, 1]), np.eye(2), macro_f1, num_samples=50)
    assert np.isnan(two_patients).all()  # not [1.0, 1.0]


def test_small_test_sets_are_flagged_per_class():
    labels = np.array([0] * 6 + [1])
    warnings = metrics.small_sample_warnings(labels, np.arange(7), ("ASD", "DHS"))
    assert warnings == [f"DHS: 1 test patient(s), fewer than {metrics.MIN_PATIENTS_TO_TRUST}: its numbers are anecdotal; no confidence interval"]

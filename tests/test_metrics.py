"""Metric arithmetic against hand-computed values, aggregation with fixed logits, bootstrap."""

from __future__ import annotations

import itertools
import warnings

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
    assert result["count"] == 6


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
    assert clips.ids.tolist() == ["c0", "c1", "c2"]
    expected_c0 = np.exp([0.0, 0.5]) / np.exp([0.0, 0.5]).sum()  # mean logits [0, 0.5]
    np.testing.assert_allclose(clips.probs[0], expected_c0)
    patients = aggregate.patients_from_clips(clips, np.array(["p", "p", "q"]))
    np.testing.assert_allclose(patients.probs[0], (clips.probs[0] + clips.probs[1]) / 2)
    assert patients.ids.tolist() == ["p", "q"] and patients.labels.tolist() == [1, 0]
    assert patients.labels.dtype == np.int64  # class indices (confusion matrices, class_names[label]), not floats
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
    assert warnings == [
        f"DHS: 1 test patient(s), fewer than {metrics.MIN_PATIENTS_TO_TRUST}: its numbers are anecdotal; no confidence interval"
    ]


def test_calibration_bins_by_hand():
    """Four bins [0, .25) [.25, .5) [.5, .75) [.75, 1]: a confidence on an edge goes up, 1.0 goes in
    the last bin, and an empty bin is NaN without a warning (the reliability diagram skips it)."""
    labels = np.array([0, 1, 1, 2, 3])
    probs = np.array(
        [
            [0.24, 0.19, 0.19, 0.19, 0.19],  # 0.24, right -> bin 0
            [0.5, 0.2, 0.1, 0.1, 0.1],  # 0.5, wrong -> bin 2
            [0.1, 0.7, 0.1, 0.05, 0.05],  # 0.7, right -> bin 2
            [0.0, 0.0, 1.0, 0.0, 0.0],  # 1.0, right -> bin 3
            [0.8, 0.05, 0.05, 0.05, 0.05],  # 0.8, wrong -> bin 3
        ]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        counts, accuracy, confidence = metrics.calibration_bins(labels, probs, bins=4)
    assert counts.tolist() == [1, 0, 2, 2]
    np.testing.assert_allclose(accuracy, [1.0, np.nan, 0.5, 0.5])
    np.testing.assert_allclose(confidence, [0.24, np.nan, 0.6, 0.9])
    # ECE = 1/5 * |1 - .24| + 2/5 * |.5 - .6| + 2/5 * |.5 - .9|
    assert metrics.expected_calibration_error(labels, probs, bins=4) == pytest.approx(0.152 + 0.04 + 0.16)
    assert metrics.expected_calibration_error(np.array([0]), np.array([[0.3, 0.7]])) == pytest.approx(0.7)  # one wrong call


def test_a_class_missing_from_the_evaluation_set():
    """A validation fold may lack a class: it keeps its row and column, its sensitivity is NaN (left
    out of balanced accuracy), its F1 counts as 0 in the macro mean, AUC is NaN; all without warnings."""
    labels = np.array([0, 0, 1, 1])
    probs = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.1, 0.8, 0.1], [0.3, 0.6, 0.1]])  # predictions 0, 1, 1, 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = metrics.classification_metrics(labels, probs, ("a", "b", "c"))
    assert result["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [0, 0, 0]]
    assert result["per_class"]["a"] == {"sensitivity": 0.5, "specificity": 1.0, "support": 2}
    assert result["per_class"]["b"] == {"sensitivity": 1.0, "specificity": 0.5, "support": 2}  # tn = fp = 1
    assert np.isnan(result["per_class"]["c"]["sensitivity"])
    assert result["per_class"]["c"]["specificity"] == 1.0 and result["per_class"]["c"]["support"] == 0
    assert result["accuracy"] == 0.75
    assert result["balanced_accuracy"] == pytest.approx((0.5 + 1.0) / 2)
    assert result["macro_f1"] == pytest.approx((2 / 3 + 0.8 + 0.0) / 3)  # F1 of a: P 1, R 1/2; of b: P 2/3, R 1
    assert np.isnan(result["auc"]) and result["count"] == 4


def test_a_single_class_evaluation_set_has_no_specificity():
    """Every clip of class a, all predicted a: a has no negatives (specificity NaN), b no positives."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = metrics.classification_metrics(np.array([0, 0]), np.array([[0.9, 0.1], [0.8, 0.2]]), ("a", "b"))
    assert result["per_class"]["a"]["sensitivity"] == 1.0 and np.isnan(result["per_class"]["a"]["specificity"])
    assert np.isnan(result["per_class"]["b"]["sensitivity"]) and result["per_class"]["b"]["specificity"] == 1.0
    assert result["balanced_accuracy"] == 1.0 and result["macro_f1"] == 0.5 and np.isnan(result["auc"])


def test_bootstrap_draws_as_many_patients_of_each_class_as_there_are():
    """Seen through a metric that reports the draw: with three classes of 2, 3 and 4 patients every
    draw holds exactly 2, 3 and 4 rows of them, so the interval of that count has zero width."""
    labels = np.array([0, 0, 1, 1, 1, 2, 2, 2, 2])
    per_class = lambda y, p: float(100 * np.sum(y == 0) + 10 * np.sum(y == 1) + np.sum(y == 2))  # noqa: E731
    assert metrics.bootstrap_ci(labels, np.zeros((9, 3)), per_class, num_samples=50) == (234.0, 234.0)


def test_bootstrap_resamples_whole_patients():
    """Class 0: patient A with one clip, B with three; class 1: C and D with two each. A draw takes
    two class-0 patients (AA, AB or BB: 2, 4 or 6 clips; chances 1/4, 1/2, 1/4) and always 4 class-1
    clips, so the number of clips drawn is 6, 8 or 10 and its 95% interval is (6, 10). Resampling
    clips instead would always draw 8."""
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    groups = np.array(["A", "B", "B", "B", "C", "C", "D", "D"])
    clips_drawn = lambda y, p: float(len(y))  # noqa: E731
    assert metrics.bootstrap_ci(labels, np.zeros((8, 2)), clips_drawn, groups=groups, num_samples=400) == (6.0, 10.0)
    assert metrics.bootstrap_ci(labels, np.zeros((8, 2)), clips_drawn, num_samples=50) == (8.0, 8.0)


def test_bootstrap_interval_is_the_central_percentiles_of_the_finite_draws():
    """A metric that returns 0, 1, ..., 100 on successive draws: the 95% interval is the 2.5th and
    97.5th percentile of those values, (2.5, 97.5), and a 90% one (5, 95). A metric that is never
    finite has no interval."""
    labels, probs = np.array([0, 0, 1, 1]), np.zeros((4, 2))

    def counter() -> object:
        values = itertools.count()
        return lambda y, p: float(next(values))

    assert metrics.bootstrap_ci(labels, probs, counter(), num_samples=101) == pytest.approx((2.5, 97.5))
    assert metrics.bootstrap_ci(labels, probs, counter(), num_samples=101, level=0.9) == pytest.approx((5.0, 95.0))
    nan_every_other = lambda y, p, c=itertools.count(): float("nan") if next(c) % 2 else 0.0  # noqa: E731
    assert metrics.bootstrap_ci(labels, probs, nan_every_other, num_samples=20) == (0.0, 0.0)
    assert np.isnan(metrics.bootstrap_ci(labels, probs, lambda y, p: float("nan"), num_samples=5)).all()


def test_headline_with_ci_is_the_patient_bootstrap_of_each_headline_metric():
    rng = np.random.default_rng(1)
    labels = np.repeat([0, 1], 20)
    p = np.clip(labels * 0.3 + rng.uniform(0, 0.7, 40), 0, 1)
    probs, groups = np.stack([1 - p, p], 1), np.arange(40) // 2
    result = metrics.headline_with_ci(labels, probs, groups=groups, seed=5, num_samples=60)
    assert list(result) == list(metrics.HEADLINE)
    for name in metrics.HEADLINE:
        expected = metrics.bootstrap_ci(labels, probs, metrics.METRIC_FUNCTIONS[name], groups=groups, seed=5, num_samples=60)
        assert result[name] == list(expected), name
    perfect = metrics.headline_with_ci(labels, np.eye(2)[labels], groups=groups, num_samples=20)
    assert perfect == {name: [1.0, 1.0] for name in metrics.HEADLINE}


def test_small_sample_warning_thresholds():
    """Five patients are enough; two get a CI; one or none do not. Patients, not clips, are counted,
    and a class with no test patient at all (the last one here) is still named."""
    labels = np.array([0] * 6 + [1] * 3 + [2])
    groups = np.array(["a1", "a1", "a2", "a3", "a4", "a5", "d1", "d2", "d2", "l1"])
    lines = metrics.small_sample_warnings(labels, groups, ("ASD", "DHS", "LCS", "normal"))
    assert lines == [
        "DHS: 2 test patient(s), fewer than 5: its numbers are anecdotal",
        "LCS: 1 test patient(s), fewer than 5: its numbers are anecdotal; no confidence interval",
        "normal: 0 test patient(s), fewer than 5: its numbers are anecdotal; no confidence interval",
    ]
    with pytest.raises(ValueError, match="zip"):  # a label outside class_names is a bug upstream, not a silent drop
        metrics.small_sample_warnings(np.array([0, 1, 2]), np.arange(3), ("ASD", "DHS"))

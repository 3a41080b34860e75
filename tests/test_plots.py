"""Report and explanation figures: written, readable, and showing the numbers they claim to."""

from __future__ import annotations

import itertools
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from asd_jax.base.skeleton import NUM_JOINTS, REGION_NAMES
from asd_jax.evaluation import metrics, plots

CLASSES = ("ASD", "DHS", "LCS_HipOA")


@pytest.fixture
def figures(monkeypatch) -> list[plt.Figure]:
    """Every figure a plot function saves, drawn, so its artists can be inspected after saving."""
    drawn, original = [], plots.save

    def keep(fig: plt.Figure, path: Path) -> Path:
        fig.canvas.draw()
        drawn.append(fig)
        return original(fig, path)

    monkeypatch.setattr(plots, "save", keep)
    return drawn


def image_shape(path: Path) -> tuple[int, ...]:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return plt.imread(path).shape


def legend_texts(fig: plt.Figure) -> list[str]:
    return [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]


def predictions(num_classes: int, n: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % num_classes
    logits = rng.normal(size=(n, num_classes)) + 1.5 * np.eye(num_classes)[labels]
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    return labels, probs


def test_confusion_cells_show_counts_and_row_shares_and_labels_do_not_overlap(tmp_path, figures):
    labels, probs = predictions(3)
    preds = probs.argmax(-1)
    path = plots.confusion(labels, preds, CLASSES, tmp_path / "confusion.png", "patient level")
    assert len(image_shape(path)) == 3
    ax = figures[0].axes[0]
    counts = metrics.classification_metrics(labels, probs, CLASSES)["confusion_matrix"]
    cells = [t.get_text() for t in ax.texts]
    expected = [f"{counts[i][j]}\n{counts[i][j] / sum(counts[i]):.0%}" for i, j in itertools.product(range(3), range(3))]
    assert cells == expected
    boxes = [t.get_window_extent() for t in ax.get_xticklabels()]
    assert not any(a.overlaps(b) for a, b in itertools.combinations(boxes, 2))
    names = (*(f"class_{c}_long_name" for c in range(5)), "Spondylolisthesis")
    plots.confusion(np.arange(60) % 6, np.arange(60) % 6, names, tmp_path / "six.png", "six classes")
    assert figures[1].get_size_inches()[0] > figures[0].get_size_inches()[0]  # the figure grows with the classes
    assert figures[1].axes[0].get_xticklabels()[0].get_text() == "class_0_\nlong_name"
    for ticks in (figures[1].axes[0].get_xticklabels(), figures[1].axes[0].get_yticklabels()):
        boxes = [t.get_window_extent() for t in ticks]
        assert not any(a.overlaps(b) for a, b in itertools.combinations(boxes, 2))


def test_roc_has_plain_axes_one_curve_per_class_with_its_auc_and_the_chance_line(tmp_path, figures):
    labels, probs = predictions(3)
    image_shape(plots.roc_curves(labels, probs, CLASSES, tmp_path / "roc.png", "ROC"))
    ax = figures[0].axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("False positive rate", "True positive rate")
    expected = [f"{name} vs rest (AUC {roc_auc_score(labels == c, probs[:, c]):.3f})" for c, name in enumerate(CLASSES)]
    assert legend_texts(figures[0]) == ["chance", *expected]
    plots.roc_curves(labels[labels != 2], probs[labels != 2], CLASSES, tmp_path / "missing.png", "ROC")
    assert legend_texts(figures[1])[-1] == "LCS_HipOA: no curve (no test row)"


def test_reliability_shows_how_many_predictions_each_bin_holds(tmp_path, figures):
    labels, probs = predictions(3, n=50)
    plots.reliability(labels, probs, tmp_path / "reliability.png", "Reliability")
    curve, histogram = figures[0].axes
    heights = np.array([bar.get_height() for bar in histogram.patches])
    assert len(heights) == metrics.ECE_BINS and heights.sum() == 50
    assert heights[:5].tolist() == [0] * 5  # a 3-class prediction is never below 1/3 sure: empty bins stay visible
    confidence, accuracy = curve.get_lines()[1].get_data()
    gap = heights[heights > 0] / 50 * np.abs(accuracy - confidence)
    assert gap.sum() == pytest.approx(metrics.expected_calibration_error(labels, probs))  # the figure shows the ECE's bins


def test_calibration_bins_agree_with_the_ece_by_hand():
    probs = np.array([[0.9, 0.1], [0.75, 0.25], [0.3, 0.7], [0.45, 0.55]])
    labels = np.array([0, 1, 1, 1])
    counts, accuracy, _ = metrics.calibration_bins(labels, probs, bins=5)
    assert counts.tolist() == [0, 0, 1, 2, 1] and np.isnan(accuracy[0])
    # bins: {0.55} right, {0.7, 0.75} one right, {0.9} right
    expected = (abs(1 - 0.55) + 2 * abs(0.5 - 0.725) + abs(1 - 0.9)) / 4
    assert metrics.expected_calibration_error(labels, probs, bins=5) == pytest.approx(expected)


def walking_pose(frames: int = 40) -> np.ndarray:
    rng = np.random.default_rng(1)
    pose = np.zeros((frames, NUM_JOINTS, 3))
    pose[..., 0] = rng.normal(scale=0.3, size=(frames, NUM_JOINTS))
    pose[..., 1] = np.linspace(1.0, -3.0, NUM_JOINTS)[None]  # head on top: y up
    pose[..., 2] = 0.9
    return pose


def test_attribution_keyframes_share_one_symmetric_colour_bar(tmp_path, figures):
    attribution = np.random.default_rng(2).normal(size=(40, NUM_JOINTS)) * 0.1
    attribution[5, 3] = -2.0
    height, width, _ = image_shape(plots.attribution_keyframes(walking_pose(), attribution, tmp_path / "k.png", "clip", count=4))
    assert width > 2 * height
    fig = figures[0]
    panels, bars = fig.axes[:4], fig.axes[4:]
    assert len(panels) == 4 and len(bars) == 1
    assert bars[0].get_ylabel() == "attribution (Δ log-probability)"
    assert bars[0].get_ylim() == pytest.approx((-2.0, 2.0))


def test_region_time_heatmap_marks_each_foot_and_runs_in_seconds(tmp_path, figures):
    scores = np.random.default_rng(3).normal(size=(len(REGION_NAMES), 24))
    strikes = {"left": [0.4, 1.5], "right": [0.9, 2.0]}
    height, width, _ = image_shape(plots.region_time_heatmap(scores, 2.4, strikes, tmp_path / "h.png", "clip"))
    assert width > height
    ax = figures[0].axes[0]
    assert ax.get_xlim() == pytest.approx((0, 2.4))
    assert legend_texts(figures[0]) == ["left heel strike", "right heel strike"]
    low, high = ax.images[0].get_clim()
    assert low == pytest.approx(-high) and high == pytest.approx(np.abs(scores).max())
    assert sorted(line.get_xdata()[0] for line in ax.get_lines()) == [0.4, 0.9, 1.5, 2.0]


@pytest.mark.parametrize("prior", [None, np.full((3, 5), np.nan)])
def test_attribution_by_class_without_a_prior_draws_no_prior(tmp_path, figures, prior):
    attribution = np.array([[2.0, -1.0, 0.5, 0.5, 0.0], [0.0, 0.0, 0.0, 0.0, 1.0], [1, 1, 1, 1, 1.0]])
    image_shape(plots.attribution_by_class(attribution, CLASSES, tmp_path / "a.png", prior=prior))
    fig = figures[0]
    assert legend_texts(fig) == ["model attribution"]
    first = [bar.get_height() for bar in fig.axes[0].patches]
    assert first == pytest.approx([0.5, -0.25, 0.125, 0.125, 0.0])  # scaled to sum |value| = 1


def test_attribution_by_class_draws_a_known_prior_beside(tmp_path, figures):
    attribution = np.random.default_rng(4).normal(size=(3, 5))
    prior = np.tile([0.1, 0.1, 0.1, 0.6, 0.1], (3, 1))
    image_shape(plots.attribution_by_class(attribution, CLASSES, tmp_path / "a.png", prior=prior))
    assert legend_texts(figures[0]) == ["model attribution", "raters' prior"]
    assert [bar.get_height() for bar in figures[0].axes[1].patches][5:] == pytest.approx(prior[1])


def test_skeleton_figures_still_draw_through_the_shared_skeleton(tmp_path, figures):
    pose, weights = walking_pose(12), np.random.default_rng(5).random((12, NUM_JOINTS))
    image_shape(plots.skeleton_probabilities(pose, np.array([0.2, 0.7, 0.1]), CLASSES, tmp_path / "p.png", "clip", count=3))
    from PIL import Image

    gif = Image.open(plots.skeleton_gif(pose, weights, tmp_path / "clip.gif", 10.0, "clip"))
    assert gif.format == "GIF" and gif.n_frames == 12
    gif = Image.open(plots.skeleton_gif(pose, weights, tmp_path / "clip30.gif", 30.0, "clip"))  # every third frame, 3x as long
    assert (gif.n_frames, gif.info["duration"]) == (4, 100)

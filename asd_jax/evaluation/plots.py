"""Figures for reports and explanations (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib import animation  # noqa: E402
from sklearn.calibration import calibration_curve  # noqa: E402
from sklearn.metrics import ConfusionMatrixDisplay, RocCurveDisplay  # noqa: E402

from asd_jax.base.files import atomic_path  # noqa: E402
from asd_jax.base.skeleton import BONES, REGION_NAMES  # noqa: E402
from asd_jax.data.transforms import MIN_SCORE  # noqa: E402


def _save(fig: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def roc_curves(labels: np.ndarray, probs: np.ndarray, class_names: tuple[str, ...], path: Path, title: str) -> Path:
    """One-vs-rest ROC per class (the positive class only, for two classes)."""
    fig, ax = plt.subplots(figsize=(5, 5))
    classes = [1] if len(class_names) == 2 else range(len(class_names))
    for c in classes:
        if 0 < (labels == c).sum() < len(labels):
            RocCurveDisplay.from_predictions(labels == c, probs[:, c], name=class_names[c], ax=ax)
    ax.plot([0, 1], [0, 1], "k:", lw=1)
    ax.set_title(title)
    return _save(fig, path)


def confusion(labels: np.ndarray, preds: np.ndarray, class_names: tuple[str, ...], path: Path, title: str) -> Path:
    """Counts and row-normalised (sensitivity on the diagonal), side by side."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
    for ax, normalize, name in ((axes[0], None, "counts"), (axes[1], "true", "share of true class")):
        ConfusionMatrixDisplay.from_predictions(
            labels, preds, labels=np.arange(len(class_names)), display_labels=class_names,
            normalize=normalize, ax=ax, colorbar=False, values_format=".2f" if normalize else "d",
        )
        ax.set_title(f"{title}: {name}")
    return _save(fig, path)


def reliability(labels: np.ndarray, probs: np.ndarray, path: Path, title: str, bins: int = 10) -> Path:
    """Accuracy against confidence of the predicted class."""
    correct = (probs.argmax(-1) == labels).astype(int)
    accuracy, confidence = calibration_curve(correct, probs.max(-1), n_bins=bins, strategy="uniform")
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], "k:", lw=1, label="perfect calibration")
    ax.plot(confidence, accuracy, "o-", label="model")
    ax.set(xlabel="confidence", ylabel="accuracy", xlim=(0, 1), ylim=(0, 1), title=title)
    ax.legend()
    return _save(fig, path)


def attention_heatmap(attention: np.ndarray, fps: float, path: Path, title: str) -> Path:
    """Region x time attention of one clip ([R, frames])."""
    fig, ax = plt.subplots(figsize=(9, 2.8))
    image = ax.imshow(attention, aspect="auto", cmap="magma", interpolation="nearest", extent=(0, attention.shape[1] / fps, len(REGION_NAMES), 0))
    ax.set_yticks(np.arange(len(REGION_NAMES)) + 0.5, REGION_NAMES)
    ax.set(xlabel="time (s)", title=title)
    fig.colorbar(image, ax=ax, label="attention")
    return _save(fig, path)


def _draw_skeleton(ax: plt.Axes, pose: np.ndarray, weights: np.ndarray, vmax: float) -> None:
    xy, seen = pose[:, :2], pose[:, 2] >= MIN_SCORE
    for a, b in BONES:
        if seen[a] and seen[b]:
            ax.plot(xy[[a, b], 0], xy[[a, b], 1], color="0.6", lw=1.5, zorder=1)
    ax.scatter(xy[seen, 0], xy[seen, 1], c=weights[seen], cmap="magma", vmin=0, vmax=vmax, s=40, zorder=2, edgecolors="k", linewidths=0.3)
    ax.set_aspect("equal")
    ax.axis("off")


def skeleton_keyframes(pose: np.ndarray, joint_weights: np.ndarray, path: Path, title: str, count: int = 6) -> Path:
    """Key frames of a normalised clip with joints coloured by attention ([T, 17] weights)."""
    visible = np.flatnonzero((pose[..., 2] >= MIN_SCORE).sum(-1) >= 12)  # frames showing the body
    candidates = visible if len(visible) >= count else np.arange(len(pose))
    frames = candidates[np.linspace(0, len(candidates) - 1, count).astype(int)]
    fig, axes = plt.subplots(1, count, figsize=(2.2 * count, 3.4))
    vmax = float(joint_weights.max()) or 1.0
    for ax, frame in zip(axes, frames):
        _draw_skeleton(ax, pose[frame], joint_weights[frame], vmax)
        ax.set_title(f"frame {frame}", fontsize=8)
    fig.suptitle(title)
    return _save(fig, path)


def skeleton_probabilities(pose: np.ndarray, probs: np.ndarray, class_names: tuple[str, ...], path: Path, title: str, count: int = 6) -> Path:
    """Key frames of a normalised clip beside its predicted class probabilities (models without
    attention maps)."""
    visible = np.flatnonzero((pose[..., 2] >= MIN_SCORE).sum(-1) >= 12)
    candidates = visible if len(visible) >= count else np.arange(len(pose))
    frames = candidates[np.linspace(0, len(candidates) - 1, count).astype(int)]
    fig, axes = plt.subplots(1, count + 1, figsize=(2.2 * count + 3.5, 3.4), gridspec_kw={"width_ratios": [1] * count + [1.6]})
    for ax, frame in zip(axes[:-1], frames):
        _draw_skeleton(ax, pose[frame], np.zeros(pose.shape[1]), 1.0)
        ax.set_title(f"frame {frame}", fontsize=8)
    bars = axes[-1]
    positions = np.arange(len(class_names))
    bars.barh(positions, probs, color=["tab:red" if i == int(np.argmax(probs)) else "tab:gray" for i in positions])
    bars.set_yticks(positions, class_names)
    bars.invert_yaxis()
    bars.set(xlim=(0, 1), xlabel="probability", title="prediction")
    for i, p in enumerate(probs):
        bars.text(min(p + 0.02, 0.8), i, f"{p:.2f}", va="center", fontsize=8)
    fig.suptitle(title)
    return _save(fig, path)


def skeleton_gif(pose: np.ndarray, joint_weights: np.ndarray, path: Path, fps: float, title: str) -> Path:
    """An animated GIF of a clip with joints coloured by attention."""
    fig, ax = plt.subplots(figsize=(3.5, 4.5))
    limits = pose[..., :2][pose[..., 2] >= MIN_SCORE]
    low, high = (limits.min(0), limits.max(0)) if len(limits) else (np.array([-2, -4]), np.array([2, 2]))
    vmax = float(joint_weights.max()) or 1.0

    def draw(frame: int):
        ax.clear()
        _draw_skeleton(ax, pose[frame], joint_weights[frame], vmax)
        ax.set_xlim(low[0] - 0.3, high[0] + 0.3)
        ax.set_ylim(low[1] - 0.3, high[1] + 0.3)
        ax.set_title(title, fontsize=8)

    movie = animation.FuncAnimation(fig, draw, frames=len(pose))
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        movie.save(tmp, writer=animation.PillowWriter(fps=max(1, int(round(fps)))))
    plt.close(fig)
    return path


def attention_vs_prior(mean_attention: np.ndarray, mean_prior: np.ndarray, class_names: tuple[str, ...], path: Path) -> Path:
    """Per class: the model's mean attention per region beside the raters' mean prior."""
    fig, axes = plt.subplots(1, len(class_names), figsize=(4 * len(class_names), 3.5), sharey=True)
    positions = np.arange(len(REGION_NAMES))
    for ax, name, attention, prior in zip(np.atleast_1d(axes), class_names, mean_attention, mean_prior):
        ax.bar(positions - 0.2, attention, 0.4, label="model attention")
        ax.bar(positions + 0.2, prior, 0.4, label="raters' prior")
        ax.set_xticks(positions, REGION_NAMES, rotation=45, ha="right")
        ax.set_title(name)
    np.atleast_1d(axes)[0].legend()
    return _save(fig, path)


def model_comparison(rows: list[tuple[str, dict]], path: Path, title: str, metrics: tuple[str, ...] = ("macro_f1", "auc")) -> Path:
    """Mean over folds per model and metric, with the 95% CI as the error bar."""
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.5 * len(metrics), 0.45 * len(rows) + 1.5), sharey=True)
    names = [name for name, _ in rows]
    for ax, metric in zip(np.atleast_1d(axes), metrics):
        means = np.array([level["metrics"][metric] for _, level in rows])
        lows, highs = np.array([level["ci95"][metric] for _, level in rows]).T
        ax.barh(names, means, xerr=[np.clip(means - lows, 0, None), np.clip(highs - means, 0, None)], capsize=3, color="tab:blue")
        ax.set(xlim=(0, 1), xlabel=metric, title=f"{title}: {metric}")
    np.atleast_1d(axes)[0].invert_yaxis()  # first model on top (the y axis is shared)
    return _save(fig, path)

"""Figures for reports and explanations (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib import animation  # noqa: E402
from matplotlib.cm import ScalarMappable  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402
from matplotlib.colors import Normalize  # noqa: E402
from sklearn.metrics import confusion_matrix, roc_auc_score, roc_curve  # noqa: E402

from asd_jax.base.files import atomic_path  # noqa: E402
from asd_jax.base.skeleton import BONES, REGION_NAMES  # noqa: E402
from asd_jax.data.transforms import MIN_SCORE  # noqa: E402
from asd_jax.evaluation import metrics  # noqa: E402

DIVERGING = "RdBu_r"  # signed attributions: red raises the class's log-probability, blue lowers it


def save(fig: plt.Figure, path: Path) -> Path:
    """Writes and closes `fig` (every figure leaves through here, so a test can look at it first)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def roc_curves(labels: np.ndarray, probs: np.ndarray, class_names: tuple[str, ...], path: Path, title: str) -> Path:
    """One-vs-rest ROC of every class with its AUC in the legend; a class that is absent (or the
    only one present) has no curve, and the legend says so instead of leaving it out silently."""
    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    ax.plot([0, 1], [0, 1], "k:", lw=1, label="chance")
    for c, name in enumerate(class_names):
        positive = labels == c
        if 0 < positive.sum() < len(labels):
            fpr, tpr, _ = roc_curve(positive, probs[:, c])
            ax.plot(fpr, tpr, lw=1.5, label=f"{name} vs rest (AUC {roc_auc_score(positive, probs[:, c]):.3f})")
        else:
            ax.plot([], [], " ", label=f"{name}: no curve ({'every' if positive.all() else 'no'} test row)")
    ax.set(xlabel="False positive rate", ylabel="True positive rate", xlim=(-0.01, 1.01), ylim=(-0.01, 1.01), title=title)
    ax.set_aspect("equal")
    ax.legend(loc="lower right", fontsize=8)
    return save(fig, path)


def confusion(labels: np.ndarray, preds: np.ndarray, class_names: tuple[str, ...], path: Path, title: str) -> Path:
    """Each cell: the count and its share of the true class (sensitivity on the diagonal), coloured
    by the share so a small class reads like a large one. Class names wrap after underscores and
    the cells grow with the classes and the longest name, so tick labels never overlap."""
    k = len(class_names)
    counts = confusion_matrix(labels, preds, labels=np.arange(k))
    totals = counts.sum(1, keepdims=True)
    share = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    names = [_wrapped(name) for name in class_names]
    cell = max(1.1, 0.09 * max(len(line) for name in names for line in name.split("\n")) + 0.3)  # inches: the longest line fits
    fig, ax = plt.subplots(figsize=(1.5 + cell * k + 1.2, 1.5 + cell * k))
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i, j in np.ndindex(k, k):
        text = f"{counts[i, j]}\n{share[i, j]:.0%}" if totals[i, 0] else "0"
        ax.text(j, i, text, ha="center", va="center", fontsize=9, color="white" if share[i, j] > 0.5 else "black")
    ax.set_xticks(np.arange(k), names)
    ax.set_yticks(np.arange(k), names)
    ax.set(xlabel="predicted class", ylabel="true class", title=title)
    fig.colorbar(image, ax=ax, label="share of the true class", fraction=0.046, pad=0.04)
    fig.tight_layout()
    return save(fig, path)


def _wrapped(name: str, width: int = 10) -> str:
    """A class name over lines of about `width` characters, broken after underscores."""
    return "\n".join(textwrap.wrap(name.replace("_", "_ "), width, break_long_words=False)).replace("_ ", "_")


def reliability(labels: np.ndarray, probs: np.ndarray, path: Path, title: str, bins: int = metrics.ECE_BINS) -> Path:
    """Accuracy against confidence of the predicted class, above the number of predictions per bin:
    a point made of two predictions is noise, and an empty bin has no point at all. The bins are
    the ECE's, so the figure shows what results.json's `ece` measures."""
    counts, accuracy, confidence = metrics.calibration_bins(labels, probs, bins)
    filled = counts > 0
    fig, (curve, histogram) = plt.subplots(2, 1, figsize=(5, 6.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    curve.plot([0, 1], [0, 1], "k:", lw=1, label="perfect calibration")
    curve.plot(confidence[filled], accuracy[filled], "o-", label="model")
    curve.set(ylabel="accuracy", ylim=(-0.03, 1.03), title=title)
    curve.legend(loc="upper left")
    centres = (np.arange(bins) + 0.5) / bins
    histogram.bar(centres, counts, width=0.9 / bins, color="tab:gray")
    for x, n in zip(centres, counts):
        histogram.text(x, n, str(n), ha="center", va="bottom", fontsize=7)
    histogram.set(xlabel="confidence of the predicted class", ylabel="predictions", xlim=(0, 1), ylim=(0, 1.3 * counts.max() + 1))
    return save(fig, path)


def _draw_skeleton(
    ax: plt.Axes, pose: np.ndarray, weights: np.ndarray, norm: Normalize, cmap: str = "magma", *, colour_bones: bool = False
) -> None:
    """One frame [17, 3] (x, y up, score) with joints coloured by `weights` [17]; bones grey, or
    coloured by the mean of their two joints' weights when `colour_bones`."""
    xy, seen = pose[:, :2], pose[:, 2] >= MIN_SCORE
    colours = plt.get_cmap(cmap)
    for a, b in BONES:
        if seen[a] and seen[b]:
            colour = colours(norm((weights[a] + weights[b]) / 2)) if colour_bones else "0.6"
            ax.plot(xy[[a, b], 0], xy[[a, b], 1], color=colour, lw=2.5 if colour_bones else 1.5, zorder=1)
    ax.scatter(xy[seen, 0], xy[seen, 1], c=weights[seen], cmap=cmap, norm=norm, s=40, zorder=2, edgecolors="k", linewidths=0.3)
    ax.set_aspect("equal")
    ax.axis("off")


def _symmetric_norm(values: np.ndarray) -> Normalize:
    """A colour scale from -max|values| to +max|values|, so 0 sits at the diverging map's centre."""
    vmax = float(np.nanmax(np.abs(values), initial=0.0)) or 1.0
    return Normalize(-vmax, vmax)


def _keyframe_indices(pose: np.ndarray, count: int) -> np.ndarray:
    """`count` evenly spaced frames, among those showing most of the body when there are enough."""
    visible = np.flatnonzero((pose[..., 2] >= MIN_SCORE).sum(-1) >= 12)
    candidates = visible if len(visible) >= count else np.arange(len(pose))
    return candidates[np.linspace(0, len(candidates) - 1, count).astype(int)]


def attribution_keyframes(pose: np.ndarray, joint_attribution: np.ndarray, path: Path, title: str, count: int = 6) -> Path:
    """Key frames of a normalised clip ([T, 17, 3], y up) with joints and bones coloured by a signed
    attribution ([T, 17]); one colour scale symmetric around 0 for all frames, so frames compare
    and white means "no effect"."""
    fig, axes = plt.subplots(1, count, figsize=(2.2 * count + 1.0, 3.4))
    norm = _symmetric_norm(joint_attribution)
    for ax, frame in zip(np.atleast_1d(axes), _keyframe_indices(pose, count)):
        _draw_skeleton(ax, pose[frame], joint_attribution[frame], norm, DIVERGING, colour_bones=True)
        ax.set_title(f"frame {frame}", fontsize=8)
    fig.colorbar(ScalarMappable(norm, DIVERGING), ax=list(np.atleast_1d(axes)), label="attribution (Δ log-probability)", shrink=0.8)
    fig.suptitle(title)
    return save(fig, path)


def skeleton_probabilities(
    pose: np.ndarray, probs: np.ndarray, class_names: tuple[str, ...], path: Path, title: str, count: int = 6
) -> Path:
    """Key frames of a normalised clip beside its predicted class probabilities (models without
    attention maps)."""
    fig, axes = plt.subplots(1, count + 1, figsize=(2.2 * count + 3.5, 3.4), gridspec_kw={"width_ratios": [1] * count + [1.6]})
    for ax, frame in zip(axes[:-1], _keyframe_indices(pose, count)):
        _draw_skeleton(ax, pose[frame], np.zeros(pose.shape[1]), Normalize(0, 1))
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
    return save(fig, path)


GIF_FPS = 10  # frames per second of the explanation GIFs: smooth enough to follow a gait cycle


def skeleton_gif(pose: np.ndarray, joint_weights: np.ndarray, path: Path, fps: float, title: str) -> Path:
    """An animated GIF of a clip with joints coloured by attention, at GIF_FPS at most (every
    `fps / GIF_FPS`-th frame, shown for as long, so the walk keeps its pace). The artists are made
    once and moved frame by frame: rendering, not drawing, is what a frame costs."""
    fig, ax = plt.subplots(figsize=(3.5, 4.5))
    limits = pose[..., :2][pose[..., 2] >= MIN_SCORE]
    low, high = (limits.min(0), limits.max(0)) if len(limits) else (np.array([-2, -4]), np.array([2, 2]))
    norm = Normalize(0, float(joint_weights.max()) or 1.0)
    bones = LineCollection([], colors="0.6", linewidths=1.5, zorder=1)
    ax.add_collection(bones)
    joints = ax.scatter([], [], c=[], cmap="magma", norm=norm, s=40, zorder=2, edgecolors="k", linewidths=0.3)
    ax.set(xlim=(low[0] - 0.3, high[0] + 0.3), ylim=(low[1] - 0.3, high[1] + 0.3), aspect="equal")
    ax.set_title(title, fontsize=8)
    ax.axis("off")

    def draw(frame: int):
        xy, seen = pose[frame, :, :2], pose[frame, :, 2] >= MIN_SCORE
        bones.set_segments([xy[[a, b]] for a, b in BONES if seen[a] and seen[b]])
        joints.set_offsets(xy[seen])
        joints.set_array(joint_weights[frame][seen])
        return bones, joints

    every = max(1, int(round(fps / GIF_FPS)))
    movie = animation.FuncAnimation(fig, draw, frames=range(0, len(pose), every), blit=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        movie.save(tmp, writer=animation.PillowWriter(fps=max(1, int(round(fps / every)))))
    plt.close(fig)
    return path


def region_time_heatmap(scores: np.ndarray, duration_s: float, heel_strikes_s: dict[str, list[float]], path: Path, title: str) -> Path:
    """Signed region x time scores ([5 regions, bins] over a clip of `duration_s` seconds), centred
    at 0, with heel strikes in SECONDS (base.gait.heel_strikes gives frames: divide by fps) as
    vertical lines, so an effect can be read against the gait cycle."""
    fig, ax = plt.subplots(figsize=(9, 3.0))
    extent = (0, duration_s, len(REGION_NAMES), 0)
    image = ax.imshow(scores, aspect="auto", cmap=DIVERGING, norm=_symmetric_norm(scores), interpolation="nearest", extent=extent)
    for side, style in (("left", dict(color="k", ls="-")), ("right", dict(color="tab:green", ls="--"))):
        for i, time in enumerate(heel_strikes_s.get(side, [])):
            ax.axvline(time, lw=1.2, label=f"{side} heel strike" if i == 0 else None, **style)
    ax.set_yticks(np.arange(len(REGION_NAMES)) + 0.5, REGION_NAMES)
    ax.set(xlabel="time (s)", xlim=(0, duration_s), title=title)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, fontsize=8)
    fig.colorbar(image, ax=ax, label="attribution (Δ log-probability)")
    return save(fig, path)


def _region_bars(values: np.ndarray, class_names: tuple[str, ...], path: Path, prior: np.ndarray | None, label: str, ylabel: str) -> Path:
    """Per class a panel of bars per region, the raters' prior beside them only where one is known."""
    with_prior = prior is not None and bool(np.isfinite(prior).all())
    fig, axes = plt.subplots(1, len(class_names), figsize=(4 * len(class_names), 3.5), sharey=True)
    positions, width = np.arange(len(REGION_NAMES)), 0.4 if with_prior else 0.7
    for c, (ax, name) in enumerate(zip(np.atleast_1d(axes), class_names)):
        ax.bar(positions - width / 2 * with_prior, values[c], width, label=label)
        if with_prior:
            ax.bar(positions + width / 2, prior[c], width, label="raters' prior")
        ax.axhline(0, color="k", lw=0.8)
        ax.set_xticks(positions, REGION_NAMES, rotation=45, ha="right")
        ax.set_title(name)
    np.atleast_1d(axes)[0].set_ylabel(ylabel)
    np.atleast_1d(axes)[0].legend(fontsize=8)
    return save(fig, path)


def attribution_by_class(
    attribution: np.ndarray, class_names: tuple[str, ...], path: Path, prior: np.ndarray | None = None, label: str = "model attribution"
) -> Path:
    """Mean region attribution per class ([classes, 5]), each row scaled to sum(|value|) = 1 so
    classes with stronger effects do not hide the pattern of weaker ones; the raters' prior
    ([classes, 5], scaled alike) beside it only when given and finite."""
    prior = None if prior is None else _unit_rows(prior)
    return _region_bars(_unit_rows(attribution), class_names, path, prior, label, "share of |attribution|")


def _unit_rows(rows: np.ndarray) -> np.ndarray:
    """Each row over its sum of absolute values (an all-zero row stays zero)."""
    total = np.abs(rows).sum(-1, keepdims=True)
    return rows / np.where(total > 0, total, 1.0)


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
    return save(fig, path)


def seed_spread(rows: list[tuple[str, list[float]]], path: Path, metric: str) -> Path:
    """One dot per training seed and a bar at their mean per model: the spread a single CV hides."""
    fig, ax = plt.subplots(figsize=(6.5, 0.45 * len(rows) + 1.5))
    names = [name for name, _ in rows]
    ax.barh(names, [np.mean(values) for _, values in rows], color="tab:blue", alpha=0.35, label="mean over seeds")
    for y, (_, values) in enumerate(rows):
        ax.plot(values, np.full(len(values), y), "o", color="tab:blue", label="one seed" if y == 0 else None)
    ax.set(xlim=(0, 1), xlabel=metric, title=f"{metric} per training seed")
    ax.invert_yaxis()
    ax.legend(loc="lower left")  # the dots sit at the right
    return save(fig, path)

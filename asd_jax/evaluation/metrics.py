"""Clinical classification metrics (scikit-learn arithmetic) and patient-level bootstrap CIs."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn import metrics as skm

HEADLINE = ("accuracy", "balanced_accuracy", "macro_f1", "auc")
MIN_PATIENTS_FOR_CI = 2  # per class: with one, a patient bootstrap has nothing to resample
MIN_PATIENTS_TO_TRUST = 5  # per class: below it, a report warns that its numbers are anecdotal
ECE_BINS = 15  # equal-width confidence bins of the ECE and of the reliability diagram


def flat_headline(levels: dict[str, dict[str, Any]]) -> dict[str, float]:
    """{'patient': metrics, 'clip': metrics} -> {'patient_accuracy': ..., 'clip_auc': ...}."""
    return {f"{level}_{name}": values[name] for level, values in levels.items() for name in HEADLINE}


def log_loss(labels: np.ndarray, probs: np.ndarray) -> float:
    """Mean negative log-likelihood of the true classes (every class counted, present or not)."""
    return float(skm.log_loss(labels, probs, labels=np.arange(probs.shape[1])))


def auc(labels: np.ndarray, probs: np.ndarray) -> float:
    """Binary ROC AUC of class 1, or macro one-vs-rest; NaN when a class is missing."""
    num_classes = probs.shape[1]
    if len(np.unique(labels)) < num_classes:
        return float("nan")
    if num_classes == 2:
        return float(skm.roc_auc_score(labels, probs[:, 1]))
    return float(skm.roc_auc_score(labels, probs, multi_class="ovr", average="macro", labels=np.arange(num_classes)))


def calibration_bins(labels: np.ndarray, probs: np.ndarray, bins: int = ECE_BINS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per equal-width bin of the predicted class's confidence: how many predictions fell in it,
    their accuracy and their mean confidence (NaN in an empty bin). One binning for the ECE and the
    reliability diagram, so the figure shows what the number measures."""
    confidence, correct = probs.max(-1), (probs.argmax(-1) == labels).astype(float)
    which = np.clip(np.digitize(confidence, np.linspace(0.0, 1.0, bins + 1)[1:-1]), 0, bins - 1)
    counts = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.bincount(which, weights=correct, minlength=bins) / counts
        mean_confidence = np.bincount(which, weights=confidence, minlength=bins) / counts
    return counts, accuracy, mean_confidence


def expected_calibration_error(labels: np.ndarray, probs: np.ndarray, bins: int = ECE_BINS) -> float:
    """Gap between confidence and accuracy, averaged over equal-width confidence bins."""
    counts, accuracy, confidence = calibration_bins(labels, probs, bins)
    filled = counts > 0
    return float(np.sum(counts[filled] / max(counts.sum(), 1) * np.abs(accuracy[filled] - confidence[filled])))


def classification_metrics(labels: np.ndarray, probs: np.ndarray, class_names: tuple[str, ...]) -> dict[str, Any]:
    """Accuracy (plain and balanced: the reference's "accuracy" was macro), macro-F1, AUC,
    per-class sensitivity and specificity, confusion matrix and ECE."""
    labels = np.asarray(labels)
    classes = np.arange(len(class_names))
    preds = probs.argmax(-1)
    confusion = skm.confusion_matrix(labels, preds, labels=classes)
    per_class = {}
    for c, name in enumerate(class_names):
        tp = confusion[c, c]
        fn = confusion[c].sum() - tp
        fp = confusion[:, c].sum() - tp
        tn = confusion.sum() - tp - fn - fp
        per_class[name] = {
            "sensitivity": float(tp / (tp + fn)) if tp + fn else float("nan"),
            "specificity": float(tn / (tn + fp)) if tn + fp else float("nan"),
            "support": int(tp + fn),
        }
    return {
        "accuracy": float(skm.accuracy_score(labels, preds)),
        "balanced_accuracy": float(np.nanmean([v["sensitivity"] for v in per_class.values()])),
        "macro_f1": float(skm.f1_score(labels, preds, labels=classes, average="macro", zero_division=0)),
        "auc": auc(labels, probs),
        "ece": expected_calibration_error(labels, probs),
        "per_class": per_class,
        "confusion_matrix": confusion.tolist(),
        "count": int(len(labels)),
    }


def bootstrap_ci(
    labels: np.ndarray,
    probs: np.ndarray,
    metric: Callable[[np.ndarray, np.ndarray], float],
    *,
    groups: np.ndarray | None = None,
    num_samples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile CI from resampling PATIENTS with replacement, stratified by class: each draw takes
    as many patients of each class as there are (all clips of a drawn patient come along when
    `groups` gives each row's patient). Every draw then holds every class, so no draw is skipped and
    a CI cannot collapse to zero width by leaving out the hard ones. With fewer than
    MIN_PATIENTS_FOR_CI patients in a class there is no CI (NaN)."""
    rng = np.random.default_rng(seed)
    groups = np.arange(len(labels)) if groups is None else np.asarray(groups)
    unique, first, inverse = np.unique(groups, return_index=True, return_inverse=True)
    members = [np.flatnonzero(inverse == g) for g in range(len(unique))]
    strata = [np.flatnonzero(labels[first] == c) for c in np.unique(labels[first])]
    if min(map(len, strata)) < MIN_PATIENTS_FOR_CI:
        return float("nan"), float("nan")  # reported as "n/a", never as a zero-width interval
    values = []
    for _ in range(num_samples):
        drawn = np.concatenate([rng.choice(stratum, len(stratum)) for stratum in strata])
        sample = np.concatenate([members[g] for g in drawn])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = metric(labels[sample], probs[sample])
        if np.isfinite(value):
            values.append(value)
    if not values:
        return float("nan"), float("nan")
    tail = 100 * (1 - level) / 2
    return float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail))


METRIC_FUNCTIONS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "accuracy": lambda y, p: float(skm.accuracy_score(y, p.argmax(-1))),
    "balanced_accuracy": lambda y, p: float(skm.balanced_accuracy_score(y, p.argmax(-1))),
    "macro_f1": lambda y, p: float(
        skm.f1_score(y, p.argmax(-1), labels=np.arange(p.shape[1]), average="macro", zero_division=0)
    ),
    "auc": auc,
}


def headline_with_ci(
    labels: np.ndarray, probs: np.ndarray, *, groups: np.ndarray | None = None, seed: int = 0, num_samples: int = 1000
) -> dict[str, list[float]]:
    """Patient-level bootstrap 95% CI of each headline metric."""
    return {
        name: list(bootstrap_ci(labels, probs, METRIC_FUNCTIONS[name], groups=groups, num_samples=num_samples, seed=seed))
        for name in HEADLINE
    }


def small_sample_warnings(labels: np.ndarray, groups: np.ndarray, class_names: tuple[str, ...]) -> list[str]:
    """One line per class with fewer than MIN_PATIENTS_TO_TRUST patients (or none at all)."""
    unique, first = np.unique(np.asarray(groups), return_index=True)
    counts = np.bincount(np.asarray(labels)[first], minlength=len(class_names))
    lines = []
    for name, count in zip(class_names, counts, strict=True):
        if count < MIN_PATIENTS_TO_TRUST:
            ci = "" if count >= MIN_PATIENTS_FOR_CI else "; no confidence interval"
            lines.append(f"{name}: {count} test patient(s), fewer than {MIN_PATIENTS_TO_TRUST}: its numbers are anecdotal{ci}")
    return lines

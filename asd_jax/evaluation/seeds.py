"""Repeated cross-validation: one config's CV under several training seeds, read as a mean and a spread.

A single CV of a deep model on ~70 patients moves by about ±0.05 patient macro-F1 with the training
seed alone (docs/results.md), as much as most levers; only the mean over seeds, its spread and the
patients that every run misdiagnoses tell a lever from that noise. Pure functions of the summaries
that `report.cv_summary` returns, one per seed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from asd_jax.base.labels import patient_of_unit

# (level, metric) columns of the seed table, each as mean ± std over the seeds' fold means.
SEED_METRICS: tuple[tuple[str, str], ...] = (("patient", "macro_f1"), ("clip", "macro_f1"), ("patient", "auc"))


def misdiagnosed(levels: dict[str, Any]) -> dict[str, str]:
    """Patients of the pooled test predictions whose predicted class is wrong (a mixed-diagnosis
    patient once any of their units is), each with the class they were given."""
    pooled = levels["patient"]["predictions"]
    wrong = pooled.probs.argmax(-1) != pooled.labels
    given = pooled.probs.argmax(-1)
    return {patient_of_unit(unit): int(label) for unit, label in zip(pooled.ids[wrong].tolist(), given[wrong].tolist())}


def truth_of(levels: dict[str, Any]) -> dict[str, int]:
    """Each tested patient's true class (of a mixed-diagnosis patient, their first unit's)."""
    pooled = levels["patient"]["predictions"]
    truth: dict[str, int] = {}
    for unit, label in zip(pooled.ids.tolist(), pooled.labels.tolist()):
        truth.setdefault(patient_of_unit(unit), int(label))
    return truth


def seed_row(per_seed: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """Mean, std, min and max over the seeds of each SEED_METRICS fold mean, and the misdiagnosed
    patients per seed."""
    row: dict[str, Any] = {"seeds": sorted(per_seed)}
    for level, metric in SEED_METRICS:
        values = np.array([per_seed[s][level]["metrics"][metric] for s in row["seeds"]])
        row[f"{level}_{metric}"] = {
            "mean": float(values.mean()),
            "std": float(values.std()),
            "min": float(values.min()),
            "max": float(values.max()),
            "per_seed": values.tolist(),
        }
    row["misdiagnosed"] = [len(misdiagnosed(per_seed[s])) for s in row["seeds"]]
    return row


def miss_counts(results: dict[str, dict[int, dict[str, Any]]]) -> dict[str, dict[str, int]]:
    """For every patient some run misdiagnosed: per config, how many of its seeds did."""
    counts: dict[str, dict[str, int]] = {}
    for name, per_seed in results.items():
        for levels in per_seed.values():
            for patient in misdiagnosed(levels):
                counts.setdefault(patient, dict.fromkeys(results, 0))[name] += 1
    return counts


def often_missed(results: dict[str, dict[int, dict[str, Any]]], share: float = 0.5) -> list[tuple[str, dict[str, int]]]:
    """Patients misdiagnosed by at least `share` of all runs, most-missed first."""
    runs = sum(len(per_seed) for per_seed in results.values())
    rows = [(p, c) for p, c in miss_counts(results).items() if sum(c.values()) >= share * runs]
    return sorted(rows, key=lambda item: (-sum(item[1].values()), item[0]))

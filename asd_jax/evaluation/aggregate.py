"""Windows -> clips -> patients, as DESIGN.md's evaluation protocol fixes it.

A clip's prediction is the softmax of the MEAN LOGITS of its windows; a patient's is the MEAN
PROBABILITY of their clips (the arithmetic of asd_jax.base.preprocess, which the exported
predictor shares). The patient-level unit is (patient, class): a patient whose clips belong to
several classes is one unit per class, `P07|ASD` (base.labels.patient_unit).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from asd_jax.base.labels import patient_unit
from asd_jax.base.preprocess import softmax


@dataclasses.dataclass(frozen=True)
class Predictions:
    """One row per clip or patient: id, true label, class probabilities."""

    ids: np.ndarray
    labels: np.ndarray
    probs: np.ndarray

    @property
    def preds(self) -> np.ndarray:
        return self.probs.argmax(-1)


def clips_from_windows(
    window_logits: np.ndarray, window_rows: np.ndarray, rows: np.ndarray, clip_ids: np.ndarray, labels: np.ndarray
) -> Predictions:
    """Mean logits over each clip's windows. `rows` are the clips expected; each needs a window."""
    order = {int(r): i for i, r in enumerate(rows)}
    sums = np.zeros((len(rows), window_logits.shape[1]))
    counts = np.zeros(len(rows))
    positions = np.array([order[int(r)] for r in window_rows])
    np.add.at(sums, positions, window_logits)
    np.add.at(counts, positions, 1)
    if (counts == 0).any():
        missing = clip_ids[np.asarray(rows)[counts == 0]]
        raise ValueError(f"{len(missing)} clip(s) got no evaluation window, e.g. {str(missing[0])!r}")
    return Predictions(clip_ids[rows], labels[rows], softmax(sums / counts[:, None]))


def patients_from_clips(clips: Predictions, patient_of_clip: np.ndarray, class_names: tuple[str, ...] | None = None) -> Predictions:
    """Mean clip probabilities per (patient, class) unit; ids are patient ids, or `patient|class`
    (class index without `class_names`) for a patient whose clips have several labels."""
    patient_of_clip = np.asarray(patient_of_clip).astype(str)
    mixed = {p for p in set(patient_of_clip) if len(set(clips.labels[patient_of_clip == p])) > 1}
    name = (lambda label: class_names[label]) if class_names is not None else str  # noqa: E731
    unit_of_clip = np.array([patient_unit(p, name(int(label)), p in mixed) for p, label in zip(patient_of_clip, clips.labels)])
    units, inverse = np.unique(unit_of_clip, return_inverse=True)
    probs = np.zeros((len(units), clips.probs.shape[1]))
    np.add.at(probs, inverse, clips.probs)
    probs /= np.bincount(inverse)[:, None]
    labels = np.zeros(len(units), np.int64)
    labels[inverse] = clips.labels
    return Predictions(units, labels, probs)

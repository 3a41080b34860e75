"""Windows -> clips -> patients, as DESIGN.md's evaluation protocol fixes it.

A clip's prediction is the softmax of the MEAN LOGITS of its windows; a patient's is the MEAN
PROBABILITY of their clips.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy.special import softmax


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
    return Predictions(clip_ids[rows], labels[rows], softmax(sums / counts[:, None], axis=-1))


def patients_from_clips(clips: Predictions, patient_of_clip: np.ndarray) -> Predictions:
    """Mean clip probabilities per patient; a patient's clips must share one label."""
    patients, inverse = np.unique(patient_of_clip, return_inverse=True)
    probs = np.zeros((len(patients), clips.probs.shape[1]))
    np.add.at(probs, inverse, clips.probs)
    probs /= np.bincount(inverse)[:, None]
    labels = np.zeros(len(patients), np.int64)
    for p in range(len(patients)):
        patient_labels = np.unique(clips.labels[inverse == p])
        if len(patient_labels) != 1:
            raise ValueError(f"patient {str(patients[p])!r} has clips with different labels {patient_labels.tolist()}")
        labels[p] = patient_labels[0]
    return Predictions(patients, labels, probs)

"""How much a model whose pose head and gait-feature head add up (`model.gait_fusion='sum'`)
should hear its pose head, chosen on the validation patients.

Each head is trained to diagnose on its own, so `weight * pose + gait_features` is a model for
every weight: 1 is the model as trained, 0 its gait-feature head alone. Read alone over test
folds, the feature head can diagnose more clips than the sum (README, "Explanations"); whether a
weight chosen without the test patients does better than 1 is what `choose` and `WeightedScorer`
let a run measure (asd_jax/modes/head_weights.py). The choice: the run's checkpoint-selection
metric on the validation patients, ties broken by the validation clips' log-loss (a continuous
score, where a dozen validation patients often tie), then by the larger weight (nearer the
model as trained).
"""

from __future__ import annotations

import numpy as np

from asd_jax.base.preprocess import merge_class_logits
from asd_jax.evaluation import predict

POSE_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)


def weighted_logits(stream_logits: np.ndarray, pose_weight: float, groups: tuple[int, ...] = ()) -> np.ndarray:
    """[N, STREAMS, training classes] -> [N, reported classes]: the logits of the model whose pose
    head (stream 0) counts `pose_weight` times, merged into the reported classes as the model's
    own logits are (`models.reported_logits`)."""
    stream_logits = np.asarray(stream_logits, np.float32)
    summed = pose_weight * stream_logits[:, 0] + stream_logits[:, 1:].sum(axis=1)
    return merge_class_logits(summed, groups)


class WeightedScorer:
    """A scorer (asd_jax.evaluation.predict) of the model with its pose head weighted, from the
    windows of a WindowScorer: each set of clips is run through the network once, then
    reweighed for every weight asked."""

    def __init__(self, scorer: predict.WindowScorer, groups: tuple[int, ...] = ()):
        self.scorer, self.groups = scorer, groups
        self.pose_weight = 1.0
        self._windows: dict[bytes, dict[str, np.ndarray]] = {}

    def windows(self, fold, rows: np.ndarray) -> dict[str, np.ndarray]:
        key = np.asarray(rows).tobytes()
        if key not in self._windows:
            self._windows[key] = self.scorer.windows(fold, rows)
        windows = self._windows[key]
        if "stream_logits" not in windows:
            raise ValueError("the model has no pose and gait-feature heads that add up (model.gait_fusion='sum')")
        logits = weighted_logits(windows["stream_logits"], self.pose_weight, self.groups)
        return {"logits": logits, "clip_index": windows["clip_index"]}


def choose(validation: dict[float, tuple[float, float]]) -> float:
    """The pose weight of {weight: (selection score, clip log-loss)} on the validation patients:
    the highest score, then the lowest log-loss, then the larger weight."""
    return max(validation, key=lambda weight: (validation[weight][0], -validation[weight][1], weight))

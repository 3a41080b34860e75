"""Fitting the `features` baseline on one fold: every candidate estimator on the training patients,
the one best on the validation patients kept (asd_jax/models/features.py).

The kept estimator is saved with joblib beside where a deep model keeps its checkpoints, so a
finished fold is not fitted again and `--mode=eval` restores it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import joblib
import ml_collections
import numpy as np
from absl import logging

from asd_jax.base.errors import RunStateError
from asd_jax.base.files import atomic_path
from asd_jax.data.folds import FoldData
from asd_jax.data.gait_features import FeatureCache
from asd_jax.models.features import build_estimator, candidates
from asd_jax.training.checkpointing import CHECKPOINT_DIR
from asd_jax.training.metric_writer import MetricWriter

MODEL_FILE = "features.joblib"

# validate(estimator) -> (scalars to log, the score that selects; higher is better)
ValidateEstimator = Callable[[Any], tuple[dict[str, float], float]]


@dataclasses.dataclass
class FittedFeatures:
    """The kept estimator, which candidate it was (its index is the run's `selected_step`)."""

    estimator: Any
    candidate: str
    selected_step: int


def model_path(workdir: Path) -> Path:
    return workdir / CHECKPOINT_DIR / MODEL_FILE


def fit(
    config: ml_collections.ConfigDict, workdir: Path, fold: FoldData, features: FeatureCache,
    validate: ValidateEstimator, writer: MetricWriter,
) -> FittedFeatures:
    """Fits and selects (or restores a fold fitted before)."""
    if model_path(workdir).exists():
        logging.info("restoring the fitted features model of %s", workdir)
        return restore(workdir)
    train = fold.split.train
    x, y = features.matrix(train), fold.table.train_label[train]
    best: FittedFeatures | None = None
    best_score = -np.inf
    for index, candidate in enumerate(candidates(config.model)):
        estimator = build_estimator(candidate, config.model, config.seed).fit(x, y)
        scalars, score = validate(estimator)
        writer.write(index, {"candidate": candidate.name, **scalars})
        logging.info("%s: validation %s = %.4f", candidate.name, config.train.select_metric, score)
        if score > best_score:
            best, best_score = FittedFeatures(estimator, candidate.name, index), score
    if jax.process_index() == 0:
        save(workdir, best)
    logging.info("selected on validation patients: %s", best.candidate)
    return best


def save(workdir: Path, fitted: FittedFeatures) -> None:
    """Whole or not at all, so an interrupted save never leaves a half-written model behind."""
    path = model_path(workdir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temporary:
        joblib.dump(dataclasses.asdict(fitted), temporary)


def restore(workdir: Path) -> FittedFeatures:
    path = model_path(workdir)
    if not path.exists():
        raise RunStateError(f"{path}: no fitted features model; train first (--mode=train)")
    return FittedFeatures(**joblib.load(path))

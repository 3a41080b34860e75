"""The `features` baseline: clinical gait features per clip (asd_jax/base/gait.py) and a
scikit-learn ensemble, the honest bar every deep model must clear.

`candidates(config.model)` lists the estimators tried; training fits each on the training
patients and keeps the one that scores best on the validation patients, like every model's
checkpoint (asd_jax/training/fit_features.py). Missing measures (NaN) are filled with the
training median; classes are balanced by weight, on the training side only.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline

from asd_jax.base.errors import ConfigError
from asd_jax.base.preprocess import merge_class_logits

FAMILIES = ("random_forest", "gradient_boosting")


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One estimator to try: a family and its settings."""

    family: str
    settings: tuple[tuple[str, Any], ...]

    @property
    def name(self) -> str:
        return self.family + "(" + ", ".join(f"{k}={v}" for k, v in self.settings) + ")"


def candidates(model_config) -> list[Candidate]:
    """The grid of `config.model`: forests of `num_trees` with each `min_samples_leaf`, and gradient
    boosting with each `max_depth` (0 = unlimited)."""
    families = [f.strip() for f in model_config.estimators.split(",") if f.strip()]
    unknown = sorted(set(families) - set(FAMILIES))
    if unknown or not families:
        raise ConfigError(f"model.estimators={model_config.estimators!r}: expected a comma-separated subset of {FAMILIES}")
    out = []
    if "random_forest" in families:
        out += [Candidate("random_forest", (("min_samples_leaf", leaf),)) for leaf in _ints(model_config.min_samples_leaf)]
    if "gradient_boosting" in families:
        out += [Candidate("gradient_boosting", (("max_depth", depth),)) for depth in _ints(model_config.max_depth)]
    return out


def _ints(spec: str) -> list[int]:
    try:
        return [int(v) for v in str(spec).split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"expected comma-separated integers, got {spec!r}") from None


def build_estimator(candidate: Candidate, model_config, seed: int) -> Pipeline:
    """Median imputation, then the candidate's ensemble with balanced class weights."""
    settings = dict(candidate.settings)
    if candidate.family == "random_forest":
        estimator = RandomForestClassifier(
            n_estimators=model_config.num_trees, min_samples_leaf=settings["min_samples_leaf"],
            class_weight="balanced", random_state=seed, n_jobs=-1,
        )
    else:
        estimator = HistGradientBoostingClassifier(
            learning_rate=model_config.learning_rate, max_iter=model_config.num_trees,
            max_depth=settings["max_depth"] or None, min_samples_leaf=5, class_weight="balanced", random_state=seed,
        )
    return Pipeline([("impute", SimpleImputer(strategy="median", keep_empty_features=True)), ("classify", estimator)])


def clip_log_probs(estimator: Pipeline, features: np.ndarray, num_classes: int, groups: tuple[int, ...] = ()) -> np.ndarray:
    """[N, classes] log-probabilities of the `num_classes` reported classes (a class the training
    side never saw gets ~0 probability); fitted on finer training classes (`groups`,
    base.labels.class_groups), theirs are summed into the reported ones."""
    probs = np.full((len(features), len(groups) or num_classes), 1e-6)
    probs[:, estimator.classes_] = np.maximum(estimator.predict_proba(features), 1e-6)
    return merge_class_logits(np.log(probs / probs.sum(1, keepdims=True)), groups)

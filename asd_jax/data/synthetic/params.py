"""Every knob of the synthetic cohort, so harder, easier or shifted cohorts are a config away."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from asd_jax.base.errors import ConfigError

DIAGNOSES: tuple[str, ...] = ("ASD", "DHS", "LCS", "HipOA", "normal")


@dataclasses.dataclass(frozen=True)
class CohortParams:
    """Defaults mirror the reference cohort: 81 patients, ~1,957 clips of 2-10 s at 30 fps."""

    num_patients: int = 81
    num_clips: int = 1957
    seed: int = 0
    # Share of patients per diagnosis, 'diagnosis:weight,...' (weights are normalised).
    class_mix: str = "ASD:0.36,DHS:0.16,LCS:0.18,HipOA:0.14,normal:0.16"
    fps: float = 30.0
    min_seconds: float = 2.0
    max_seconds: float = 10.0
    # Disease severity per patient ~ Beta(severity_a, severity_b), scaled by `effect_scale`:
    # mild cases look almost normal, so classes overlap.
    severity_a: float = 1.5
    severity_b: float = 3.0
    effect_scale: float = 0.6
    # Between-patient spread of normal gait (height, cadence, posture) and within-patient,
    # between-clip variation (fraction of the between-patient one).
    height_cm_mean: float = 163.0
    height_cm_std: float = 9.0
    cadence_mean: float = 108.0  # steps per minute
    cadence_std: float = 8.0
    trunk_deg_std: float = 3.0
    neck_deg_std: float = 6.0
    clip_variation: float = 0.3
    # Camera: body height in pixels, roll of the camera, frame size.
    body_px_min: float = 300.0
    body_px_max: float = 700.0
    tilt_deg_std: float = 2.0
    image_width: int = 1920
    image_height: int = 1080
    # Pose-estimator artefacts.
    jitter_px: float = 2.5  # per-joint noise std at a 500 px tall body
    dropout_rate: float = 0.02  # joints missed per frame (score near 0)
    swap_rate: float = 0.01  # chance per clip-second of a brief left/right swap
    far_side_score: float = 0.72  # mean score of the limbs away from the camera
    near_side_score: float = 0.9
    bystander_rate: float = 0.08  # clips with a second, low-confidence person
    # Raters.
    rater_coverage: float = 0.9  # chance a rater annotated a given clip
    rater_disagreement: float = 0.3  # chance a rater swaps or adds a region
    # Raters mark the diagnosis' regions only when they see the disorder: with probability
    # rater_base + severity; otherwise the generic gait regions (lumbar_pelvis, foot).
    rater_base: float = 0.3

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any] | Any) -> CohortParams:
        """From a ConfigDict or mapping holding any subset of the fields; unknown keys are an error."""
        values = dict(cfg.items()) if hasattr(cfg, "items") else dict(cfg)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ConfigError(f"unknown synthetic cohort parameters: {', '.join(unknown)}")
        return cls(**values)

    def class_weights(self) -> dict[str, float]:
        """The normalised class mix; diagnoses outside DIAGNOSES are an error."""
        weights: dict[str, float] = {}
        for item in filter(None, (p.strip() for p in self.class_mix.split(","))):
            name, _, weight = item.partition(":")
            if name not in DIAGNOSES:
                raise ConfigError(f"class_mix: unknown diagnosis {name!r}; expected {', '.join(DIAGNOSES)}")
            weights[name] = float(weight)
        total = sum(weights.values())
        if total <= 0:
            raise ConfigError(f"class_mix {self.class_mix!r} has no positive weight")
        return {k: v / total for k, v in weights.items()}

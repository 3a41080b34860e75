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
    # Disease severity per patient, s ~ Beta(severity_a, severity_b) times `effect_scale` (0: barely
    # affected, 1: the most severe seen in a spine clinic). Beta(1.6, 2.0) gives ~36 % mild (s < 1/3),
    # ~45 % moderate and ~20 % severe (s > 2/3), like the SRS-Schwab SVA grades of ASD cohorts.
    # The signature of each diagnosis at s = 1 is in cohort.SIGNATURES (sources: docs/synthetic_cohort.md).
    severity_a: float = 1.6
    severity_b: float = 2.0
    effect_scale: float = 1.0
    # Between-patient spread of normal gait (height, cadence, posture, arm swing, stride) and
    # within-patient, between-clip variation (a fraction of the between-patient one).
    height_cm_mean: float = 163.0
    height_cm_std: float = 9.0
    cadence_mean: float = 108.0  # steps per minute
    cadence_std: float = 10.0
    trunk_deg_mean: float = 5.0  # forward trunk inclination while walking
    trunk_deg_std: float = 8.0
    neck_deg_std: float = 10.0
    arm_swing_deg_std: float = 5.0
    stride_std: float = 0.11
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
    # Raters (raters.py): each marks the regions whose visible signs pass their thresholds. They
    # never see the diagnosis, only the walk.
    rater_strictness: str = "1.0,1.1"  # one rater per value: multiplier of the clinical thresholds
    rater_coverage: float = 0.9  # chance a rater annotated a given clip at all
    rater_noise: float = 0.1  # perception noise per clip, as a share of each sign's normal-to-threshold distance
    rater_patient_noise: float = 0.25  # a rater's own lasting misjudgement of a patient, in the same units
    rater_shared_noise: float = 0.4  # how much a patient's appearance misleads all raters alike, in the same units
    rater_attention: float = 0.95  # chance a rater examines a given region of a clip
    rater_nothing_unusual: float = 0.5  # when no sign passes: chance of marking nothing (else the most striking region)

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any] | Any) -> CohortParams:
        """From a ConfigDict or mapping holding any subset of the fields; unknown keys are an error."""
        values = dict(cfg.items()) if hasattr(cfg, "items") else dict(cfg)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ConfigError(f"unknown synthetic cohort parameters: {', '.join(unknown)}")
        return cls(**values)

    def strictness(self) -> tuple[float, ...]:
        """One threshold multiplier per rater."""
        try:
            values = tuple(float(v) for v in self.rater_strictness.split(",") if v.strip())
        except ValueError:
            raise ConfigError(f"rater_strictness={self.rater_strictness!r}: expected comma-separated numbers") from None
        if not values or min(values) <= 0:
            raise ConfigError(f"rater_strictness={self.rater_strictness!r}: expected at least one positive number")
        return values

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

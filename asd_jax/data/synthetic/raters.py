"""Raters who mark what they see: a region is marked when one of its visible signs passes the
rater's threshold, as the rater perceives it.

Each criterion is (sign, the value of a typical healthy walker, the clinical threshold), in the
units of observe.SIGNS. A rater scales the distance from normal to threshold by their strictness,
perceives every sign with noise proportional to that distance, examines each region only with
some chance, and, when nothing passes, either marks nothing unusual (no annotation) or the single
most striking region. The diagnosis is never an input: it reaches the annotation only through the
walk it shaped.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from asd_jax.base.skeleton import REGION_NAMES

# region -> ((sign, healthy value, threshold), ...): the healthy value is the median of the cohort's
# normal walkers, the threshold past about their 95th percentile (docs/synthetic_cohort.md).
CRITERIA: dict[str, tuple[tuple[str, float, float], ...]] = {
    "head": (("head_forward_deg", 15.0, 35.0),),
    "shoulder": (("trunk_forward_deg", 5.0, 18.0), ("arm_swing_deg", 17.0, 10.0)),
    "wrist": (("arm_swing_deg", 17.0, 8.0), ("arm_asymmetry", 0.0, 0.2)),
    "lumbar_pelvis": (("trunk_forward_deg", 5.0, 15.0), ("trunk_growth_deg", 0.0, 1.5), ("hip_extension_deg", 9.5, 5.0)),
    "foot": (("step_length", 0.36, 0.25), ("step_asymmetry", 0.005, 0.05), ("step_decay", 0.0, 0.04)),
}


@dataclasses.dataclass(frozen=True)
class Rater:
    strictness: float  # multiplies the normal-to-threshold distance: > 1 marks only clearer signs
    noise: float  # perception noise per clip, as a share of the normal-to-threshold distance
    patient_noise: float  # the rater's lasting misjudgement of a patient, in the same units
    attention: float  # chance of examining a given region of a clip
    nothing_unusual: float  # when nothing passes: chance of marking nothing (else the most striking region)


def impression(rater: Rater, shared: dict[str, float], rng: np.random.Generator) -> dict[str, float]:
    """The rater's lasting bias about one patient, per sign, in units of the sign's threshold distance:
    what misleads every rater about this patient (`shared`, e.g. a posture that looks worse on
    video than it is) plus the rater's own misjudgement. It stays with the patient's every clip."""
    return {sign: shared[sign] + float(rng.normal(0.0, rater.patient_noise)) for sign in shared}


def shared_impression(scale: float, rng: np.random.Generator) -> dict[str, float]:
    """The part of a patient's misleading appearance that all raters share."""
    signs = sorted({sign for criteria in CRITERIA.values() for sign, _, _ in criteria})
    return {sign: float(rng.normal(0.0, scale)) for sign in signs}


def excess(signs: dict[str, float], rater: Rater, bias: dict[str, float], rng: np.random.Generator) -> dict[str, float]:
    """Per region, how far its most abnormal sign is past the rater's threshold, as perceived
    (> 0: marked; in units of the normal-to-threshold distance). Unexamined regions get -inf."""
    out = {}
    for region in REGION_NAMES:
        scores = []
        for sign, normal, threshold in CRITERIA[region]:
            span = (threshold - normal) * rater.strictness
            perceived = signs[sign] + (bias[sign] + rng.normal(0.0, rater.noise)) * abs(span)
            scores.append((perceived - normal) / span - 1.0 if np.isfinite(perceived) else -np.inf)
        examined = rng.random() < rater.attention
        out[region] = max(scores) if examined else -np.inf
    return out


def rate(signs: dict[str, float], rater: Rater, bias: dict[str, float], rng: np.random.Generator) -> list[str] | None:
    """The regions one rater marks for a clip with these signs, given their impression of the
    patient (`bias`); None: nothing unusual (no row)."""
    scores = excess(signs, rater, bias, rng)
    marked = [region for region in REGION_NAMES if scores[region] > 0]
    if marked:
        return marked
    if rng.random() < rater.nothing_unusual or not np.isfinite(max(scores.values())):
        return None
    return [max(scores, key=scores.get)]

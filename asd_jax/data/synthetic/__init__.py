"""The built-in synthetic cohort: realistic side-view gait of ASD, DHS, LCS, HipOA and normal
walkers, written in exactly the files a clinic would bring (see docs/synthetic_cohort.md)."""

from asd_jax.data.synthetic.camera import simulate_walk
from asd_jax.data.synthetic.cohort import generate_cohort
from asd_jax.data.synthetic.kinematics import WalkSpec
from asd_jax.data.synthetic.params import DIAGNOSES, CohortParams

__all__ = ["CohortParams", "DIAGNOSES", "WalkSpec", "generate_cohort", "simulate_walk"]

"""Shared fixtures. Tests run on CPU; multi-device tests set XLA_FLAGS in their own subprocess."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from asd_jax.data.synthetic import CohortParams, generate_cohort

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("JAX_PLATFORMS", "cpu")

TINY_COHORT = CohortParams(num_patients=15, num_clips=60, seed=3)


@pytest.fixture(scope="session")
def tiny_cohort(tmp_path_factory) -> Path:
    """A small synthetic cohort folder in the user input format, made once per test session."""
    return generate_cohort(tmp_path_factory.mktemp("cohort"), TINY_COHORT)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    """One TFDS data dir per test process, so the smoke cohort is built once."""
    return tmp_path_factory.mktemp("tfds")

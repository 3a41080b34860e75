"""Shared fixtures. Tests run on CPU; multi-device tests set XLA_FLAGS in their own subprocess."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# Most tests launch the smoke config in a subprocess, each compiling the same steps: JAX's
# persistent compilation cache, shared by every process of the session (and kept between local
# sessions), halves such a run. A cached executable is the one that would have been compiled, so
# no number changes.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(Path(tempfile.gettempdir()) / "asd_jax_tests_xla_cache"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")


def cpu_devices_env(devices: int) -> dict[str, str]:
    """The environment of a subprocess that sees `devices` CPU devices. XLA:CPU aborts a collective
    whose devices wait over 40 s for each other, which eight devices on two busy cores reached
    (the suite beside a training run); these tests wait up to ten minutes instead."""
    flags = f"--xla_force_host_platform_device_count={devices} --xla_cpu_collective_call_terminate_timeout_seconds=600"
    return dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=flags)

from asd_jax.data.synthetic import CohortParams, generate_cohort  # noqa: E402  (after the environment it reads)

TINY_COHORT = CohortParams(num_patients=15, num_clips=60, seed=3)


@pytest.fixture(scope="session")
def tiny_cohort(tmp_path_factory) -> Path:
    """A small synthetic cohort folder in the user input format, made once per test session."""
    return generate_cohort(tmp_path_factory.mktemp("cohort"), TINY_COHORT)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    """One TFDS data dir per test process, so the smoke cohort is built once."""
    return tmp_path_factory.mktemp("tfds")

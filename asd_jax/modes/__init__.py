"""Layer 5: what each `launch.py --mode` does, one module per mode, dispatched here.

Kept out of launch.py so tests call the same functions users do. Every mode takes an
`Invocation` and returns what launch.py prints as JSON (or None when it printed already).
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ml_collections

from asd_jax.base.errors import UserError
from asd_jax.training import distributed


@dataclasses.dataclass(frozen=True)
class Invocation:
    """A mode's inputs: the config, the run directory, and the flags some modes take."""

    config: ml_collections.ConfigDict | None  # None when no --config was given (pose, predict)
    workdir: Path | None
    weights: Path | None = None  # --mode=import
    input: Path | None = None  # --mode=pose / predict: videos or a keypoint folder
    out: Path | None = None  # --mode=pose / predict: where to write


MODES = ("train", "eval", "cv", "explain", "prepare", "export", "import", "pose", "predict", "bench")
_MODULES = {"eval": "evaluate", "import": "import_weights"}  # where a mode's module is not named after it


def _mode_function(mode: str) -> Callable[[Invocation], dict[str, Any] | None]:
    """Only the chosen mode's module is imported: bench and export pull in torch, pose mediapipe,
    and every launch would otherwise pay for them."""
    return importlib.import_module(f"asd_jax.modes.{_MODULES.get(mode, mode)}").run


__all__ = ["MODES", "Invocation", "UserError", "run"]


CONFIG_OPTIONAL = ("pose", "predict", "bench")  # modes that run without --config


def run(mode: str, invocation: Invocation) -> dict[str, Any] | None:
    """Runs one mode (joining the distributed runtime first when the config asks for it)."""
    if mode not in MODES:
        raise UserError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
    if invocation.config is None and mode not in CONFIG_OPTIONAL:
        raise UserError(f"--mode={mode} needs --config=configs/<model>.py")
    if invocation.config is not None:
        distributed.maybe_initialize(invocation.config.train)  # before anything touches a JAX backend
    return _mode_function(mode)(invocation)

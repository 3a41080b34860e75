"""What each `launch.py --mode` does; kept out of launch.py so tests call the same functions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ml_collections


def user_errors() -> tuple[type[Exception], ...]:
    """Errors whose message says what to fix; launch.py prints them without a traceback."""
    from asd_jax import convert, export, splits, train, user_folder

    return (
        user_folder.UserDataError,
        splits.LeakageError,
        convert.ConversionError,
        export.ParityError,
        train.NonFiniteLossError,
        FileNotFoundError,
        FileExistsError,
    )


def run(mode: str, config: ml_collections.ConfigDict, workdir: Path, weights: Path | None = None) -> dict[str, Any] | None:
    """Runs one mode; returns what should be printed as JSON (or None when it printed already)."""
    from asd_jax import distributed

    distributed.maybe_initialize(config.train)  # before anything touches a JAX backend
    if mode == "prepare":
        from asd_jax import prepare

        print(prepare.summary_text(config, workdir))
        return None
    if mode == "train":
        from asd_jax import train

        report = train.train_and_evaluate(config, workdir)
        return report["headline"]
    if mode == "eval":
        from asd_jax import evaluation

        return evaluation.evaluate_workdir(config, workdir)["headline"]
    if mode == "cv":
        from asd_jax import cross_validation

        return cross_validation.run_cv(config, workdir)["levels"]["patient"]["metrics"]
    if mode == "explain":
        from asd_jax import explain

        return explain.explain(config, workdir)
    if mode == "export":
        from asd_jax import export

        return export.export_workdir(config, workdir)
    if mode == "import":
        from asd_jax import export

        if weights is None:
            raise FileNotFoundError("--mode=import needs --weights=<a state_dict .pt or .safetensors file>")
        return export.import_weights(config, workdir, weights)
    raise ValueError(f"unknown mode {mode!r}")

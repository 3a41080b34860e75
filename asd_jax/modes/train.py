"""`--mode=train` (the default): one fold trained, selected on validation, tested once."""

from __future__ import annotations

from typing import Any

from asd_jax.evaluation import protocol


def run(invocation) -> dict[str, Any]:
    return protocol.train_and_evaluate(invocation.config, invocation.workdir)["headline"]

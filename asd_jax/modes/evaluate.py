"""`--mode=eval`: re-test a run's selected checkpoint, on its own test patients or on other data."""

from __future__ import annotations

from typing import Any

from asd_jax.evaluation import protocol


def run(invocation) -> dict[str, Any]:
    return protocol.evaluate_run(invocation.config, invocation.workdir)["headline"]

"""Scalars to `metrics.jsonl` (easy to parse) and TensorBoard event files (easy to look at).

tensorboardX writes event files without TensorFlow. Only process 0 writes; the others get a
writer that drops everything, so callers never branch on the process index.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import jax


class MetricWriter:
    def __init__(self, workdir: str | Path, *, enabled: bool | None = None):
        self.enabled = jax.process_index() == 0 if enabled is None else enabled
        self._jsonl = None
        self._tb = None
        if self.enabled:
            from tensorboardX import SummaryWriter

            workdir = Path(workdir)
            workdir.mkdir(parents=True, exist_ok=True)
            self._jsonl = (workdir / "metrics.jsonl").open("a")
            self._tb = SummaryWriter(str(workdir / "tensorboard"))

    def write(self, step: int, scalars: dict[str, Any]) -> None:
        """One JSON line per call; non-numeric values go to the JSON line only."""
        if not self.enabled:
            return
        record = {"step": int(step), **{k: _plain(v) for k, v in scalars.items()}}
        self._jsonl.write(json.dumps(record) + "\n")
        self._jsonl.flush()
        for key, value in record.items():
            if key != "step" and isinstance(value, float) and math.isfinite(value):
                self._tb.add_scalar(key, value, int(step))

    def close(self) -> None:
        if self.enabled:
            self._jsonl.close()
            self._tb.close()


def _plain(value: Any) -> Any:
    if isinstance(value, (str, bool, int)) or value is None:
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)

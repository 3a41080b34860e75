r"""Temporal CNN baseline (no clinical prior), same data, trainer and evaluation as crossattn.

  python launch.py --config configs/cnn.py
  python launch.py --config configs/cnn.py --mode=cv
  python launch.py --config configs/cnn.py:smoke --workdir /tmp/cnn_smoke
"""

from __future__ import annotations

import ml_collections

from configs import crossattn


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config = crossattn.get_config(arg)
    config.model = ml_collections.ConfigDict()
    config.model.name = "cnn"
    config.model.dim = 16 if arg == "smoke" else 96
    config.model.depth = 2 if arg == "smoke" else 4
    config.model.kernel = 9
    config.model.dropout = 0.1
    config.model.inputs = "joints"  # and any of bones, motion, angles (asd_jax/base/architecture.py)
    config.model.pooling = "mean"  # over time: 'mean', or 'stats' (mean, std and drift over the window)
    return crossattn.pose_only(config)

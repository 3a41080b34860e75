r"""Ablation of crossattn's pooling: `crossattn_clip_diagnoses` whose head reads the mean, spread and
drift of the pose tokens over the present patches (`model.pooling='stats'`), the pooling of the
whole-clip CNN, instead of their mean alone (docs/results.md measures it).

  python launch.py --config configs/crossattn_clip_stats_diagnoses.py --mode=cv
  python launch.py --config configs/crossattn_clip_stats_diagnoses.py:smoke --workdir /tmp/crossattn_clip_stats_smoke
"""

from __future__ import annotations

import ml_collections

from configs import crossattn_clip_diagnoses


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config = crossattn_clip_diagnoses.get_config(arg)
    config.model.pooling = "stats"
    return config

r"""Ablation of crossattn's prior dropout: every training clip keeps its raters' prior (the
reference's recipe), so the model learns to lean on an annotation new clips may lack.

  python launch.py --config configs/crossattn_always_prior.py --mode=cv
  python launch.py --config configs/crossattn_always_prior.py:smoke --workdir /tmp/crossattn_always_prior_smoke
"""

from __future__ import annotations

import ml_collections

from configs import crossattn


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config = crossattn.get_config(arg)
    config.data.augment.prior_dropout = 0.0
    return config

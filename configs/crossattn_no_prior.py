r"""Ablation of crossattn without the clinical prior bias.

  python launch.py --config configs/crossattn_no_prior.py --mode=cv
  python launch.py --config configs/crossattn_no_prior.py:smoke --workdir /tmp/crossattn_no_prior_smoke
"""

from __future__ import annotations

import ml_collections

from configs import crossattn


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config = crossattn.get_config(arg)
    config.model.use_prior = False
    return crossattn.pose_only(config)

r"""Ablation of crossattn without the attention-prior alignment loss.

  python launch.py --config configs/crossattn_no_align.py --mode=cv
  python launch.py --config configs/crossattn_no_align.py:smoke --workdir /tmp/crossattn_no_align_smoke
"""

from __future__ import annotations

import ml_collections

from configs import crossattn


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config = crossattn.get_config(arg)
    config.model.align_weight = 0.0
    return config

r"""Ablation of crossattn without cross-attention (pose tokens self-attend only).

  python launch.py --config configs/crossattn_self_only.py --mode=cv
  python launch.py --config configs/crossattn_self_only.py:smoke --workdir /tmp/crossattn_self_only_smoke
"""

from __future__ import annotations

import ml_collections

from configs import crossattn


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config = crossattn.get_config(arg)
    config.model.cross_attention = False
    return config

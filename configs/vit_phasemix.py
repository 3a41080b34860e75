r"""ViT + PhaseMix baseline (the author's earlier method, on keypoints; no clinical prior).

  python launch.py --config configs/vit_phasemix.py
  python launch.py --config configs/vit_phasemix.py --mode=cv
  python launch.py --config configs/vit_phasemix.py:smoke --workdir /tmp/vit_phasemix_smoke
"""

from __future__ import annotations

import ml_collections

from configs import crossattn


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config = crossattn.get_config(arg)
    config.model = ml_collections.ConfigDict()
    config.model.name = "vit_phasemix"
    config.model.dim = 16 if arg == "smoke" else 64
    config.model.num_heads = 2 if arg == "smoke" else 4
    config.model.depth = 1 if arg == "smoke" else 3
    config.model.mlp_ratio = 2
    config.model.dropout = 0.1
    config.model.inputs = "joints"  # and any of bones, motion, angles (asd_jax/base/architecture.py)
    config.model.max_steps = 6  # steps (half cycles) per window; a 64-frame window holds ~3-4
    config.model.segment = 8  # frames each step is resampled to
    return crossattn.pose_only(config)

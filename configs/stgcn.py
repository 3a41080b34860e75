r"""ST-GCN over the COCO-17 graph (pyskl / MMAction2 style), the field's standard skeleton model.

  python launch.py --config configs/stgcn.py
  python launch.py --config configs/stgcn.py --mode=cv
  python launch.py --config configs/stgcn.py:smoke --workdir /tmp/stgcn_smoke
"""

from __future__ import annotations

import ml_collections

from configs import crossattn


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config = crossattn.get_config(arg)
    config.model = ml_collections.ConfigDict()
    config.model.name = "stgcn"
    config.model.dim = 8 if arg == "smoke" else 32  # channels of the first block; doubles twice
    config.model.depth = 2 if arg == "smoke" else 6
    config.model.dropout = 0.1
    config.model.sync_batch_norm = True  # BatchNorm statistics over all devices while training
    return config

r"""ST-GCN over the COCO-17 graph (pyskl / MMAction2 style), the field's standard skeleton model.

  python launch.py --config configs/stgcn.py
  python launch.py --config configs/stgcn.py --mode=cv
  python launch.py --config configs/stgcn.py:smoke --workdir /tmp/stgcn_smoke

Variant `compact` (16 -> 32 channels, 4 blocks) trains ~4x faster on a CPU; docs/results.md uses it, and
docs/results_gpu.md trains the default size on a GPU.
"""

from __future__ import annotations

import ml_collections

from configs import crossattn


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    if arg not in (None, "smoke", "compact"):
        raise ValueError(f"unknown config variant {arg!r}; expected 'smoke', 'compact' or nothing")
    config = crossattn.get_config("smoke" if arg == "smoke" else None)
    config.model = ml_collections.ConfigDict()
    config.model.name = "stgcn"
    config.model.dim = {"smoke": 8, "compact": 16}.get(arg, 32)  # channels of the first block; doubles once, halfway
    config.model.depth = {"smoke": 2, "compact": 4}.get(arg, 6)
    config.model.dropout = 0.1
    config.model.inputs = "joints"  # and any of bones, motion, angles (asd_jax/base/architecture.py)
    config.model.sync_batch_norm = True  # BatchNorm statistics over all devices while training
    return crossattn.pose_only(config)

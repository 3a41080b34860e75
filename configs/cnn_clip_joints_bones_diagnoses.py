r"""The best network (configs/cnn_clip_diagnoses.py) reading the joint and the bone stream together,
as channels of one input (early fusion; the late fusion of pyskl's multi-stream ensemble scored
between its streams, docs/results.md): where a joint is and the segment it ends.

  python launch.py --config configs/cnn_clip_joints_bones_diagnoses.py --mode=cv
  python launch.py --config configs/cnn_clip_joints_bones_diagnoses.py:smoke --workdir /tmp/cnn_clip_joints_bones_smoke
"""

from __future__ import annotations

import ml_collections

from configs import cnn_clip_diagnoses


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config = cnn_clip_diagnoses.get_config(arg)
    config.model.inputs = "joints,bones"
    return config

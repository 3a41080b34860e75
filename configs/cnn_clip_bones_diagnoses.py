r"""The best network (configs/cnn_clip_diagnoses.py) reading bone vectors (each joint minus its parent)
instead of joint positions, pyskl's bone stream: a segment's direction and length, not where it is.

  python launch.py --config configs/cnn_clip_bones_diagnoses.py --mode=cv
  python launch.py --config configs/cnn_clip_bones_diagnoses.py:smoke --workdir /tmp/cnn_clip_bones_smoke
"""

from __future__ import annotations

import ml_collections

from configs import cnn_clip_diagnoses


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config = cnn_clip_diagnoses.get_config(arg)
    config.model.inputs = "bones"
    return config

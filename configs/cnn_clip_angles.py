r"""Ablation of cnn_clip's inputs: the clinical segment angles (trunk, head, thighs, shanks, arms) and
their change beside the joint positions and velocities, so the drift pooling reads a lean directly.

  python launch.py --config configs/cnn_clip_angles.py --mode=cv
  python launch.py --config configs/cnn_clip_angles.py:smoke --workdir /tmp/cnn_clip_angles_smoke
"""

from __future__ import annotations

import ml_collections

from configs import cnn_clip


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config = cnn_clip.get_config(arg)
    config.model.inputs = "joints,angles"
    return config

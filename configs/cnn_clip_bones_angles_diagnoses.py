r"""The bone-stream network (configs/cnn_clip_bones_diagnoses.py) also given the clinical segment angles
(trunk, head, thighs, shanks, upper arms from the vertical) and their change: the lean and the
swing a clinician reads, as numbers rather than as directions the network must learn to compare.

  python launch.py --config configs/cnn_clip_bones_angles_diagnoses.py --mode=cv
  python launch.py --config configs/cnn_clip_bones_angles_diagnoses.py:smoke --workdir /tmp/cnn_clip_bones_angles_smoke
"""

from __future__ import annotations

import ml_collections

from configs import cnn_clip_bones_diagnoses


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config = cnn_clip_bones_diagnoses.get_config(arg)
    config.model.inputs = "bones,angles"
    return config

r"""The bone-stream network (configs/cnn_clip_bones_diagnoses.py) also reading the clinical segment
angles per frame (trunk, neck, thighs, shanks; asd_jax/base/architecture.py SEGMENTS) and their
change: the lean and the knee and hip flexion a clinician measures, given to it directly.

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

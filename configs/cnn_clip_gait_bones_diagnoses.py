r"""The bone-stream CNN (configs/cnn_clip_bones_diagnoses.py, the best pose-only network in
docs/seeds.md) that also reads the clip's clinical gait features, as the gait-stream crossattn
does: a head over the pooled bone stream and a head over the features, logits added, each also
trained to diagnose on its own. Still pose-only: the features are measured from the same poses.

  python launch.py --config configs/cnn_clip_gait_bones_diagnoses.py --mode=cv
  python launch.py --config configs/cnn_clip_gait_bones_diagnoses.py:smoke --workdir /tmp/cnn_gait_bones_smoke
"""

from __future__ import annotations

import ml_collections

from asd_jax.base.gait import CLINICAL_FEATURE_NAMES
from configs import cnn_clip_bones_diagnoses


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config = cnn_clip_bones_diagnoses.get_config(arg)
    config.model.gait_features = len(CLINICAL_FEATURE_NAMES)
    config.model.gait_fusion = "sum"
    return config

r"""crossattn over whole clips (configs/crossattn_clip_diagnoses.py) that also reads the clip's
clinical gait features (cadence, trunk and head lean and their drift, per-cycle hip and knee
measures, step length, left/right asymmetry; asd_jax/base/gait.py), measured on the whole
clip at 30 fps and standardised by the training patients' median and spread: a pose head and a
gait head whose logits add up, each also trained to diagnose on its own.

  python launch.py --config configs/crossattn_clip_gait_diagnoses.py --mode=cv
  python launch.py --config configs/crossattn_clip_gait_diagnoses.py:smoke --workdir /tmp/crossattn_gait_smoke
"""

from __future__ import annotations

import ml_collections

from asd_jax.base.gait import CLINICAL_FEATURE_NAMES
from configs import crossattn_clip_diagnoses


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config = crossattn_clip_diagnoses.get_config(arg)
    config.model.gait_features = len(CLINICAL_FEATURE_NAMES)  # the head reads them all
    # 'sum': a head each for the pose and the features, logits added, each head also trained on its
    # own; 'concat': one head over both, which left the diagnosis to the features (docs/results.md)
    config.model.gait_fusion = "sum"
    return config

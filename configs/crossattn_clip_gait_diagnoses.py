r"""crossattn over whole clips (configs/crossattn_clip_diagnoses.py) whose head also reads the clip's
clinical gait features (cadence, trunk and head lean and their drift, per-cycle hip and knee
measures, step length, left/right asymmetry; asd_jax/data/gait_features.py), measured on the whole
clip at 30 fps and standardised by the training patients' median and spread.

  python launch.py --config configs/crossattn_clip_gait_diagnoses.py --mode=cv
  python launch.py --config configs/crossattn_clip_gait_diagnoses.py:smoke --workdir /tmp/crossattn_gait_smoke
"""

from __future__ import annotations

import ml_collections

from asd_jax.data.gait_features import CLINICAL_FEATURE_NAMES
from configs import crossattn_clip_diagnoses


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config = crossattn_clip_diagnoses.get_config(arg)
    config.model.gait_features = len(CLINICAL_FEATURE_NAMES)  # the head reads them all
    return config

r"""The full-size ST-GCN over whole clips (configs/stgcn_clip_diagnoses.py) on pyskl's bone stream,
reading the clip's clinical gait features beside it as the best pose-only network does
(configs/cnn_clip_gait_bones_diagnoses.py): a head over the pooled graph features and a head over
the gait features, logits added, each also trained to diagnose on its own. Still pose-only: the
features are measured from the same poses. At its default size it wants a GPU (docs/seeds_gpu.md).

  python launch.py --config configs/stgcn_clip_gait_bones_diagnoses.py --mode=cv
  python launch.py --config configs/stgcn_clip_gait_bones_diagnoses.py:smoke --workdir /tmp/stgcn_gait_bones_smoke

Variants smoke and compact as in configs/stgcn.py.
"""

from __future__ import annotations

import ml_collections

from asd_jax.base.gait import CLINICAL_FEATURE_NAMES
from configs import stgcn_clip_diagnoses


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config = stgcn_clip_diagnoses.get_config(arg)
    config.model.inputs = "bones"
    config.model.gait_features = len(CLINICAL_FEATURE_NAMES)
    config.model.gait_fusion = "sum"
    return config

r"""The features baseline (configs/features.py) trained on the diagnoses the 3-class task merges: LCS and HipOA
are training classes of their own, whose probabilities are summed into LCS_HipOA wherever the model
is read (data.train_classes; docs/results.md measures it against the merged training).

  python launch.py --config configs/features_diagnoses.py --mode=cv
  python launch.py --config configs/features_diagnoses.py:smoke --workdir /tmp/features_diagnoses_smoke
"""

from __future__ import annotations

import ml_collections

from configs import features
from configs.crossattn import DIAGNOSES


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config = features.get_config(arg)
    config.data.train_classes = DIAGNOSES
    return config

r"""The cross-attention model (configs/crossattn.py) trained on the diagnoses the 3-class task merges: LCS and HipOA
are training classes of their own, whose probabilities are summed into LCS_HipOA wherever the model
is read (data.train_classes; docs/results.md measures it against the merged training).

  python launch.py --config configs/crossattn_diagnoses.py --mode=cv
  python launch.py --config configs/crossattn_diagnoses.py:smoke --workdir /tmp/crossattn_diagnoses_smoke
"""

from __future__ import annotations

import ml_collections

from configs import crossattn


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config = crossattn.get_config(arg)
    config.data.train_classes = crossattn.DIAGNOSES
    return config

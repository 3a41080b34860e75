r"""crossattn trained with half of its clips' priors replaced by the unannotated prior, so that one
model serves clips with and without a clinician's region annotation.

  python launch.py --config configs/crossattn_prior_dropout.py --mode=cv
  python launch.py --config configs/crossattn_prior_dropout.py:smoke --workdir /tmp/crossattn_prior_dropout_smoke
"""

from __future__ import annotations

import ml_collections

from configs import crossattn


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config = crossattn.get_config(arg)
    config.data.augment.prior_dropout = 0.5
    return config

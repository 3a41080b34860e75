r"""The `features` baseline: clinical gait features per clip and a scikit-learn ensemble, selected on
the validation patients like every model. The bar every deep model must clear.

  python launch.py --config configs/features.py
  python launch.py --config configs/features.py --mode=cv
  python launch.py --config configs/features.py:smoke --workdir /tmp/features_smoke
"""

from __future__ import annotations

import ml_collections

from configs import crossattn


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config = crossattn.get_config(arg)
    config.model = ml_collections.ConfigDict()
    config.model.name = "features"
    config.model.estimators = "random_forest,gradient_boosting"  # families tried, each with its grid below
    config.model.min_samples_leaf = "1,4"  # random forest grid
    config.model.max_depth = "3,0"  # gradient boosting grid (0 = unlimited)
    config.model.num_trees = 40 if arg == "smoke" else 400
    config.model.learning_rate = 0.05  # gradient boosting
    return crossattn.pose_only(config)

r"""crossattn over whole clips, trained on the diagnoses the 3-class task merges: each example is an
entire walk (up to 10 s at 10 fps, shorter clips padded with missing frames that no attention or
pooling reads, `model.mask_missing`), so the prior sits on the whole-clip pose stream that lifted
the CNN (`cnn_clip`), with LCS and HipOA as training classes of their own (data.train_classes).

  python launch.py --config configs/crossattn_clip_diagnoses.py --mode=cv
  python launch.py --config configs/crossattn_clip_diagnoses.py:smoke --workdir /tmp/crossattn_clip_smoke
"""

from __future__ import annotations

import ml_collections

from configs import crossattn


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config = crossattn.get_config(arg)
    config.data.fps = 10.0  # a gait cycle (~1.1 s) still spans ~11 frames, ~3 patches of 4
    config.data.window = 32 if arg == "smoke" else 100  # the cohort's longest clips: 10 s
    config.data.eval_stride = config.data.window
    config.data.pad = "missing"
    config.data.train_classes = crossattn.DIAGNOSES
    config.model.mask_missing = True
    return config

r"""ST-GCN (configs/stgcn_diagnoses.py) over whole clips: each example is an entire walk (up to 10 s
at 10 fps, shorter clips padded with missing frames), pooled into mean, spread and drift over the
present frames, the two levers that lifted the temporal CNN most (configs/cnn_clip_diagnoses.py).

  python launch.py --config configs/stgcn_clip_diagnoses.py --mode=cv
  python launch.py --config configs/stgcn_clip_diagnoses.py:smoke --workdir /tmp/stgcn_clip_diagnoses_smoke

Variants smoke and compact as in configs/stgcn.py.
"""

from __future__ import annotations

import ml_collections

from configs import stgcn_diagnoses


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config = stgcn_diagnoses.get_config(arg)
    config.data.fps = 10.0  # a gait cycle (~1.1 s) still spans ~11 frames
    config.data.window = 32 if arg == "smoke" else 100  # the cohort's longest clips: 10 s; a multiple of the blocks' strides
    config.data.eval_stride = config.data.window
    config.data.pad = "missing"
    config.model.pooling = "stats"
    return config

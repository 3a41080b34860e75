r"""Whole-clip temporal CNN: each example is an entire walk (up to 10 s at 10 fps, shorter clips
padded with missing frames), pooled into mean, spread and drift over the present frames, so a lean
or a stride that changes over the walk is visible to it (a 64-frame window holds about 2 s of it).

  python launch.py --config configs/cnn_clip.py --mode=cv
  python launch.py --config configs/cnn_clip.py:smoke --workdir /tmp/cnn_clip_smoke
"""

from __future__ import annotations

import ml_collections

from configs import cnn


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config = cnn.get_config(arg)
    config.data.fps = 10.0  # a gait cycle (~1.1 s) still spans ~11 frames
    config.data.window = 32 if arg == "smoke" else 100  # the cohort's longest clips: 10 s
    config.data.eval_stride = config.data.window
    config.data.pad = "missing"
    config.model.pooling = "stats"
    return config

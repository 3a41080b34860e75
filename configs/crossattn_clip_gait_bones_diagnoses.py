r"""The gait-stream crossattn (configs/crossattn_clip_gait_diagnoses.py) whose pose stream reads bone
vectors (each joint minus its parent) instead of joint positions: the input that lifted the
whole-clip CNN most (docs/seeds.md).

  python launch.py --config configs/crossattn_clip_gait_bones_diagnoses.py --mode=cv
  python launch.py --config configs/crossattn_clip_gait_bones_diagnoses.py:smoke --workdir /tmp/crossattn_gait_bones_smoke
"""

from __future__ import annotations

import ml_collections

from configs import crossattn_clip_gait_diagnoses


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config = crossattn_clip_gait_diagnoses.get_config(arg)
    config.model.inputs = "bones"
    return config

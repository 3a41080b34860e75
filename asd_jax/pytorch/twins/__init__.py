"""PyTorch twins of the keypoint models, for deployment and comparison in PyTorch stacks.

Each twin mirrors its Flax model's module tree and names, so weights convert by layout rules alone
(asd_jax/pytorch/convert.py), and its arithmetic, so the same inputs give the same logits. Twins
are built from the same `config.model` fields as the Flax models (base.architecture.model_kwargs).
They are exact at inference; their dropout is plain torch dropout, so fine-tuning in PyTorch works
but does not replay JAX training bit for bit.

`model(pose [B, T, 17, 3], prior [B, 5]) -> logits [B, C]`, poses normalised as the data pipeline
does (asd_jax/base/preprocess.py). `model.window_multiple`: an exported (ONNX) graph takes any
window length T that is a multiple of it (0: only the length it was exported with). Imports
with torch and numpy alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from asd_jax.base.architecture import model_kwargs
from asd_jax.base.errors import ConfigError
from asd_jax.pytorch.twins.cnn import TemporalCNNTwin
from asd_jax.pytorch.twins.crossattn import CrossAttnTwin
from asd_jax.pytorch.twins.stgcn import STGCNTwin
from asd_jax.pytorch.twins.vit_phasemix import ViTPhaseMixTwin

TWINS: dict[str, type[nn.Module]] = {
    "crossattn": CrossAttnTwin,
    "cnn": TemporalCNNTwin,
    "stgcn": STGCNTwin,
    "vit_phasemix": ViTPhaseMixTwin,
}


def build_twin(model_config: Mapping[str, Any], num_classes: int) -> nn.Module:
    """The twin of `model_config["name"]` (a config.model), in eval mode."""
    name = model_config["name"]
    if name not in TWINS:
        raise ConfigError(f"model.name={name!r} has no PyTorch twin; twins exist for {', '.join(TWINS)}")
    twin_class = TWINS[name]
    return twin_class(**model_kwargs(model_config, twin_class, supplied=("num_classes",)), num_classes=num_classes).eval()

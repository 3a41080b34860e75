"""Layer 2: the keypoint models (Flax NNX), picked by `config.model.name` from `MODELS`.

Every model maps normalised poses [B, T, 17, 3] and clinical priors [B, 5] to a `ModelOutput`,
and is constructed from `config.model`'s fields (`base.architecture.model_kwargs`), exactly as its
PyTorch twin (`asd_jax.pytorch.twins.TWINS`) is.
"""

from __future__ import annotations

import jax.numpy as jnp
import ml_collections
from flax import nnx

from asd_jax.base.architecture import model_kwargs
from asd_jax.base.errors import ConfigError
from asd_jax.base.labels import model_outputs, task_groups
from asd_jax.models import cnn, crossattn, stgcn, vit_phasemix
from asd_jax.models.output import ModelOutput, reported_logits

MODELS: dict[str, type[nnx.Module]] = {
    "crossattn": crossattn.CrossAttnModel,
    "cnn": cnn.TemporalCNN,
    "stgcn": stgcn.STGCN,
    "vit_phasemix": vit_phasemix.ViTPhaseMix,
}
COMPUTE_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}

__all__ = ["MODELS", "ModelOutput", "build_model", "compute_dtype", "gait_inputs", "reads_gait_features", "reported_logits"]


def gait_inputs(batch: dict) -> dict:
    """The model's keyword arguments for a batch's gait features: none when the batch has none."""
    return {"features": batch["features"]} if "features" in batch else {}


def reads_gait_features(config: ml_collections.ConfigDict) -> bool:
    """Whether the model of `config` reads its clips' clinical gait features (`model.gait_features`:
    how many), so that the input pipeline must carry them."""
    return bool(config.model.get("gait_features", False))


def compute_dtype(config: ml_collections.ConfigDict):
    """The activation dtype of `config.train.compute_dtype`; parameters always stay float32."""
    if config.train.compute_dtype not in COMPUTE_DTYPES:
        raise ConfigError(f"train.compute_dtype={config.train.compute_dtype!r}: expected one of {list(COMPUTE_DTYPES)}")
    return COMPUTE_DTYPES[config.train.compute_dtype]


def build_model(config: ml_collections.ConfigDict, num_classes: int, rngs: nnx.Rngs) -> nnx.Module:
    """Instantiates `config.model.name` from the fields of `config.model`, for a task of
    `num_classes` reported classes. Trained on finer classes (`data.train_classes`), its head has
    one output per training class and `model.class_groups` (static) says how `reported_logits`
    merges them."""
    name = config.model.name
    if name not in MODELS:
        raise ConfigError(f"model.name={name!r}: expected one of {', '.join(MODELS)}")
    model_class = MODELS[name]
    groups = task_groups(config.data)
    if groups and max(groups) + 1 != num_classes:
        raise ConfigError(f"data.train_classes merges into {max(groups) + 1} classes, but the task has {num_classes}")
    kwargs = model_kwargs(config.model, model_class, supplied=("num_classes", "dtype", "rngs"))
    model = model_class(**kwargs, num_classes=model_outputs(config.data, num_classes), dtype=compute_dtype(config), rngs=rngs)
    model.class_groups = groups
    return model

"""The PyTorch side of modes/bench.py: the twin of a config trained by a plain step.

The step is what a PyTorch user would write for the same recipe: cross-entropy with the config's
label smoothing, backward, clip_grad_norm_ to `optim.grad_clip`, AdamW with weight decay on
matrices only (as training/optim.py). It starts from the JAX model's initial weights, converted
(pytorch/convert.py), so both sides time the same network. Not timed on this side: the JAX step's
learning-rate schedule, non-finite guard and, for crossattn, its attention-alignment loss (cheap
next to the model).

On a CUDA GPU (when JAX runs on one) the twin runs there too, each step synchronised so its time
is the device's; with `train.compute_dtype='bfloat16'` its forward runs under torch.autocast in
bfloat16, the PyTorch form of the JAX models' bfloat16 activations over float32 parameters.
"""

from __future__ import annotations

from typing import Any

import ml_collections
import numpy as np
import torch
from flax import nnx

from asd_jax.models import build_model
from asd_jax.models.variables import flat_state
from asd_jax.pytorch import convert
from asd_jax.pytorch.twins import build_twin


def initial_weights(config: ml_collections.ConfigDict, num_classes: int) -> dict[str, np.ndarray]:
    """The torch state_dict of the JAX model `training/setup.create_state` starts from (same seed)."""
    model = build_model(config, num_classes, nnx.Rngs(params=config.seed))
    return convert.flax_to_torch(flat_state(nnx.state(model)))


def torch_device() -> torch.device:
    """CUDA when JAX computes on a GPU (both sides on one kind of chip), else the CPU."""
    import jax

    return torch.device("cuda" if jax.default_backend() == "gpu" and torch.cuda.is_available() else "cpu")


def make_step(config: ml_collections.ConfigDict, twin: torch.nn.Module, model: Any, batch: dict[str, torch.Tensor]):
    """One optimiser step of `model` (the twin, or its torch.compile) on `batch`, returning once
    the device has finished it."""
    decay = [p for p in twin.parameters() if p.ndim >= 2]
    no_decay = [p for p in twin.parameters() if p.ndim < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.optim.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.optim.learning_rate,
    )

    device = batch["pose"].device
    bfloat16 = config.train.compute_dtype == "bfloat16"

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bfloat16):
            logits = model(batch["pose"], batch["prior"])
            loss = torch.nn.functional.cross_entropy(logits.float(), batch["label"], label_smoothing=config.optim.label_smoothing)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(twin.parameters(), config.optim.grad_clip)
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    return step


def twin_step(config: ml_collections.ConfigDict, num_classes: int, weights: dict[str, np.ndarray],
              batch: dict[str, np.ndarray], *, compiled: bool):
    """The twin's train step on `batch`, eager or under torch.compile, for bench.timed."""
    device = torch_device()
    twin = build_twin(config.model, num_classes)
    twin.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in weights.items()})
    twin.to(device).train()
    tensors = {k: torch.from_numpy(np.ascontiguousarray(v)).to(device) for k, v in batch.items()}
    tensors["label"] = tensors["label"].long()
    return make_step(config, twin, torch.compile(twin) if compiled else twin, tensors)

"""Twin of asd_jax/models/cnn.py."""

from __future__ import annotations

import torch
from torch import nn

from asd_jax.base.architecture import input_channels
from asd_jax.base.skeleton import NUM_JOINTS
from asd_jax.pytorch.twins.layers import LAYER_NORM_EPS, conv_time, gelu, model_inputs


def pool_time(x: torch.Tensor, pooling: str) -> torch.Tensor:
    """asd_jax.models.cnn.pool_time in torch (std without Bessel's correction, as jnp.std)."""
    mean = x.mean(dim=1)
    if pooling == "mean":
        return mean
    third = max(1, x.shape[1] // 3)
    drift = x[:, -third:].mean(dim=1) - x[:, :third].mean(dim=1)
    return torch.cat([mean, x.std(dim=1, unbiased=False), drift], dim=-1)


class TemporalCNNTwin(nn.Module):
    def __init__(self, *, num_classes: int, dim: int, depth: int, kernel: int, dropout: float, inputs: str = "joints",
                 pooling: str = "mean"):
        super().__init__()
        self.inputs, self.pooling = inputs, pooling
        self.window_multiple = 2 ** (depth // 2)  # window lengths an exported graph takes: every stride-2 conv halves
        per_joint, per_frame = input_channels(inputs)
        self.stem = nn.Conv1d(NUM_JOINTS * per_joint + per_frame, dim, kernel)
        self.convs = nn.ModuleList([nn.Conv1d(dim, dim, kernel, stride=2 if i % 2 else 1) for i in range(depth)])
        self.norms = nn.ModuleList([nn.LayerNorm(dim, eps=LAYER_NORM_EPS) for _ in range(depth)])
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(dim * (3 if pooling == "stats" else 1), num_classes)

    def forward(self, pose: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        x = conv_time(self.stem, model_inputs(pose, self.inputs))
        for conv, norm in zip(self.convs, self.norms):
            y = self.drop(gelu(conv_time(conv, norm(x))))
            x = y + (x if y.shape == x.shape else x[:, :: x.shape[1] // y.shape[1]][:, : y.shape[1]])
        return self.head(pool_time(x, self.pooling))

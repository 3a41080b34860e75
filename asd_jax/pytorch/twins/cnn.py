"""Twin of asd_jax/models/cnn.py."""

from __future__ import annotations

import torch
from torch import nn

from asd_jax.base.architecture import NUM_FEATURES
from asd_jax.base.skeleton import NUM_JOINTS
from asd_jax.pytorch.twins.layers import LAYER_NORM_EPS, conv_time, gelu, joint_features


class TemporalCNNTwin(nn.Module):
    def __init__(self, *, num_classes: int, dim: int, depth: int, kernel: int, dropout: float):
        super().__init__()
        self.stem = nn.Conv1d(NUM_JOINTS * NUM_FEATURES, dim, kernel)
        self.convs = nn.ModuleList([nn.Conv1d(dim, dim, kernel, stride=2 if i % 2 else 1) for i in range(depth)])
        self.norms = nn.ModuleList([nn.LayerNorm(dim, eps=LAYER_NORM_EPS) for _ in range(depth)])
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, pose: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        features = joint_features(pose)
        x = conv_time(self.stem, features.reshape(*features.shape[:2], -1))
        for conv, norm in zip(self.convs, self.norms):
            y = self.drop(gelu(conv_time(conv, norm(x))))
            x = y + (x if y.shape == x.shape else x[:, :: x.shape[1] // y.shape[1]][:, : y.shape[1]])
        return self.head(x.mean(dim=1))

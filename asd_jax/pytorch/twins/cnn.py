"""Twin of asd_jax/models/cnn.py."""

from __future__ import annotations

import torch
from torch import nn

from asd_jax.base.architecture import input_channels
from asd_jax.base.skeleton import MIN_SCORE, NUM_JOINTS
from asd_jax.pytorch.twins.layers import LAYER_NORM_EPS, classifier_heads, classify, conv_time, gelu, model_inputs, pool_time


class TemporalCNNTwin(nn.Module):
    def __init__(self, *, num_classes: int, dim: int, depth: int, kernel: int, dropout: float, inputs: str = "joints",
                 pooling: str = "mean", gait_features: int = 0, gait_fusion: str = "concat"):
        super().__init__()
        self.inputs, self.pooling = inputs, pooling
        self.window_multiple = 2 ** (depth // 2)  # window lengths an exported graph takes: every stride-2 conv halves
        per_joint, per_frame = input_channels(inputs)
        self.stem = nn.Conv1d(NUM_JOINTS * per_joint + per_frame, dim, kernel)
        self.convs = nn.ModuleList([nn.Conv1d(dim, dim, kernel, stride=2 if i % 2 else 1) for i in range(depth)])
        self.norms = nn.ModuleList([nn.LayerNorm(dim, eps=LAYER_NORM_EPS) for _ in range(depth)])
        self.drop = nn.Dropout(dropout)
        self.gait, self.head, self.gait_head = classifier_heads(
            dim * (3 if pooling == "stats" else 1), num_classes, dim, dropout, gait_features=gait_features, gait_fusion=gait_fusion
        )

    def forward(self, pose: torch.Tensor, prior: torch.Tensor, features: torch.Tensor | None = None) -> torch.Tensor:
        x = conv_time(self.stem, model_inputs(pose, self.inputs))
        present = (pose[..., 2] >= MIN_SCORE).any(dim=-1)
        for conv, norm in zip(self.convs, self.norms):
            y = self.drop(gelu(conv_time(conv, norm(x))))
            if y.shape != x.shape:
                step = x.shape[1] // y.shape[1]
                x, present = x[:, ::step][:, : y.shape[1]], present[:, ::step][:, : y.shape[1]]
            x = y + x
        return classify(pool_time(x, self.pooling, present), features, head=self.head, encoder=self.gait, gait_head=self.gait_head)

"""Twin of asd_jax/models/stgcn.py."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from asd_jax.base.architecture import block_plan, input_channels, spatial_partitions
from asd_jax.base.skeleton import MIN_SCORE, NUM_JOINTS
from asd_jax.pytorch.twins.layers import BatchNormLast, classifier_heads, classify, conv_time, frame_inputs, joint_inputs, pool_time


class STGCNBlockTwin(nn.Module):
    def __init__(self, in_dim: int, out_dim: int, stride: int, dropout: float):
        super().__init__()
        self.out_dim, self.stride = out_dim, stride
        self.gcn = nn.Linear(in_dim, 3 * out_dim, bias=False)
        self.gcn_norm = BatchNormLast(out_dim)
        self.tcn = nn.Conv2d(out_dim, out_dim, (9, 1), stride=(stride, 1), bias=False)
        self.tcn_norm = BatchNormLast(out_dim)
        self.residual = None if in_dim == out_dim and stride == 1 else nn.Conv2d(in_dim, out_dim, (1, 1), stride=(stride, 1))
        self.drop = nn.Dropout(dropout)
        self.register_buffer("partitions", torch.from_numpy(spatial_partitions()), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.gcn(x).reshape(*x.shape[:3], 3, self.out_dim)
        y = torch.relu(self.gcn_norm(torch.einsum("kij,btjkc->btic", self.partitions, y)))
        y = self.tcn_norm(conv_time(self.tcn, y))
        shortcut = x if self.residual is None else conv_time(self.residual, x)
        return self.drop(torch.relu(y + shortcut))


class STGCNTwin(nn.Module):
    def __init__(self, *, num_classes: int, dim: int, depth: int, dropout: float, sync_batch_norm: bool = False,
                 inputs: str = "joints", pooling: str = "mean", gait_features: int = 0, gait_fusion: str = "concat"):
        super().__init__()
        del sync_batch_norm  # how BatchNorm statistics are gathered while training in JAX
        self.inputs, self.pooling = inputs, pooling
        per_joint, per_frame = input_channels(inputs)
        self.channels = per_joint + per_frame
        plan = block_plan(dim, depth, self.channels)
        self.window_multiple = int(np.prod([stride for _, _, stride in plan]))  # window lengths an exported graph takes
        self.input_norm = BatchNormLast(NUM_JOINTS * self.channels)
        self.blocks = nn.ModuleList([STGCNBlockTwin(i, o, s, dropout) for i, o, s in plan])
        self.gait, self.head, self.gait_head = classifier_heads(
            plan[-1][1] * (3 if pooling == "stats" else 1), num_classes, plan[-1][1], dropout,
            gait_features=gait_features, gait_fusion=gait_fusion,
        )

    def forward(self, pose: torch.Tensor, prior: torch.Tensor, features: torch.Tensor | None = None) -> torch.Tensor:
        joints, frame = joint_inputs(pose, self.inputs), frame_inputs(pose, self.inputs)
        graph_inputs = torch.cat([joints, frame[:, :, None].expand(*joints.shape[:3], frame.shape[-1])], dim=-1)
        batch, frames = graph_inputs.shape[:2]
        x = self.input_norm(graph_inputs.reshape(batch, frames, -1)).reshape(batch, frames, NUM_JOINTS, self.channels)
        present = (pose[..., 2] >= MIN_SCORE).any(dim=-1)
        for block in self.blocks:
            x = block(x)
            present = present[:, :: block.stride]
        pooled = pool_time(x.mean(dim=2), self.pooling, present)
        return classify(pooled, features, head=self.head, encoder=self.gait, gait_head=self.gait_head)

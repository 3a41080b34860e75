"""Twin of asd_jax/models/crossattn.py."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from asd_jax.base.architecture import NUM_FEATURES, PRIOR_EPS
from asd_jax.base.skeleton import NUM_JOINTS, NUM_REGIONS, region_membership
from asd_jax.pytorch.twins.layers import LAYER_NORM_EPS, Block, joint_features, positions


class CrossAttnTwin(nn.Module):
    def __init__(self, *, num_classes: int, dim: int, num_heads: int, depth: int, patch: int, mlp_ratio: int,
                 dropout: float, use_prior: bool, cross_attention: bool, align_weight: float = 0.0):
        super().__init__()
        del align_weight  # a training loss of the Flax model; inference does not use it
        self.patch, self.dim, self.use_prior, self.cross_attention = patch, dim, use_prior, cross_attention
        self.pose_embed = nn.Linear(patch * NUM_JOINTS * NUM_FEATURES, dim)
        self.joint_embed = nn.Linear(NUM_FEATURES, dim)
        self.joint_position = nn.Parameter(torch.zeros(NUM_JOINTS, dim))
        self.region_embedding = nn.Parameter(torch.zeros(NUM_REGIONS, dim))
        self.fusion = nn.ModuleList([Block(dim, num_heads, mlp_ratio, dropout) for _ in range(depth)])
        self.temporal = nn.ModuleList([Block(dim, num_heads, mlp_ratio, dropout) for _ in range(depth)])
        self.token_dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.head = nn.Linear(dim, num_classes)
        membership = region_membership()
        pool = torch.from_numpy((membership / membership.sum(1, keepdims=True)).astype(np.float32))
        self.register_buffer("region_pool", pool, persistent=False)

    def forward(self, pose: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        batch, frames = pose.shape[:2]
        num_patches = frames // self.patch
        patched = joint_features(pose).reshape(batch, num_patches, self.patch, NUM_JOINTS, NUM_FEATURES)
        time_codes = positions(num_patches, self.dim)
        x = self.token_dropout(self.pose_embed(patched.reshape(batch, num_patches, -1)) + time_codes)
        joints = self.joint_embed(patched).mean(dim=2) + self.joint_position
        regions = torch.einsum("rj,btjd->btrd", self.region_pool, joints) + self.region_embedding + time_codes[:, None]
        context = regions.reshape(batch, num_patches * NUM_REGIONS, self.dim)
        bias = torch.log(prior + PRIOR_EPS).repeat(1, num_patches) if self.use_prior else None
        for fusion, temporal in zip(self.fusion, self.temporal):
            x = fusion(x, context, bias) if self.cross_attention else fusion(x)
            x = temporal(x)
        return self.head(self.norm(x).mean(dim=1))

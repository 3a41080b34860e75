"""Twin of asd_jax/models/crossattn.py."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from asd_jax.base.architecture import MASKED, PRIOR_EPS, input_channels, region_inputs
from asd_jax.base.skeleton import MIN_SCORE, NUM_JOINTS, NUM_REGIONS, region_membership
from asd_jax.pytorch.twins.layers import (
    LAYER_NORM_EPS,
    Block,
    classifier_heads,
    classify,
    conv_time,
    gelu,
    joint_inputs,
    model_inputs,
    pool_time,
    positions,
)


class CrossAttnTwin(nn.Module):
    def __init__(self, *, num_classes: int, dim: int, num_heads: int, depth: int, patch: int, mlp_ratio: int,
                 dropout: float, use_prior: bool, cross_attention: bool, align_weight: float = 0.0,
                 inputs: str = "joints", encoder: str = "patch", kernel: int = 9, mask_missing: bool = False,
                 pooling: str = "mean", gait_features: int = 0, gait_fusion: str = "concat"):
        super().__init__()
        del align_weight  # a training loss of the Flax model; inference does not use it
        self.patch, self.dim, self.use_prior, self.cross_attention = patch, dim, use_prior, cross_attention
        self.window_multiple = patch  # window lengths an exported graph takes: whole patches
        self.inputs, self.encoder, self.mask_missing, self.pooling = inputs, encoder, mask_missing, pooling
        per_joint, per_frame = input_channels(inputs)
        frame_channels = NUM_JOINTS * per_joint + per_frame
        if encoder == "patch":
            self.pose_embed = nn.Linear(patch * frame_channels, dim)
        else:
            self.pose_stem = nn.Conv1d(frame_channels, dim, kernel)
            self.pose_norm = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
            self.pose_embed = nn.Conv1d(dim, dim, patch, stride=patch)
        self.joint_embed = nn.Linear(input_channels(region_inputs(inputs))[0], dim)
        self.joint_position = nn.Parameter(torch.zeros(NUM_JOINTS, dim))
        self.region_embedding = nn.Parameter(torch.zeros(NUM_REGIONS, dim))
        self.fusion = nn.ModuleList([Block(dim, num_heads, mlp_ratio, dropout) for _ in range(depth)])
        self.temporal = nn.ModuleList([Block(dim, num_heads, mlp_ratio, dropout) for _ in range(depth)])
        self.token_dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.gait, self.head, self.gait_head = classifier_heads(
            dim * (3 if pooling == "stats" else 1), num_classes, dim, dropout, gait_features=gait_features, gait_fusion=gait_fusion
        )
        membership = region_membership()
        pool = torch.from_numpy((membership / membership.sum(1, keepdims=True)).astype(np.float32))
        self.register_buffer("region_pool", pool, persistent=False)

    def forward(self, pose: torch.Tensor, prior: torch.Tensor, features: torch.Tensor | None = None) -> torch.Tensor:
        batch, frames = pose.shape[:2]
        num_patches = frames // self.patch
        frame = model_inputs(pose, self.inputs)
        time_codes = positions(num_patches, self.dim, pose.device)
        if self.encoder == "patch":
            x = self.pose_embed(frame.reshape(batch, num_patches, -1))
        else:
            x = conv_time(self.pose_embed, self.pose_norm(gelu(conv_time(self.pose_stem, frame))))
        x = self.token_dropout(x + time_codes)
        per_joint = joint_inputs(pose, region_inputs(self.inputs))
        patched = per_joint.reshape(batch, num_patches, self.patch, NUM_JOINTS, per_joint.shape[-1])
        pooled = torch.einsum("rj,btpjf->btrf", self.region_pool / self.patch, patched)  # as models/crossattn.py: pool, then embed
        regions = self.joint_embed(pooled) + self.region_pool @ self.joint_position + self.region_embedding + time_codes[:, None]
        context = regions.reshape(batch, num_patches * NUM_REGIONS, self.dim)
        bias, time_bias, weight = None, None, None
        if self.mask_missing:  # as models/crossattn.py: padded patches are never read
            seen = (pose[..., 2] >= MIN_SCORE).any(dim=-1)
            weight = seen.reshape(batch, num_patches, self.patch).any(dim=-1).float()
            time_bias = torch.where(weight > 0, 0.0, MASKED)
            bias = time_bias.repeat_interleave(NUM_REGIONS, dim=1)
        if self.use_prior:
            prior_bias = torch.log(prior + PRIOR_EPS).repeat(1, num_patches)
            bias = prior_bias if bias is None else prior_bias + bias
        for fusion, temporal in zip(self.fusion, self.temporal):
            x = fusion(x, context, bias) if self.cross_attention else fusion(x, bias=time_bias)
            x = temporal(x, bias=time_bias)
        x = self.norm(x)
        if self.pooling == "stats":
            present = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device) if weight is None else weight > 0
            pooled = pool_time(x, self.pooling, present)
        elif weight is None:
            pooled = x.mean(dim=1)
        else:
            pooled = (x * weight[..., None]).sum(dim=1) / weight.sum(dim=1, keepdim=True).clamp(min=1.0)
        return classify(pooled, features, head=self.head, encoder=self.gait, gait_head=self.gait_head)

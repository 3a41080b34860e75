"""PyTorch building blocks with the arithmetic of the Flax ones (asd_jax/models/layers.py, inputs.py):
tanh GELU, LayerNorm eps 1e-6, BatchNorm over the last axis, XLA 'SAME' padding."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from asd_jax.base.architecture import BONE_PARENTS, MOTION_LAG, SEGMENTS
from asd_jax.base.skeleton import MIN_SCORE

LAYER_NORM_EPS = 1e-6  # flax.nnx.LayerNorm's default
BATCH_NORM_EPS = 1e-5  # flax.nnx.BatchNorm's default
BATCH_NORM_MOMENTUM = 0.01  # torch's convention for flax's momentum=0.99


def _lagged(values: torch.Tensor, present: torch.Tensor, lag: int) -> torch.Tensor:
    change = values[:, lag:] - values[:, :-lag]
    both = present[:, lag:] & present[:, :-lag]
    return torch.cat([torch.zeros_like(values[:, :lag]), torch.where(both, change, torch.zeros_like(change))], dim=1)


def joint_features(pose: torch.Tensor) -> torch.Tensor:
    """asd_jax.models.inputs.joint_features in torch: position, velocity, confidence."""
    xy, score = pose[..., :2], pose[..., 2:3]
    return torch.cat([xy, _lagged(xy, score >= MIN_SCORE, 1), score], dim=-1)


def joint_inputs(pose: torch.Tensor, inputs: str) -> torch.Tensor:
    """asd_jax.models.inputs.joint_inputs in torch."""
    names = inputs.split(",")
    xy, present = pose[..., :2], pose[..., 2:3] >= MIN_SCORE
    parts = [joint_features(pose)] if "joints" in names else [pose.new_zeros(*pose.shape[:3], 0)]
    if "bones" in names:
        parent_xy, parent_present = xy[:, :, list(BONE_PARENTS)], present[:, :, list(BONE_PARENTS)]
        offset = xy - parent_xy
        parts.append(torch.where(present & parent_present, offset, torch.zeros_like(offset)))
    if "motion" in names:
        parts.append(_lagged(xy, present, MOTION_LAG))
    return torch.cat(parts, dim=-1)


def frame_inputs(pose: torch.Tensor, inputs: str) -> torch.Tensor:
    """asd_jax.models.inputs.frame_inputs in torch."""
    if "angles" not in inputs.split(","):
        return pose.new_zeros(*pose.shape[:2], 0)
    angles, seen = [], []
    for _, lower, upper, hanging in SEGMENTS:
        low, high = pose[:, :, list(lower)], pose[:, :, list(upper)]
        vector = high[..., :2].mean(2) - low[..., :2].mean(2)
        dy = -vector[..., 1] if hanging else vector[..., 1]
        angles.append(torch.atan2(vector[..., 0], dy))
        seen.append((low[..., 2] >= MIN_SCORE).all(-1) & (high[..., 2] >= MIN_SCORE).all(-1))
    angle, present = torch.stack(angles, -1), torch.stack(seen, -1)
    return torch.cat([torch.where(present, angle, torch.zeros_like(angle)), _lagged(angle, present, MOTION_LAG)], dim=-1)


def model_inputs(pose: torch.Tensor, inputs: str) -> torch.Tensor:
    """asd_jax.models.inputs.model_inputs in torch: [B, T, J * joint channels + frame channels]."""
    joints = joint_inputs(pose, inputs)
    return torch.cat([joints.reshape(*joints.shape[:2], -1), frame_inputs(pose, inputs)], dim=-1)


def gelu(x: torch.Tensor) -> torch.Tensor:
    return F.gelu(x, approximate="tanh")  # jax.nn.gelu's default


def positions(length: int, dim: int, device: torch.device) -> torch.Tensor:
    """base.architecture.sinusoidal_positions in torch (float64, like numpy, then float32), so that
    an exported graph takes windows of any length."""
    freqs = torch.from_numpy(np.exp(-np.log(10000.0) * np.arange(0, dim, 2) / dim)).to(device)
    angles = torch.arange(length, dtype=torch.float64, device=device)[:, None] * freqs
    codes = torch.stack([torch.sin(angles), torch.cos(angles)], dim=-1).reshape(length, -1)
    return codes[:, :dim].to(torch.float32)


def same_padding(length: int, kernel: int, stride: int) -> tuple[int, int]:
    """XLA's 'SAME' padding (extra frame at the end), which torch's symmetric padding cannot express."""
    out = -(-length // stride)
    total = max((out - 1) * stride + kernel - length, 0)
    return total // 2, total - total // 2


def conv_time(conv: nn.Conv1d | nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """A 'SAME' convolution over axis 1 of a channels-last [B, T, (J,) C] tensor."""
    channels_first = x.movedim(-1, 1)
    lo, hi = same_padding(x.shape[1], conv.kernel_size[0], conv.stride[0])
    pad = (lo, hi) if x.ndim == 3 else (0, 0, lo, hi)
    return conv(F.pad(channels_first, pad)).movedim(1, -1)


class BatchNormLast(nn.BatchNorm1d):
    """BatchNorm over the last axis of any shape, like flax.nnx.BatchNorm."""

    def __init__(self, num_features: int):
        super().__init__(num_features, eps=BATCH_NORM_EPS, momentum=BATCH_NORM_MOMENTUM)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.reshape(-1, x.shape[-1])).reshape(x.shape)


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.query, self.key = nn.Linear(dim, dim), nn.Linear(dim, dim, bias=False)
        self.value, self.out = nn.Linear(dim, dim), nn.Linear(dim, dim)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(*x.shape[:2], self.num_heads, -1).transpose(1, 2)  # [B, H, N, d]

    def forward(self, queries: torch.Tensor, keys: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        q, k, v = self._heads(self.query(queries)), self._heads(self.key(keys)), self._heads(self.value(keys))
        logits = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
        if bias is not None:
            logits = logits + bias[:, None, None, :]
        out = (logits.softmax(dim=-1) @ v).transpose(1, 2)
        return self.out(out.reshape(*out.shape[:2], -1))


class Mlp(nn.Module):
    def __init__(self, dim: int, ratio: int):
        super().__init__()
        self.up, self.down = nn.Linear(dim, dim * ratio), nn.Linear(dim * ratio, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(gelu(self.up(x)))


class Block(nn.Module):
    """asd_jax.models.layers.Block: pre-norm attention (self or to `context`), then MLP."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: int, dropout: float):
        super().__init__()
        self.norm_q, self.norm_kv, self.norm_mlp = (nn.LayerNorm(dim, eps=LAYER_NORM_EPS) for _ in range(3))
        self.attention = Attention(dim, num_heads)
        self.mlp = Mlp(dim, mlp_ratio)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None, bias: torch.Tensor | None = None) -> torch.Tensor:
        queries = self.norm_q(x)
        keys = queries if context is None else self.norm_kv(context)
        x = x + self.drop(self.attention(queries, keys, bias))
        return x + self.drop(self.mlp(self.norm_mlp(x)))


def pool_time(x: torch.Tensor, pooling: str, present: torch.Tensor) -> torch.Tensor:
    """asd_jax.models.layers.pool_time in torch: over the frames where some joint was seen."""
    weight = present[..., None].to(x.dtype)
    count = weight.sum(dim=1, keepdim=True).clamp(min=1)
    mean = (weight * x).sum(dim=1, keepdim=True) / count
    if pooling == "mean":
        return mean[:, 0]
    std = torch.sqrt((weight * (x - mean) ** 2).sum(dim=1, keepdim=True) / count)
    rank = torch.cumsum(weight, dim=1) - weight
    third = torch.floor(count / 3).clamp(min=1)
    first, last = weight * (rank < third).to(x.dtype), weight * (rank >= count - third).to(x.dtype)
    drift = ((last - first) * x).sum(dim=1, keepdim=True) / third
    return torch.cat([mean, std, drift], dim=-1)[:, 0]


FEATURE_CLIP = 5.0  # asd_jax.models.layers.FEATURE_CLIP


class GaitFeatureEncoder(nn.Module):
    """asd_jax.models.layers.GaitFeatureEncoder: the clip's gait features standardised by the
    training patients' median and spread (buffers, loaded with the weights), missing -> 0."""

    def __init__(self, num_features: int, dim: int, dropout: float):
        super().__init__()
        self.register_buffer("center", torch.zeros(num_features))
        self.register_buffer("spread", torch.ones(num_features))
        self.embed = nn.Linear(num_features, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        z = (features - self.center) / self.spread
        z = torch.where(torch.isfinite(z), z.clamp(-FEATURE_CLIP, FEATURE_CLIP), torch.zeros_like(z))
        return gelu(self.embed(self.drop(z)))


def classifier_heads(pooled_width: int, num_classes: int, dim: int, dropout: float, *, gait_features: int,
                     gait_fusion: str) -> tuple[GaitFeatureEncoder | None, nn.Linear, nn.Linear | None]:
    """asd_jax.models.layers.classifier_heads: (gait encoder, head, gait head)."""
    encoder = GaitFeatureEncoder(gait_features, dim, dropout) if gait_features else None
    joint_head = bool(gait_features) and gait_fusion == "concat"
    head = nn.Linear(pooled_width + (dim if joint_head else 0), num_classes)
    gait_head = nn.Linear(dim, num_classes) if gait_features and not joint_head else None
    return encoder, head, gait_head


def classify(pooled: torch.Tensor, features: torch.Tensor | None, *, head: nn.Linear,
             encoder: GaitFeatureEncoder | None, gait_head: nn.Linear | None) -> torch.Tensor:
    """asd_jax.models.layers.classify: the logits of the heads of `classifier_heads`."""
    if encoder is None:
        return head(pooled)
    if gait_head is None:
        return head(torch.cat([pooled, encoder(features)], dim=-1))
    return head(pooled) + gait_head(encoder(features))

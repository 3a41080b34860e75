"""PyTorch building blocks with the arithmetic of the Flax ones (asd_jax/models/layers.py, inputs.py):
tanh GELU, LayerNorm eps 1e-6, BatchNorm over the last axis, XLA 'SAME' padding."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from asd_jax.base.architecture import sinusoidal_positions
from asd_jax.base.skeleton import MIN_SCORE

LAYER_NORM_EPS = 1e-6  # flax.nnx.LayerNorm's default
BATCH_NORM_EPS = 1e-5  # flax.nnx.BatchNorm's default
BATCH_NORM_MOMENTUM = 0.01  # torch's convention for flax's momentum=0.99


def joint_features(pose: torch.Tensor) -> torch.Tensor:
    """asd_jax.models.inputs.joint_features in torch: position, velocity, confidence."""
    xy, score = pose[..., :2], pose[..., 2:3]
    present = score >= MIN_SCORE
    step = xy[:, 1:] - xy[:, :-1]
    both = present[:, 1:] & present[:, :-1]
    velocity = torch.cat([torch.zeros_like(xy[:, :1]), torch.where(both, step, torch.zeros_like(step))], dim=1)
    return torch.cat([xy, velocity, score], dim=-1)


def gelu(x: torch.Tensor) -> torch.Tensor:
    return F.gelu(x, approximate="tanh")  # jax.nn.gelu's default


def positions(length: int, dim: int) -> torch.Tensor:
    return torch.from_numpy(sinusoidal_positions(length, dim))


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

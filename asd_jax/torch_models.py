"""PyTorch twins of the keypoint models, for deployment and comparison in PyTorch stacks.

Each twin mirrors its Flax model's module tree and names, so weights convert by layout rules alone
(asd_jax/convert.py), and its arithmetic (tanh GELU, LayerNorm eps 1e-6, BatchNorm eps 1e-5,
'SAME' convolution padding, the same step detector), so the same inputs give the same logits.
Twins are exact at inference; their dropout is plain torch dropout, so fine-tuning in PyTorch
works but does not replay JAX training bit for bit.

`model(pose [B, T, 17, 3], prior [B, 5]) -> logits [B, C]`, poses normalised as the data pipeline
does (asd_jax/transforms.py).
"""

from __future__ import annotations

import math

import ml_collections
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from asd_jax.models.crossattn import PRIOR_EPS
from asd_jax.models.features import NUM_FEATURES
from asd_jax.models.layers import sinusoidal_positions
from asd_jax.models.phase import resample_positions, uniform_boundaries
from asd_jax.models.stgcn import block_plan, spatial_partitions
from asd_jax.models.vit_phasemix import MASKED
from asd_jax.skeleton import LEFT_ANKLE, NUM_JOINTS, NUM_REGIONS, RIGHT_ANKLE, region_membership
from asd_jax.transforms import MIN_SCORE

LAYER_NORM_EPS = 1e-6  # flax.nnx.LayerNorm's default
BATCH_NORM_EPS = 1e-5  # flax.nnx.BatchNorm's default
BATCH_NORM_MOMENTUM = 0.01  # torch's convention for flax's momentum=0.99


def joint_features(pose: torch.Tensor) -> torch.Tensor:
    """asd_jax.models.features.joint_features in torch: position, velocity, confidence."""
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


class CrossAttnTwin(nn.Module):
    def __init__(self, *, num_classes: int, dim: int, num_heads: int, depth: int, patch: int, mlp_ratio: int,
                 dropout: float, use_prior: bool, cross_attention: bool):
        super().__init__()
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


class STGCNBlockTwin(nn.Module):
    def __init__(self, in_dim: int, out_dim: int, stride: int, dropout: float):
        super().__init__()
        self.out_dim = out_dim
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
    def __init__(self, *, num_classes: int, dim: int, depth: int, dropout: float):
        super().__init__()
        plan = block_plan(dim, depth)
        self.input_norm = BatchNormLast(NUM_JOINTS * NUM_FEATURES)
        self.blocks = nn.ModuleList([STGCNBlockTwin(i, o, s, dropout) for i, o, s in plan])
        self.head = nn.Linear(plan[-1][1], num_classes)

    def forward(self, pose: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        features = joint_features(pose)
        batch, frames = features.shape[:2]
        x = self.input_norm(features.reshape(batch, frames, -1)).reshape(batch, frames, NUM_JOINTS, NUM_FEATURES)
        for block in self.blocks:
            x = block(x)
        return self.head(x.mean(dim=(1, 2)))


def ankle_gap(pose: torch.Tensor, smooth: int = 5) -> torch.Tensor:
    """asd_jax.models.phase.ankle_gap for a batch: [B, T, 17, 3] -> [B, T]."""
    gap = (pose[:, :, LEFT_ANKLE, 0] - pose[:, :, RIGHT_ANKLE, 0]).abs()
    padded = F.pad(gap[:, None], (smooth // 2, smooth - 1 - smooth // 2), mode="replicate")
    return F.conv1d(padded, torch.full((1, 1, smooth), 1.0 / smooth))[:, 0]


def widest_stride_mask(pose: torch.Tensor, min_distance: int = 10) -> torch.Tensor:
    gap = ankle_gap(pose)
    radius = min_distance - 1
    window_max = F.max_pool1d(F.pad(gap[:, None], (radius, radius), value=-math.inf), 2 * radius + 1, stride=1)[:, 0]
    first_of_plateau = torch.cat([torch.ones_like(gap[:, :1], dtype=torch.bool), gap[:, 1:] != gap[:, :-1]], dim=1)
    return (gap >= window_max) & first_of_plateau & (gap > gap.mean(dim=1, keepdim=True))


def step_boundaries(pose: torch.Tensor, max_steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """asd_jax.models.phase.step_boundaries for a batch, with static shapes (ONNX-exportable)."""
    frames = pose.shape[1]
    mask = widest_stride_mask(pose)
    rank = mask.long().cumsum(dim=1) - 1
    slots = torch.arange(max_steps + 1)[None, :, None]
    hit = mask[:, None, :] & (rank[:, None, :] == slots)
    peaks = torch.where(hit, torch.arange(frames), frames - 1).amin(dim=-1)  # first K peaks, else the last frame
    count = mask.sum(dim=1, keepdim=True)
    enough = count >= 2
    uniform = torch.from_numpy(uniform_boundaries(frames, max_steps)).long()
    step_index = torch.arange(max_steps)[None]
    valid = (enough & (step_index < count - 1)) | (~enough & (step_index < 4))  # not a bool Where: onnxruntime lacks it
    return torch.where(enough, peaks, uniform), valid


def resample_steps(features: torch.Tensor, boundaries: torch.Tensor, length: int) -> torch.Tensor:
    """[B, T, J, F] -> [B, K, length, J, F]: each step linearly resampled (phase.resample_segment)."""
    start, stop = boundaries[:, :-1, None], boundaries[:, 1:, None]
    where = start + (stop - start) * torch.from_numpy(resample_positions(length))  # [B, K, L]
    lower = torch.floor(where).long()
    upper = torch.clamp(lower + 1, max=features.shape[1] - 1)
    frac = (where - lower)[..., None, None]
    rows = torch.arange(features.shape[0])[:, None, None]
    return features[rows, lower] * (1 - frac) + features[rows, upper] * frac


class ViTPhaseMixTwin(nn.Module):
    def __init__(self, *, num_classes: int, dim: int, num_heads: int, depth: int, mlp_ratio: int, dropout: float,
                 max_steps: int, segment: int):
        super().__init__()
        self.dim, self.max_steps, self.segment = dim, max_steps, segment
        self.embed = nn.Linear(2 * NUM_JOINTS * NUM_FEATURES, dim)
        self.blocks = nn.ModuleList([Block(dim, num_heads, mlp_ratio, dropout) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, pose: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        batch = pose.shape[0]
        boundaries, valid = step_boundaries(pose, self.max_steps)
        steps = resample_steps(joint_features(pose), boundaries, self.segment).reshape(batch, self.max_steps, self.segment, -1)
        pairs = self.max_steps // 2
        fused = torch.cat([steps[:, 0 : 2 * pairs : 2], steps[:, 1 : 2 * pairs : 2]], dim=-1)
        pair_valid = valid[:, 0 : 2 * pairs : 2] & valid[:, 1 : 2 * pairs : 2]
        pair_valid = torch.cat([torch.ones_like(pair_valid[:, :1]), pair_valid[:, 1:]], dim=1)
        tokens = fused.reshape(batch, pairs * self.segment, -1)
        token_valid = pair_valid.repeat_interleave(self.segment, dim=1)
        x = self.embed(tokens) + positions(tokens.shape[1], self.dim)
        bias = torch.where(token_valid, 0.0, MASKED)
        for block in self.blocks:
            x = block(x, bias=bias)
        weights = token_valid.to(x.dtype)[..., None]
        return self.head((self.norm(x) * weights).sum(dim=1) / weights.sum(dim=1))


def build_torch_model(config: ml_collections.ConfigDict, num_classes: int) -> nn.Module:
    """The twin of `config.model.name`, in eval mode."""
    m = config.model
    name = m.name
    if name == "crossattn":
        model = CrossAttnTwin(num_classes=num_classes, dim=m.dim, num_heads=m.num_heads, depth=m.depth, patch=m.patch,
                              mlp_ratio=m.mlp_ratio, dropout=m.dropout, use_prior=m.use_prior,
                              cross_attention=m.cross_attention)
    elif name == "cnn":
        model = TemporalCNNTwin(num_classes=num_classes, dim=m.dim, depth=m.depth, kernel=m.kernel, dropout=m.dropout)
    elif name == "stgcn":
        model = STGCNTwin(num_classes=num_classes, dim=m.dim, depth=m.depth, dropout=m.dropout)
    elif name == "vit_phasemix":
        model = ViTPhaseMixTwin(num_classes=num_classes, dim=m.dim, num_heads=m.num_heads, depth=m.depth,
                                mlp_ratio=m.mlp_ratio, dropout=m.dropout, max_steps=m.max_steps, segment=m.segment)
    else:
        raise ValueError(f"model.name={name!r} has no PyTorch twin; twins exist for {TWINS}")
    return model.eval()


TWINS = ("crossattn", "cnn", "stgcn", "vit_phasemix")

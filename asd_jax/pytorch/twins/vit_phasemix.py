"""Twin of asd_jax/models/vit_phasemix.py, with a static-shape (ONNX-exportable) port of the
PhaseMix step detector of asd_jax/models/phase.py."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from asd_jax.base.architecture import MASKED, input_channels, resample_positions, uniform_boundaries
from asd_jax.base.skeleton import LEFT_ANKLE, NUM_JOINTS, RIGHT_ANKLE
from asd_jax.pytorch.twins.layers import LAYER_NORM_EPS, Block, model_inputs, positions


def ankle_gap(pose: torch.Tensor, smooth: int = 5) -> torch.Tensor:
    """asd_jax.models.phase.ankle_gap for a batch: [B, T, 17, 3] -> [B, T]."""
    gap = (pose[:, :, LEFT_ANKLE, 0] - pose[:, :, RIGHT_ANKLE, 0]).abs()
    padded = F.pad(gap[:, None], (smooth // 2, smooth - 1 - smooth // 2), mode="replicate")
    return F.conv1d(padded, torch.full((1, 1, smooth), 1.0 / smooth, dtype=gap.dtype, device=gap.device))[:, 0]


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
    slots = torch.arange(max_steps + 1, device=pose.device)[None, :, None]
    hit = mask[:, None, :] & (rank[:, None, :] == slots)
    peaks = torch.where(hit, torch.arange(frames, device=pose.device), frames - 1).amin(dim=-1)  # first K peaks, else the last frame
    count = mask.sum(dim=1, keepdim=True)
    enough = count >= 2
    uniform = torch.from_numpy(uniform_boundaries(frames, max_steps)).long().to(pose.device)
    step_index = torch.arange(max_steps, device=pose.device)[None]
    valid = (enough & (step_index < count - 1)) | (~enough & (step_index < 4))  # not a bool Where: onnxruntime lacks it
    return torch.where(enough, peaks, uniform), valid


def resample_steps(features: torch.Tensor, boundaries: torch.Tensor, length: int) -> torch.Tensor:
    """[B, T, ...] -> [B, K, length, ...]: each step linearly resampled (phase.resample_segment)."""
    start, stop = boundaries[:, :-1, None], boundaries[:, 1:, None]
    where = start + (stop - start) * torch.from_numpy(resample_positions(length)).to(boundaries.device)  # [B, K, L]
    lower = torch.floor(where).long()
    upper = torch.clamp(lower + 1, max=features.shape[1] - 1)
    frac = (where - lower).reshape(*where.shape, *([1] * (features.ndim - 2)))
    rows = torch.arange(features.shape[0], device=features.device)[:, None, None]
    return features[rows, lower] * (1 - frac) + features[rows, upper] * frac


class ViTPhaseMixTwin(nn.Module):
    def __init__(self, *, num_classes: int, dim: int, num_heads: int, depth: int, mlp_ratio: int, dropout: float,
                 max_steps: int, segment: int, inputs: str = "joints"):
        super().__init__()
        self.dim, self.max_steps, self.segment, self.inputs = dim, max_steps, segment, inputs
        self.window_multiple = 0  # one window length only: the step detector's fallback cuts are constants of it
        per_joint, per_frame = input_channels(inputs)
        self.embed = nn.Linear(2 * (NUM_JOINTS * per_joint + per_frame), dim)
        self.blocks = nn.ModuleList([Block(dim, num_heads, mlp_ratio, dropout) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, pose: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        batch = pose.shape[0]
        boundaries, valid = step_boundaries(pose, self.max_steps)
        steps = resample_steps(model_inputs(pose, self.inputs), boundaries, self.segment).reshape(batch, self.max_steps, self.segment, -1)
        pairs = self.max_steps // 2
        fused = torch.cat([steps[:, 0 : 2 * pairs : 2], steps[:, 1 : 2 * pairs : 2]], dim=-1)
        pair_valid = valid[:, 0 : 2 * pairs : 2] & valid[:, 1 : 2 * pairs : 2]
        pair_valid = torch.cat([torch.ones_like(pair_valid[:, :1]), pair_valid[:, 1:]], dim=1)
        tokens = fused.reshape(batch, pairs * self.segment, -1)
        token_valid = pair_valid.repeat_interleave(self.segment, dim=1)
        x = self.embed(tokens) + positions(tokens.shape[1], self.dim, tokens.device)
        bias = torch.where(token_valid, 0.0, MASKED)
        for block in self.blocks:
            x = block(x, bias=bias)
        weights = token_valid.to(x.dtype)[..., None]
        return self.head((self.norm(x) * weights).sum(dim=1) / weights.sum(dim=1))

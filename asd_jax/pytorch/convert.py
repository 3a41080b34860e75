"""Flax model variables <-> PyTorch state_dict, by layer layout rules (numpy only: no torch, no JAX).

The PyTorch twins (asd_jax/pytorch/twins/) name their modules like the Flax models, so a Flax
path `fusion.0.attention.query.kernel` is the torch key `fusion.0.attention.query.weight`. The Flax
side is a flat {path tuple: array} dict (asd_jax.models.variables.flat_state). What
changes is the leaf name and layout:

  Dense kernel [in, out]                  -> weight [out, in]
  Conv kernel [k..., in, out] (1/2/3-D)   -> weight [out, in, k...]
  LayerNorm / BatchNorm scale             -> weight
  BatchNorm mean / var (running stats)    -> running_mean / running_var (+ num_batches_tracked)
  Embed embedding [vocab, dim]            -> weight [vocab, dim]
  bias and raw parameters                 -> unchanged

Conversion is strict both ways: any missing, unexpected or misshapen key is one `ConversionError`
that lists them all, so a config that does not match the weights never loads half a model.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from asd_jax.base.errors import ConversionError

RENAMES = {"kernel": "weight", "scale": "weight", "embedding": "weight", "mean": "running_mean", "var": "running_var"}
TORCH_ONLY = "num_batches_tracked"  # a BatchNorm counter that flax does not keep


def torch_key(path: tuple) -> str:
    *modules, leaf = (str(p) for p in path)
    return ".".join([*modules, RENAMES.get(leaf, leaf)])


def is_kernel(path: tuple) -> bool:
    return str(path[-1]) == "kernel"


def kernel_to_torch(kernel: np.ndarray) -> np.ndarray:
    if kernel.ndim == 2:
        return kernel.T
    spatial = tuple(range(kernel.ndim - 2))
    return kernel.transpose(kernel.ndim - 1, kernel.ndim - 2, *spatial)


def kernel_from_torch(weight: np.ndarray) -> np.ndarray:
    if weight.ndim == 2:
        return weight.T
    spatial = tuple(range(2, weight.ndim))
    return weight.transpose(*spatial, 1, 0)


def torch_shape(path: tuple, shape: tuple[int, ...]) -> tuple[int, ...]:
    """The torch layout's shape of a Flax variable of `shape` (kernel_to_torch on shapes alone)."""
    if not is_kernel(path):
        return tuple(shape)
    return (shape[1], shape[0]) if len(shape) == 2 else (shape[-1], shape[-2], *shape[:-2])


def flax_to_torch(flat: dict[tuple, np.ndarray]) -> dict[str, np.ndarray]:
    """Flax {path: array} -> torch {key: array} in torch layouts."""
    out: dict[str, np.ndarray] = {}
    for path, value in flat.items():
        key = torch_key(path)
        out[key] = np.ascontiguousarray(kernel_to_torch(value) if is_kernel(path) else value)
        if str(path[-1]) == "mean":
            out[key.rsplit(".", 1)[0] + f".{TORCH_ONLY}"] = np.zeros((), np.int64)
    return out


def check_fits(what: str, got: dict[str, tuple], expected: dict[str, tuple]) -> None:
    """Raises ConversionError listing every key that is missing, unexpected or of the wrong shape."""
    missing = sorted(set(expected) - set(got))
    unexpected = sorted(set(got) - set(expected))
    misshapen = sorted(
        f"{k} {tuple(got[k])} != {tuple(expected[k])}" for k in set(got) & set(expected) if tuple(got[k]) != tuple(expected[k])
    )
    if missing or unexpected or misshapen:
        raise ConversionError(what, missing, unexpected, misshapen, matched=len(set(got) & set(expected)))


def torch_to_flax(state_dict: dict[str, Any], template: dict[tuple, np.ndarray], what: str = "PyTorch weights") -> dict[tuple, np.ndarray]:
    """Torch {key: array or tensor} -> Flax {path: array} for the paths and shapes of `template`."""
    arrays = {k: np.asarray(v.detach().cpu().numpy() if hasattr(v, "detach") else v) for k, v in state_dict.items()}
    arrays = {k: v for k, v in arrays.items() if not k.endswith(f".{TORCH_ONLY}")}
    check_fits(what, {k: v.shape for k, v in arrays.items()}, {torch_key(path): torch_shape(path, v.shape) for path, v in template.items()})
    out = {}
    for path, value in template.items():
        array = arrays[torch_key(path)]
        out[path] = np.ascontiguousarray(kernel_from_torch(array) if is_kernel(path) else array).astype(value.dtype)
    return out

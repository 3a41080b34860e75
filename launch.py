r"""Entry point: flags only, so that everything it runs can be imported and tested.

  python launch.py --config configs/crossattn.py                  # train fold 0, test once
  python launch.py --config configs/crossattn.py --mode=prepare   # build the dataset, print a summary
  python launch.py --config configs/crossattn.py --mode=cv        # all folds, mean ± std and CIs
  python launch.py --config configs/crossattn.py --mode=explain   # attention maps of a trained run
  python launch.py --config configs/crossattn.py --mode=export    # PyTorch / safetensors / ONNX of a trained run
  python launch.py --config configs/crossattn.py --mode=import --weights model.pt --workdir runs/imported
  python launch.py --mode=pose --input videos/ --out keypoints/   # walking videos -> keypoint folder
  python launch.py --mode=predict --workdir runs/crossattn --input keypoints/   # diagnose new clips (or videos)
  python launch.py --mode=bench [--out folder]                    # JAX vs PyTorch timings -> bench.json (python -m asd_jax.bench --help)
  python launch.py --config configs/crossattn.py:smoke --workdir /tmp/smoke
  python launch.py --config configs/crossattn.py --config.train.num_steps=3000
"""

from __future__ import annotations

import json
import logging as pylogging
import sys
from pathlib import Path

from absl import app, flags, logging
from ml_collections import config_flags

from asd_jax import modes

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file, optionally with ':variant'.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory (default: runs/<config name>).")
_MODE = flags.DEFINE_enum("mode", "train", modes.MODES, "What to do.")
_WEIGHTS = flags.DEFINE_string("weights", None, "--mode=import: a PyTorch state_dict (.pt) or .safetensors file.")
_INPUT = flags.DEFINE_string("input", None, "--mode=pose / predict: a video, a folder of videos, or a keypoint folder.")
_OUT = flags.DEFINE_string("out", None, "--mode=pose / predict: the folder to write.")


def default_workdir(config_arg: str) -> Path:
    """runs/<config file stem>[_<variant>], e.g. runs/crossattn or runs/crossattn_smoke."""
    path, _, variant = config_arg.partition(":")
    name = Path(path).stem + (f"_{variant}" if variant else "")
    return Path("runs") / name


class _QuietLibraries(pylogging.Filter):
    """Keeps INFO lines of this project; libraries (orbax, TFDS, grain) speak from WARNING up."""

    def filter(self, record: pylogging.LogRecord) -> bool:
        return record.levelno >= pylogging.WARNING or "asd_jax" in record.pathname


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    config_file = flags.FLAGS["config"].config_filename if _CONFIG.value is not None else None  # unset: pose, predict
    workdir = Path(_WORKDIR.value) if _WORKDIR.value else (default_workdir(config_file) if config_file else None)
    path = lambda value: Path(value) if value else None  # noqa: E731
    invocation = modes.Invocation(
        config=_CONFIG.value, workdir=workdir, weights=path(_WEIGHTS.value), input=path(_INPUT.value), out=path(_OUT.value)
    )
    try:
        result = modes.run(_MODE.value, invocation)
    except modes.UserError as err:
        sys.exit(f"error: {err}")
    if result is not None:
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    logging.set_verbosity(logging.INFO)
    logging.get_absl_handler().addFilter(_QuietLibraries())
    app.run(main)

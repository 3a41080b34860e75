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

Exit status: 0 done; 1 a mistake the single `error:` line names (flags, config, data, workdir);
143 stopped by SIGTERM after checkpointing (run the same command to resume); a traceback is a bug.
"""

from __future__ import annotations

import difflib
import json
import logging as pylogging
import re
import sys
from pathlib import Path

import ml_collections
from absl import app, flags, logging
from ml_collections import config_flags

from asd_jax import modes
from asd_jax.base.errors import Preempted, exit_with_error

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


def parse_flags(argv: list[str]) -> list[str]:
    """absl's flag parsing, every command-line mistake as one `error:` line and a non-zero exit:
    absl prints two lines for a bad value, and a mistyped config field escapes it as a traceback."""
    spec = _config_spec(argv)
    if spec is not None and not Path(spec.partition(":")[0]).is_file():
        exit_with_error(f"--config={spec}: no such file")
    if spec is not None and Path(spec.partition(":")[0]).suffix != ".py":
        exit_with_error(f"--config={spec}: not a config file; give a Python file with get_config(), e.g. configs/crossattn.py")
    try:
        return flags.FLAGS(argv)
    except flags.Error as err:
        exit_with_error(_explain_flag_error(str(err), argv))
    except SyntaxError as err:  # a config file being edited
        exit_with_error(f"--config={spec}: {err.msg} at line {err.lineno}")
    except (AttributeError, KeyError) as err:  # ml_collections: an override names a field the config lacks
        if "has no attribute 'get_config'" in str(err):
            exit_with_error(f"--config={spec}: the file defines no get_config(), so it is not a config")
        unknown = _unknown_override(argv)
        if unknown is None:
            raise  # not a mistyped field: a bug, keep its traceback
        exit_with_error(str(unknown))


def _explain_flag_error(message: str, argv: list[str]) -> str:
    """absl's message, made to name the flag, what it takes and the closest valid value."""
    if message.startswith("flag --mode="):
        given = message.removeprefix("flag --mode=").partition(":")[0]
        close = difflib.get_close_matches(given, modes.MODES, n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        return f"--mode={given}: no such mode; {hint}(one of {', '.join(modes.MODES)})"
    if "Error whilst parsing config file" in message and message.rstrip().splitlines()[-1].startswith("ValueError: "):
        return f"--config: {message.rstrip().splitlines()[-1].removeprefix('ValueError: ')}"  # e.g. an unknown variant
    bad_value = re.match(r"flag --config\.([\w.]+)=(.*?): ", message)
    config = _load_config(argv) if bad_value else None
    if bad_value and config is not None:
        path, given = bad_value.groups()
        current = _lookup(config, path)
        if isinstance(current, ml_collections.ConfigDict):  # a section, not a field: name its fields
            return f"--config.{path}={given}: {path} is a section; set one of its fields, e.g. --config.{path}.{next(iter(current))}=..."
        kind = type(current).__name__
        article = "an" if kind[0] in "aeiou" else "a"
        return f"--config.{path}={given}: {path} takes {article} {kind} (as in the config: {current!r})"
    return message.removeprefix("flag ")


def _unknown_override(argv: list[str]) -> str | None:
    """The first `--config.<path>` that the config has no field for, with the closest path."""
    config = _load_config(argv)
    if config is None:
        return None
    fields = _field_paths(config)
    for arg in argv[1:]:
        if not arg.startswith("--config."):
            continue
        path = arg.removeprefix("--config.").partition("=")[0]
        if _lookup(config, path, missing=KeyError) is KeyError:
            close = difflib.get_close_matches(path, fields, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]}?" if close else ""
            return f"--config.{path}: no such field{hint}"
    return None


def _config_spec(argv: list[str]) -> str | None:
    """What `--config` was last given on the command line (`file.py[:variant]`), if anything."""
    spec = None
    for i, arg in enumerate(argv):
        if arg.startswith("--config="):
            spec = arg.removeprefix("--config=")
        elif arg == "--config" and i + 1 < len(argv):
            spec = argv[i + 1]
    return spec


def _load_config(argv: list[str]) -> ml_collections.ConfigDict | None:
    """The config `--config` names, loaded again (None when there is none or it does not load)."""
    spec = _config_spec(argv)
    try:
        return None if spec is None else flags.FLAGS["config"].parser.parse(spec)
    except (OSError, ValueError, TypeError):
        return None


def _lookup(config: ml_collections.ConfigDict, path: str, missing: object = None) -> object:
    """The value at a dotted `path`, or `missing` when a part of it is no field."""
    node: object = config
    for part in path.split("."):
        if not isinstance(node, ml_collections.ConfigDict) or part not in node:
            return missing
        node = node[part]
    return node


def _field_paths(config: ml_collections.ConfigDict, prefix: str = "") -> list[str]:
    """Every dotted path of `config`, nested configs included."""
    paths = []
    for key, value in config.items():
        paths.append(prefix + key)
        if isinstance(value, ml_collections.ConfigDict):
            paths += _field_paths(value, f"{prefix}{key}.")
    return paths


class _QuietLibraries(pylogging.Filter):
    """Keeps INFO lines of this project; libraries (orbax, TFDS, grain) speak from WARNING up."""

    def filter(self, record: pylogging.LogRecord) -> bool:
        return record.levelno >= pylogging.WARNING or "asd_jax" in record.pathname


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        exit_with_error(f"unexpected arguments: {' '.join(argv[1:])} (flags are --name=value)")
    config_file = flags.FLAGS["config"].config_filename if _CONFIG.value is not None else None  # unset: pose, predict
    workdir = Path(_WORKDIR.value) if _WORKDIR.value else (default_workdir(config_file) if config_file else None)
    path = lambda value: Path(value) if value else None  # noqa: E731
    invocation = modes.Invocation(
        config=_CONFIG.value, workdir=workdir, weights=path(_WEIGHTS.value), input=path(_INPUT.value), out=path(_OUT.value)
    )
    try:
        result = modes.run(_MODE.value, invocation)
    except modes.UserError as err:
        exit_with_error(str(err))
    except Preempted as err:
        print(f"stopped: {err}", file=sys.stderr)
        sys.exit(Preempted.EXIT_CODE)
    if result is not None:
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    logging.set_verbosity(logging.INFO)
    logging.get_absl_handler().addFilter(_QuietLibraries())
    app.run(main, flags_parser=parse_flags)

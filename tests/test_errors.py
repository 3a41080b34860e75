"""Mistakes a user can make, each answered by one `error:` line, a non-zero exit and no traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import ROOT

SMOKE = "configs/crossattn.py:smoke"


def launch(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    return subprocess.run([sys.executable, "launch.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    """The single `error:` line of a refused command (asserting there is exactly one, and no traceback)."""
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, proc.stderr
    return lines[0]


@pytest.mark.parametrize(
    "args, expected",
    [
        (
            [f"--config={SMOKE}", "--config.train.num_step=3"],
            "error: --config.train.num_step: no such field; did you mean train.num_steps?",
        ),
        ([f"--config={SMOKE}", "--config.modle.dim", "8"], "error: --config.modle.dim: no such field; did you mean model.dim?"),
        (
            [f"--config={SMOKE}", "--config.train.num_steps=abc"],
            "error: --config.train.num_steps=abc: train.num_steps takes an int (as in the config: 30)",
        ),
        (
            [f"--config={SMOKE}", "--mode=trian"],
            "error: --mode=trian: no such mode; did you mean train? "
            "(one of train, eval, cv, explain, prepare, export, import, pose, predict, bench)",
        ),
        (["--config=configs/nope.py", "--config.model.dim=8"], "error: --config=configs/nope.py: no such file"),
        (
            [f"--config={SMOKE}", "--config.train=1"],
            "error: --config.train=1: train is a section; set one of its fields, e.g. --config.train.checkpoint_every=...",
        ),
        (
            ["--config=README.md"],
            "error: --config=README.md: not a config file; give a Python file with get_config(), e.g. configs/crossattn.py",
        ),
        (["--config=configs/__init__.py"], "error: --config=configs/__init__.py: the file defines no get_config(), so it is not a config"),
        (["--config=configs/crossattn.py:smok"], "error: --config: unknown config variant 'smok'; expected 'smoke' or nothing"),
        ([f"--config={SMOKE}", "--wrokdir=/tmp/x"], "error: Unknown command line flag 'wrokdir'. Did you mean: workdir ?"),
        ([f"--config={SMOKE}", "--mode=train", "eval"], "error: unexpected arguments: eval (flags are --name=value)"),
    ],
)
def test_command_line_mistakes_are_one_line(args, expected):
    assert one_error_line(launch(*args)) == expected


def test_a_config_file_being_edited_with_a_syntax_error_is_one_line_naming_the_line(tmp_path):
    config = tmp_path / "mine.py"
    config.write_text("def get_config(arg=None):\n    x = = 1\n")
    assert one_error_line(launch(f"--config={config}")) == f"error: --config={config}: invalid syntax at line 2"


def test_the_error_line_is_written_whole_in_one_call(monkeypatch):
    """Threads that print while the process exits (tensorstore's failed reads) can only land before or
    after the line, never between its text and its newline, as they did under sys.exit(message)."""
    from asd_jax.base.errors import exit_with_error

    writes: list[str] = []

    class Recorder:
        def write(self, text: str) -> None:
            writes.append(text)

        def flush(self) -> None:
            pass

    monkeypatch.setattr(sys, "stderr", Recorder())
    with pytest.raises(SystemExit) as stopped:
        exit_with_error("runs/x: no checkpoint")
    assert stopped.value.code == 1 and writes == ["error: runs/x: no checkpoint\n"]

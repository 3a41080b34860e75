"""Progress bars: one way to make them, so that tqdm's environment settings reach every one."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import ROOT

PROBE = (
    "from asd_jax.base.progress import progress_bar\n"
    "print(progress_bar(range(3)).disable, progress_bar(range(3), hidden=True).disable)\n"
)


def bars_disabled(env_extra: dict[str, str]) -> str:
    env = {key: value for key, value in os.environ.items() if not key.startswith("TQDM_")} | env_extra
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env={**env, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.split()


def test_tqdm_disable_hides_every_bar_and_a_hidden_bar_stays_hidden():
    assert bars_disabled({}) == ["False", "True"]
    assert bars_disabled({"TQDM_DISABLE": "1"}) == ["True", "True"]


def test_no_module_passes_disable_to_tqdm_itself():
    """A `disable=` given to tqdm directly would override TQDM_DISABLE again (the bug this fixed)."""
    offenders = [str(path.relative_to(ROOT)) for path in (ROOT / "asd_jax").rglob("*.py")
                 if "disable=" in path.read_text() and "tqdm" in path.read_text() and path.name != "progress.py"]
    assert offenders == []

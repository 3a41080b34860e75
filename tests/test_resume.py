"""Reruns of a workdir: a config that no longer fits its checkpoints is refused before anything is
written (fields that only say how long or how often to train may change); a damaged newest
checkpoint is set aside and the step before resumed; SIGTERM checkpoints the step in flight."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT

from asd_jax.base.errors import Preempted, RunStateError
from asd_jax.training import checkpointing
from configs import crossattn

SMOKE = "configs/crossattn.py:smoke"


ENV = dict(os.environ, JAX_PLATFORMS="cpu")


def launch_command(workdir: Path, data_dir: Path, *overrides: str) -> list[str]:
    return [sys.executable, "launch.py", f"--config={SMOKE}", f"--workdir={workdir}", f"--config.data.data_dir={data_dir}", *overrides]


def launch(workdir: Path, data_dir: Path, *overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run(launch_command(workdir, data_dir, *overrides), cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)


def snapshot(workdir: Path) -> dict[str, str]:
    """Every path under `workdir` with a hash of its bytes (folders with '')."""
    return {
        str(p.relative_to(workdir)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else ""
        for p in sorted(workdir.rglob("*"))
    }


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data_dir) -> Path:
    workdir = tmp_path_factory.mktemp("trained")
    proc = launch(workdir, data_dir)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return workdir


def test_a_changed_model_is_refused_before_anything_is_written(trained, data_dir):
    before = snapshot(trained)
    proc = launch(trained, data_dir, "--config.model.dim=32", "--config.train.num_steps=40")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: {trained}: holds checkpoints trained with another config (model.dim 16 -> 32); "
        f"rerun with the saved values (in {trained / 'config.json'}) or use a new --workdir"
    ]
    assert snapshot(trained) == before


def fake_run(workdir: Path) -> None:
    """A workdir as training leaves it, as far as `check_resumable` looks: config.json and a step."""
    checkpointing.save_run_config(workdir, crossattn.get_config("smoke"))
    (workdir / checkpointing.CHECKPOINT_DIR / "15").mkdir(parents=True)


@pytest.mark.parametrize(
    "field, value",
    [("train.num_steps", 60), ("train.eval_every", 5), ("data.worker_count", 2), ("report.bootstrap_samples", 10)],
)
def test_cadence_and_length_may_change_on_resume(tmp_path, field, value):
    fake_run(tmp_path)
    config = crossattn.get_config("smoke")
    section, name = field.split(".")
    config[section][name] = value
    checkpointing.check_resumable(tmp_path, config)  # no error


@pytest.mark.parametrize(
    "field, value, shown",
    [
        ("data.window", 16, "data.window 32 -> 16"),
        ("data.classes", "2", "data.classes '3' -> '2'"),
        ("optim.learning_rate", 0.1, "optim.learning_rate 0.001 -> 0.1"),
        ("data.synthetic.num_patients", 30, "data.synthetic.num_patients 24 -> 30"),
    ],
)
def test_fields_that_shape_the_checkpoints_may_not(tmp_path, field, value, shown):
    fake_run(tmp_path)
    config = crossattn.get_config("smoke")
    *sections, name = field.split(".")
    node = config
    for section in sections:
        node = node[section]
    node[name] = value
    with pytest.raises(RunStateError, match=r"\(" + shown.replace(".", r"\.") + r"\)"):
        checkpointing.check_resumable(tmp_path, config)


def test_a_run_from_before_a_field_existed_resumes_at_the_value_it_behaved_like(tmp_path):
    fake_run(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    del saved["data"]["on_error"]  # a config.json written before data.on_error existed
    (tmp_path / "config.json").write_text(json.dumps(saved))
    config = crossattn.get_config("smoke")
    checkpointing.check_resumable(tmp_path, config)  # "raise" is what such runs did
    config.data.on_error = "skip"
    with pytest.raises(RunStateError, match=r"data\.on_error 'raise' -> 'skip'"):
        checkpointing.check_resumable(tmp_path, config)


def test_a_workdir_without_checkpoints_starts_afresh(tmp_path):
    checkpointing.save_run_config(tmp_path, crossattn.get_config("smoke"))
    config = crossattn.get_config("smoke")
    config.model.dim = 32
    checkpointing.save_run_config(tmp_path, config)  # nothing was trained with the old one
    assert '"dim": 32' in (tmp_path / "config.json").read_text()


def test_a_damaged_latest_checkpoint_falls_back_to_the_step_before(trained, tmp_path, data_dir):
    workdir = tmp_path / "damaged"
    shutil.copytree(trained, workdir)
    for blob in (workdir / "checkpoints" / "30" / "state").rglob("d/*"):  # the array data, truncated as by a full disk
        blob.write_bytes(blob.read_bytes()[:10])
    proc = launch(workdir, data_dir)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-6000:]
    warnings = [line for line in proc.stderr.splitlines() if "cannot be restored" in line]
    assert len(warnings) == 1 and "checkpoint step 30 cannot be restored" in warnings[0]
    assert warnings[0].endswith(f"moved to {workdir / 'damaged_checkpoints' / '30'}, resuming from step 15")
    assert "resumed from step 15" in proc.stderr
    assert (workdir / "damaged_checkpoints" / "30" / "state").is_dir()  # kept for a look, out of the manager's sight
    retrained = json.loads((workdir / "report" / "results.json").read_text())
    assert retrained == json.loads((trained / "report" / "results.json").read_text())  # steps 16..30 again, same result


def test_sigterm_checkpoints_the_step_in_flight_and_a_rerun_resumes_from_it(tmp_path, data_dir):
    workdir, steps = tmp_path / "preempted", "--config.train.num_steps=60"  # time to deliver the signal mid-training
    command = launch_command(workdir, data_dir, steps)
    proc = subprocess.Popen(command, cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    first_checkpoint, deadline = workdir / "checkpoints" / "15", time.time() + 300
    while not first_checkpoint.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    stderr = proc.communicate(timeout=300)[1]
    assert proc.returncode == Preempted.EXIT_CODE, stderr[-4000:]
    assert "Traceback" not in stderr
    stopped = [line for line in stderr.splitlines() if line.startswith("stopped:")]
    assert len(stopped) == 1, stderr[-4000:]
    match = re.fullmatch(
        rf"stopped: SIGTERM at step (\d+); its checkpoint is in {re.escape(str(workdir / 'checkpoints'))}, "
        "rerun the same command to resume",
        stopped[0],
    )
    assert match, stopped[0]
    step = int(match.group(1))
    assert 15 <= step < 60 and (workdir / "checkpoints" / str(step)).is_dir()
    assert not (workdir / "report" / "results.json").exists()

    resumed = launch(workdir, data_dir, steps)
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    assert f"resumed from step {step}" in resumed.stderr
    assert (workdir / "report" / "results.json").exists()

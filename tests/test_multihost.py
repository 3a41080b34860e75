"""Multi-host on JAX's distributed runtime, proven with real processes on loopback (gloo).

Two processes x two CPU devices train to the same params as one process x four devices on the
same global batches; a checkpoint written on four devices restores and continues on two.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, cpu_devices_env
from test_launch import final_params, launch_command

TRAIN_SCRIPT = textwrap.dedent(
    """
    import functools, sys
    import jax, jax.numpy as jnp, numpy as np
    from configs.crossattn import get_config
    from asd_jax.training import distributed
    from asd_jax.training import optim
    from asd_jax.training import steps
    from asd_jax.training import setup
    from asd_jax.training.parallel import make_data_parallel

    out, port, num_processes, process_id = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    config = get_config("smoke")
    if num_processes > 1:
        config.train.distributed = True
        config.train.coordinator_address = f"127.0.0.1:{port}"
        config.train.num_processes, config.train.process_id = num_processes, process_id
    distributed.maybe_initialize(config.train)
    distributed.maybe_initialize(config.train)  # idempotent
    assert jax.device_count() == 4 and jax.process_count() == num_processes

    num_steps, batch_size, num_classes = 12, 16, 3
    optimizer = optim.make_optimizer(config.optim, num_steps)
    graphdef, state = setup.create_state(config, num_classes, optimizer)
    dp = make_data_parallel(
        "shard_map",
        functools.partial(steps.train_step, graphdef=graphdef, optimizer=optimizer, loss_config=steps.LossConfig(num_classes, 0.1, None)),
        functools.partial(steps.eval_step, graphdef=graphdef),
    )
    state = dp.put_state(jax.tree.map(np.asarray, state))
    rng = np.random.default_rng(0)
    local = batch_size // num_processes
    for _ in range(num_steps):
        batch = {
            "pose": rng.normal(size=(batch_size, config.data.window, 17, 3)).astype(np.float32),
            "prior": rng.dirichlet(np.ones(5), size=batch_size).astype(np.float32),
            "label": rng.integers(0, num_classes, size=batch_size).astype(np.int32),
            "valid": np.ones(batch_size, np.float32),
        }
        mine = {k: v[process_id * local : (process_id + 1) * local] for k, v in batch.items()}
        state, metrics = dp.train_step(state, dp.put_batch(mine))
    params = jax.tree_util.tree_flatten_with_path(dp.get_state(state).params)[0]
    if jax.process_index() == 0:
        np.savez(out, **{jax.tree_util.keystr(p): np.asarray(leaf.addressable_data(0)) for p, leaf in params})
    print("DONE", dp.scalar(metrics["loss"]))
    """
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_train_like_one_process_with_the_same_devices(tmp_path):
    single = subprocess.run(
        [sys.executable, "-c", TRAIN_SCRIPT, str(tmp_path / "single.npz"), "0", "1", "0"],
        cwd=ROOT, env=cpu_devices_env(4), capture_output=True, text=True, timeout=300,
    )
    assert single.returncode == 0, single.stderr[-3000:]
    port = str(free_port())
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", TRAIN_SCRIPT, str(tmp_path / "multi.npz"), port, "2", str(i)],
            cwd=ROOT, env=cpu_devices_env(2), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for i in range(2)
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    for proc, (_, err) in zip(procs, outputs):
        assert proc.returncode == 0, err[-3000:]
    expected, got = np.load(tmp_path / "single.npz"), np.load(tmp_path / "multi.npz")
    assert sorted(expected.files) == sorted(got.files)
    for key in expected.files:
        np.testing.assert_allclose(got[key], expected[key], atol=1e-5, err_msg=key)


@pytest.fixture(scope="module")
def four_device_run(tmp_path_factory, data_dir) -> Path:
    """A smoke training run through launch.py on one process with four CPU devices."""
    workdir = tmp_path_factory.mktemp("four") / "run"
    proc = subprocess.run(launch_command(workdir, data_dir), cwd=ROOT, env=cpu_devices_env(4), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return workdir


def test_launch_on_two_processes_matches_one_process(four_device_run, tmp_path, data_dir):
    port = free_port()
    workdir = tmp_path / "two_processes"
    procs = [
        subprocess.Popen(
            launch_command(
                workdir, data_dir, "--config.train.distributed=True", f"--config.train.coordinator_address=127.0.0.1:{port}",
                "--config.train.num_processes=2", f"--config.train.process_id={i}",
            ),
            cwd=ROOT, env=cpu_devices_env(2), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for i in range(2)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]
    expected, got = final_params(four_device_run), final_params(workdir)
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], atol=1e-5, err_msg=key)
    one = json.loads((four_device_run / "report" / "results.json").read_text())
    two = json.loads((workdir / "report" / "results.json").read_text())
    assert two["selected_step"] == one["selected_step"]
    np.testing.assert_allclose(list(two["headline"].values()), list(one["headline"].values()), atol=1e-6)
    lines = (workdir / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == len((four_device_run / "metrics.jsonl").read_text().splitlines())  # process 0 logs alone


def test_checkpoint_from_four_devices_continues_on_two(four_device_run, tmp_path, data_dir):
    two = tmp_path / "two"
    shutil.copytree(four_device_run, two, ignore=shutil.ignore_patterns("30", "report"))
    assert sorted(p.name for p in (two / "checkpoints").iterdir() if p.name.isdigit()) == ["15"]
    second = subprocess.run(launch_command(two, data_dir), cwd=ROOT, env=cpu_devices_env(2), capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "resumed from step 15" in second.stderr
    expected, got = final_params(four_device_run), final_params(two)
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], atol=1e-5, err_msg=key)
    assert json.loads((two / "report" / "results.json").read_text())["selected_step"] in (15, 30)

"""The benchmark runs end to end in its tiny configuration and writes every number it promises."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from types import SimpleNamespace
from unittest import mock

import jax
import numpy as np
import pytest
import torch
from conftest import ROOT, cpu_devices_env

from asd_jax.modes import bench, bench_profile, bench_tables, bench_torch


def test_tiny_bench_writes_positive_numbers_for_every_measurement(tmp_path, data_dir):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TFDS_DATA_DIR": str(data_dir), "JAX_PLATFORMS": "cpu"}
    command = [sys.executable, "-m", "asd_jax.bench", "--tiny", "--families=cnn", "--threads=1", "--workers=1", "--peak-tflops=0.5",
               f"--out={tmp_path}"]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "x eager" in done.stdout  # the table was printed
    results = json.loads((tmp_path / bench.BENCH_FILE).read_text())
    assert results["machine"]["threads"] == 1 and results["machine"]["torch_threads"] == 1
    assert results["pipeline"]["clips_per_s"] > 0 and results["pipeline"]["first_epoch_clips_per_s"] > 0
    assert results["pipeline"]["worker_count"] == 1  # grain's worker processes start outside absl.app too
    assert results["peak_tflops"] == 0.5 and "MFU %" in done.stdout
    family = results["families"]["cnn"]
    jax_numbers = ("compile_s", "first_step_s", "step_ms", "gflop_per_step", "gflop_per_s", "eval_clips_per_s", "memory_mib")
    assert all(family["jax"][key] > 0 for key in jax_numbers), family["jax"]
    for side in ("torch_eager", "torch_compile"):
        assert family[side]["step_ms"] > 0 and family[side]["first_step_s"] > 0
        assert family[f"speedup_vs_{side}"] == pytest.approx(family[side]["step_ms"] / family["jax"]["step_ms"])
    assert family["pipeline_over_consumption"] > 0
    assert family["jax"]["mfu"] == pytest.approx(family["jax"]["gflop_per_s"] / 500)
    windows = family["windows"]
    assert set(windows) == {str(t) for t in bench.TINY["windows"]}
    assert all(w["step_ms"] > 0 for w in windows.values())
    assert windows["64"]["gflop_per_step"] > windows["32"]["gflop_per_step"]  # twice the frames, more work
    batches = family["batches"]
    assert set(batches) == {str(b) for b in bench.TINY["batches"]} and all(b["step_ms"] > 0 for b in batches.values())
    assert batches["8"]["memory_mib"] > batches["4"]["memory_mib"] > 0  # twice the examples, more memory
    assert batches["8"]["gflop_per_step"] == pytest.approx(2 * batches["4"]["gflop_per_step"], rel=0.05)  # work per example
    assert "ms/example vs B=4" in done.stdout  # the batch sweep's table


def test_options_of_the_command_line():
    options = bench.parse_options(["--tiny", "--families=cnn,stgcn", "--windows=16,48", "--batches=2,6", "--steps=4",
                                   "--no-torch-compile", "--dtype=bfloat16", "--workers=3", "--pipeline-batches=7"])
    assert options.families == ("cnn", "stgcn") and options.windows == (16, 48) and options.steps == 4
    assert options.batches == (2, 6) and bench.family_config("cnn", options, 16, 6).data.batch_size == 6
    assert options.variant == "smoke" and not options.torch_compile
    assert options.dtype == "bfloat16" and options.workers == 3 and options.pipeline_batches == 7
    assert bench.family_config("cnn", options, 16).train.compute_dtype == "bfloat16"
    assert bench.parse_options([]) == bench.BenchOptions()


@pytest.mark.parametrize(("argument", "message"), [
    ("--windows=64,x", "'64,x': expected comma-separated integers"),
    ("--batches=8,0", "'8,0': every value must be at least 1"),
    ("--threads=-1", "'-1': every value must be at least 0"),
    ("--batch=0", "'0': every value must be at least 1"),
    ("--steps=2,3", "'2,3': expected one integer"),
])
def test_a_bad_count_is_a_usage_error_before_any_work(argument, message, capsys):
    with pytest.raises(SystemExit) as stopped:
        bench.parse_options([argument])
    assert stopped.value.code == 2 and message in capsys.readouterr().err


def test_unknown_family_is_refused_before_any_work(tmp_path):
    with pytest.raises(bench.UserError, match="unknown families"):
        bench.run_bench(bench.BenchOptions(families=("resnet",), out=tmp_path))


def test_the_profile_lists_the_steps_costliest_ops_with_their_hlo(tmp_path):
    """`--profile`: the traced step's ops, each an instruction of the compiled step's HLO, in
    descending time, and the trace itself for Perfetto."""
    options = bench.parse_options(["--tiny", "--families=cnn", "--profile", f"--out={tmp_path}"])
    results = bench.run_bench(options)
    ops = results["cnn"]["ops"]
    written = json.loads((tmp_path / "profile_cnn.json").read_text())
    assert written["ops"] == ops and 0 < len(ops) <= 15
    times = [op["ms_per_step"] for op in ops]
    assert times == sorted(times, reverse=True) and times[0] > 0
    assert all(op["hlo"].startswith(f"%{op['op']} = ") for op in ops)  # every row names an op of the step
    assert any(op["op"].startswith(("convolution", "conv_general_dilated")) for op in ops)  # a CNN's step convolves
    assert list((tmp_path / "profile" / "cnn").rglob("*.trace.json.gz"))
    assert results["cnn"]["ops_per_step"] >= len(ops) and results["cnn"]["op_ms_per_step"] >= sum(times) - 1e-9


def test_the_op_table_sums_every_op_of_the_step_per_step():
    """Events of two traced steps: ops of the HLO counted, everything else (Python, the runtime) not."""
    events = [{"ph": "X", "name": "dot.1", "dur": 300}, {"ph": "X", "name": "dot.1", "dur": 100},
              {"ph": "X", "name": "fusion.2", "dur": 50}, {"ph": "X", "name": "fusion.2", "dur": 50},
              {"ph": "X", "name": "fusion.3", "dur": 20}, {"ph": "X", "name": "ThunkExecutor::Execute", "dur": 9000},
              {"ph": "i", "name": "dot.1", "dur": 7}]
    table, totals = bench_profile.op_table(events, {"dot.1", "fusion.2", "fusion.3"}, steps=2, top=2)
    assert table == [{"op": "dot.1", "ms_per_step": 0.2, "runs_per_step": 1.0},
                     {"op": "fusion.2", "ms_per_step": 0.05, "runs_per_step": 1.0}]
    assert totals == {"ops_per_step": 2.5, "op_ms_per_step": pytest.approx(0.26)}
    text = bench_profile.markdown({"family": "cnn", "steps": 2, "ops": table, **totals})
    assert "2 ops ran per step, 0.3 ms of op time per step (summed over threads); the 2 below: 0.2 ms" in text


def test_mfu_divides_by_a_known_peak_only():
    """No MFU on a chip whose peak the bench does not know (this CPU) unless one is given, and none
    in float32, whose peak differs from the bfloat16 one of the table."""
    with mock.patch.object(jax, "devices", return_value=[SimpleNamespace(device_kind="cpu")]):
        assert bench.peak_tflops(bench.BenchOptions(dtype="bfloat16")) == 0.0
        assert bench.peak_tflops(bench.BenchOptions(dtype="bfloat16", peak_tflops=2.5)) == 2.5
    kind = next(iter(bench.PEAK_BF16_TFLOPS))
    with mock.patch.object(jax, "devices", return_value=[SimpleNamespace(device_kind=kind)]):
        assert bench.peak_tflops(bench.BenchOptions(dtype="bfloat16")) == bench.PEAK_BF16_TFLOPS[kind]
        assert bench.peak_tflops(bench.BenchOptions()) == 0.0


def test_twin_step_in_bfloat16_runs_its_forward_under_autocast():
    """`--dtype bfloat16`: the PyTorch side computes in bfloat16 like the JAX models, and its
    step still trains the float32 weights."""
    config = bench.family_config("cnn", bench.BenchOptions(variant="smoke", dtype="bfloat16"), 16)
    weights = bench_torch.initial_weights(config, 3)
    batch = bench.random_batch(config, 4, 3)
    twin = bench_torch.build_twin(config.model, 3)
    seen = []
    cpu = mock.patch.object(bench_torch, "torch_device", return_value=torch.device("cpu"))
    with cpu, mock.patch.object(bench_torch, "build_twin", return_value=twin):
        step = bench_torch.twin_step(config, 3, weights, batch, compiled=False)
    twin.head.register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    step()
    assert seen == [torch.bfloat16]
    changed = [k for k, v in twin.state_dict().items() if v.is_floating_point() and not np.array_equal(v.numpy(), weights[k])]
    assert changed and all(v.dtype == torch.float32 for v in twin.state_dict().values() if v.is_floating_point())


def test_twin_step_puts_the_twin_and_the_batch_on_the_torch_device():
    """On a GPU machine the twin and its batch go to CUDA (here: `meta`, the same code path)."""
    config = bench.family_config("cnn", bench.BenchOptions(variant="smoke"), 16)
    weights = bench_torch.initial_weights(config, 3)
    batch = bench.random_batch(config, 4, 3)
    meta = mock.patch.object(bench_torch, "torch_device", return_value=torch.device("meta"))
    with meta, mock.patch.object(bench_torch, "make_step") as make_step:
        bench_torch.twin_step(config, 3, weights, batch, compiled=False)
    _, twin, _, tensors = make_step.call_args.args
    assert {p.device.type for p in twin.parameters()} == {"meta"}
    assert {t.device.type for t in tensors.values()} == {"meta"} and set(tensors) == set(batch)


def test_a_sweep_row_gives_cost_per_frame_or_example_relative_to_its_first_point():
    points = {"16": {"step_ms": 10.0, "gflop_per_step": 1.0}, "64": {"step_ms": 20.0, "gflop_per_step": 4.0}}
    row = bench_tables.sweep_row("cnn", points, "B", "example")
    assert row == {"family": "cnn", "B=16 ms": "10.0", "B=64 ms": "20.0",
                   "ms/example vs B=16": "1.00 0.50", "GFLOP/example vs B=16": "1.00 1.00"}
    with_memory = {"16": {**points["16"], "memory_mib": 10.4}, "64": {**points["64"], "memory_mib": 40.6}}
    assert bench_tables.sweep_row("cnn", with_memory, "B", "example")["MiB"] == "10 41"
    no_count = {size: {**p, "gflop_per_step": 0.0} for size, p in points.items()}  # a backend without FLOP counts
    assert bench_tables.sweep_row("cnn", no_count, "T", "T")["GFLOP/T vs T=16"] == "-"


def test_the_tables_of_a_bench_json_from_before_the_batch_sweep_still_print():
    """docs/bench_previous.json and the GPU runs' files have no batch sweep: their tables print without it."""
    results = json.loads((ROOT / "docs" / "bench_gpu_h100.json").read_text())
    assert all("batches" not in family for family in results["families"].values())
    text = bench_tables.tables(results)
    assert "T=512 ms" in text and "B=" not in text


FLOPS_SCRIPT = """
import json, jax
from asd_jax.data import folds
from asd_jax.modes import bench
options = bench.parse_options(["--tiny"])
config = bench.family_config("cnn", options, 32, 8)
num_classes = len(folds.class_names(config.data))
_, facts, _, _ = bench.jax_train(config, bench.random_batch(config, 8, num_classes), num_classes)
print("RESULT" + json.dumps({"devices": jax.device_count(), **facts}))
"""


def test_a_step_split_over_devices_reports_the_whole_steps_flops():
    """XLA's cost analysis of an SPMD step is one device's share; the bench reports the step's."""
    results = []
    for devices in (1, 2):
        done = subprocess.run([sys.executable, "-c", FLOPS_SCRIPT], cwd=ROOT, env=cpu_devices_env(devices),
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        results.append(json.loads(next(line for line in done.stdout.splitlines() if line.startswith("RESULT"))[6:]))
    one, two = results
    assert (one["devices"], two["devices"]) == (1, 2)
    assert two["gflop_per_step"] == pytest.approx(one["gflop_per_step"], rel=0.05)

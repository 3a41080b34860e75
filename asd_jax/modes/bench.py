r"""`--mode=bench`: the project's JAX train step against its PyTorch twin, side by side in one process.

    python -m asd_jax.bench                       # every family at default sizes, writes ./bench.json
    python -m asd_jax.bench --tiny --out /tmp/b   # seconds: smoke models, 2 timed steps, small windows
    python launch.py --mode=bench [--out folder]  # the default run
    python -m asd_jax.bench --profile --families=crossattn --steps=5   # where its step's time goes, op by op
    python -m asd_jax.bench --dtype bfloat16      # on a GPU: bfloat16 activations both sides, with MFU

For each model family (configs/<family>.py) it times
- the real JAX train step (training/setup.py → DataParallel: jit(shard_map(steps.train_step)),
  forward, backward, clipped AdamW, donated state) against the twin (pytorch/twins) trained by
  a plain AdamW + clip_grad_norm_ step, eagerly and under torch.compile; same batch, same initial
  weights (converted), median of `--steps` steps after `--warmup` ones, every step synchronised,
  the three steps taking turns (`timed`) so their ratios are measured under the same load;
- compile / first-step time of each, FLOPs of the compiled JAX step (XLA cost_analysis) and the
  FLOP/s achieved, its memory (XLA memory_analysis), eval throughput of the JAX forward;
- the JAX step at each window length of `--windows` and at each global batch size of `--batches`;
and, once, the clips/s of the TFDS + grain training pipeline (data/input_pipeline.py) against
what each family's step consumes (batch / step time).

On a GPU (JAX's default backend) the PyTorch twin runs on CUDA too (bench_torch.py). `--dtype
bfloat16` sets every family's `train.compute_dtype` and runs the twin's forward under autocast;
where the chip's dense bfloat16 peak is known (PEAK_BF16_TFLOPS, or `--peak-tflops`), the table
gives the FLOP utilisation: the compiled step's FLOPs (XLA's cost analysis) per second over
that peak. XLA:GPU's count leaves out the convolutions it hands to cuDNN, so on a GPU the
column understates convolutional models (docs/performance.md). The PyTorch side is what a
PyTorch user would write: default (unfused) AdamW, torch.compile of the model only. In float32
on a GPU the two sides may differ in matmul precision (XLA may use TF32, torch does not unless
told), so compare float32 GPU timings with that in mind.

Threads: `--threads N` pins the process to N cores before JAX starts (XLA's CPU thread pool
sizes itself from the affinity mask) and sets torch.set_num_threads(N); default: every core
this process may use. XLA_FLAGS is read from the environment and recorded, never set here.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import ml_collections
import numpy as np

from asd_jax.base.errors import UserError, exit_with_error
from asd_jax.data import folds, input_pipeline
from asd_jax.modes import bench_profile, bench_tables, bench_torch, compare
from asd_jax.training import setup

FAMILIES = ("crossattn", "cnn", "stgcn", "vit_phasemix")
BENCH_FILE = "bench.json"
# Dense bfloat16 tensor-core peaks from the vendor's datasheets, by jax Device.device_kind.
PEAK_BF16_TFLOPS = {"NVIDIA H100 80GB HBM3": 989.4, "NVIDIA H100 PCIe": 756.5, "NVIDIA H200": 989.4}


@dataclasses.dataclass(frozen=True)
class BenchOptions:
    """What to time and how often; the defaults are the documented run (docs/performance.md)."""

    families: tuple[str, ...] = FAMILIES
    batch: int = 64
    window: int = 64
    steps: int = 20  # timed steps per measurement (median)
    warmup: int = 3  # untimed steps before them (the first one compiles)
    windows: tuple[int, ...] = (64, 128, 256, 512)
    window_steps: int = 5  # timed JAX steps per point of the window and batch sweeps
    batches: tuple[int, ...] = (16, 32, 64, 128, 256)  # global batch sizes of the batch sweep (at `window`)
    pipeline_batches: int = 20
    workers: int | None = None  # grain worker processes of the pipeline measure (None: the config's data.worker_count)
    torch_compile: bool = True
    threads: int = 0  # 0: every core the process may use
    variant: str | None = None  # config variant of every family ('smoke' under --tiny)
    out: Path = Path(".")
    profile: bool = False  # instead of timing: trace each family's step op by op (bench_profile.py)
    dtype: str = "float32"  # every family's train.compute_dtype (and the twin's autocast)
    peak_tflops: float = 0.0  # the chip's peak for the MFU column; 0: PEAK_BF16_TFLOPS under bfloat16


TINY = dict(batch=8, window=32, steps=2, warmup=1, windows=(32, 64), window_steps=1, batches=(4, 8), pipeline_batches=2, variant="smoke")


def pin_threads(threads: int) -> int:
    """Pins this process to `threads` cores (0: all it may use) and torch to as many threads.

    Must run before JAX creates its CPU client: XLA sizes its thread pool from the affinity mask."""
    import torch

    allowed = sorted(os.sched_getaffinity(0))
    if threads:
        if threads > len(allowed):
            raise UserError(f"--threads={threads}, but this process may use only {len(allowed)} cores")
        os.sched_setaffinity(0, allowed[:threads])
    count = len(os.sched_getaffinity(0))
    torch.set_num_threads(count)
    return count


def timed(steps: dict[str, Callable[[], Any]], count: int, warmup: int) -> dict[str, dict[str, float]]:
    """Per step: seconds of its first call (compilation for jit and torch.compile), and the median
    of `count` calls after `warmup` more. The steps take turns, one call each per round (the order
    reversed every other round), so a machine whose speed drifts by tens of percent within a
    minute, as a shared one does, slows them alike and their ratio holds. Each `step` must block
    until its results are ready."""
    def clock(step: Callable[[], Any]) -> float:
        start = time.perf_counter()
        step()
        return time.perf_counter() - start

    first = {name: clock(step) for name, step in steps.items()}
    for _ in range(warmup):
        for step in steps.values():
            step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for round_index in range(count):
        order = list(steps) if round_index % 2 == 0 else list(reversed(steps))
        for name in order:
            times[name].append(clock(steps[name]))
    return {name: {"first_step_s": first[name], "step_ms": 1e3 * statistics.median(times[name])} for name in steps}


def progress(message: str) -> None:
    """One line per measurement on stderr, so a slow stage (torch.compile) is visible as it runs."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def family_config(family: str, options: BenchOptions, window: int, batch: int | None = None) -> ml_collections.ConfigDict:
    config = compare.load_config(family, [], options.variant)
    config.data.batch_size, config.data.window = batch or options.batch, window
    config.train.compute_dtype = options.dtype
    return config


def peak_tflops(options: BenchOptions) -> float:
    """The peak the MFU column divides by; 0 where unknown (no column)."""
    if options.peak_tflops:
        return options.peak_tflops
    return PEAK_BF16_TFLOPS.get(jax.devices()[0].device_kind, 0.0) if options.dtype == "bfloat16" else 0.0


def random_batch(config: ml_collections.ConfigDict, batch: int, num_classes: int, seed: int = 0) -> dict[str, np.ndarray]:
    """A training batch of the pipeline's shapes and dtypes (timing does not depend on values)."""
    rng = np.random.default_rng(seed)
    return {
        "pose": rng.normal(size=(batch, config.data.window, 17, 3)).astype(np.float32),
        "prior": rng.dirichlet(np.ones(5), size=batch).astype(np.float32),
        "label": rng.integers(0, num_classes, size=batch).astype(np.int32),
        "valid": np.ones(batch, np.float32),
    }


def jax_train(config: ml_collections.ConfigDict, batch: dict[str, np.ndarray], num_classes: int):
    """The project's own compiled train step, ready to time: (step, what its compilation says
    (compile seconds, FLOPs, memory), the current state, dp)."""
    dp, host_state, _ = setup.fresh_parallel(config, num_classes)
    state, device_batch = dp.put_state(host_state), dp.put_batch(batch)
    start = time.perf_counter()
    compiled = dp.compile(state, device_batch)
    facts = {"compile_s": time.perf_counter() - start}

    def step():
        nonlocal state
        state, metrics = dp.train_step(state, device_batch)
        jax.block_until_ready((state, metrics))

    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    # The analyses are of one device's share of the SPMD step: its FLOPs times the devices are the
    # step's; its memory stays per device, what each chip must hold.
    facts["devices"] = dp.mesh.size
    facts["gflop_per_step"] = dp.mesh.size * float(cost.get("flops", 0.0)) / 1e9
    memory = compiled.memory_analysis()
    if memory is not None:
        sizes = (memory.argument_size_in_bytes, memory.output_size_in_bytes, memory.temp_size_in_bytes)
        facts["memory_mib"] = (sizes[0] + sizes[1] - memory.alias_size_in_bytes + sizes[2]) / 2**20
    return step, facts, lambda: state, dp


def sweep(family: str, options: BenchOptions, points: dict[str, tuple[int, int]], num_classes: int) -> dict[str, dict[str, float]]:
    """The JAX step at each point (window, batch) of a sweep: every point compiled first, then
    timed in turns like the main table's steps, so that the machine's drift within a sweep does not
    bend the cost-versus-size curve it is read for."""
    steps, facts = {}, {}
    for name, (window, size) in points.items():
        progress(f"{family}: compiling the JAX step at T={window}, batch {size}")
        config = family_config(family, options, window, size)
        steps[name], facts[name], _, _ = jax_train(config, random_batch(config, size, num_classes), num_classes)
    progress(f"{family}: timing the {len(points)} steps of the sweep in turns")
    timings = timed(steps, options.window_steps, 1)
    kept = ("compile_s", "gflop_per_step", "memory_mib")
    return {name: {"step_ms": timings[name]["step_ms"], **{k: facts[name][k] for k in kept if k in facts[name]}} for name in points}


def jax_eval(config: ml_collections.ConfigDict, dp: Any, state: Any, num_classes: int, steps: int, warmup: int) -> float:
    """Clips (windows) per second of the compiled eval forward at `data.eval_batch_size`."""
    size = config.data.eval_batch_size
    batch = random_batch(config, size, num_classes) | {"clip_index": np.arange(size, dtype=np.int32)}
    device_batch = dp.put_batch(batch)
    result = timed({"eval": lambda: jax.block_until_ready(dp.eval_step(state, device_batch))}, steps, warmup)["eval"]
    return size / (result["step_ms"] / 1e3)


def bench_family(family: str, options: BenchOptions) -> dict[str, Any]:
    """Every measurement of one family at the default window and batch, and the JAX step at each
    window (batch fixed) and at each batch size (window fixed)."""
    config = family_config(family, options, options.window)
    num_classes = len(folds.class_names(config.data))
    batch = random_batch(config, options.batch, num_classes)
    weights = bench_torch.initial_weights(config, num_classes)  # before any donated JAX step
    progress(f"{family}: compiling the JAX train step")
    jax_step, facts, current_state, dp = jax_train(config, batch, num_classes)
    steps = {"jax": jax_step}
    for name, compiled in (("torch_eager", False), ("torch_compile", True)):
        if not compiled or options.torch_compile:
            steps[name] = bench_torch.twin_step(config, num_classes, weights, batch, compiled=compiled)
    progress(f"{family}: timing {', '.join(steps)} in turns (torch.compile compiles on its first step)")
    timings = timed(steps, options.steps, options.warmup)
    jax_result = facts | timings.pop("jax")
    jax_result["gflop_per_s"] = jax_result["gflop_per_step"] / (jax_result["step_ms"] / 1e3)
    if peak_tflops(options):
        jax_result["mfu"] = jax_result["gflop_per_s"] / (1e3 * peak_tflops(options) * jax_result["devices"])
    progress(f"{family}: JAX eval forward")
    jax_result["eval_clips_per_s"] = jax_eval(config, dp, current_state(), num_classes, options.steps, options.warmup)
    result = {"jax": jax_result, **timings}
    for name in timings:
        result[f"speedup_vs_{name}"] = result[name]["step_ms"] / jax_result["step_ms"]
    # every point of a sweep timed the same way, the default one too
    result["windows"] = sweep(family, options, {str(window): (window, options.batch) for window in options.windows}, num_classes)
    result["batches"] = sweep(family, options, {str(size): (options.window, size) for size in options.batches}, num_classes)
    return result


def bench_pipeline(family: str, options: BenchOptions) -> dict[str, Any]:
    """Clips/s of the training input pipeline on the family's dataset (built first if needed): over
    its first batches, which decode every clip, and in the steady state of a run, once an epoch has
    passed and the clips come from the pipeline's cache (what training consumes most of a run)."""
    config = family_config(family, options, options.window)
    if options.workers is not None:
        config.data.worker_count = options.workers
    progress(f"input pipeline ({config.data.worker_count} worker processes)")
    fold = folds.prepare_fold(config, None)
    rows = fold.split.train
    iterator = input_pipeline.train_iterator(fold.source, fold.table, rows, config.data, seed=config.seed)
    epoch = input_pipeline.TrainExamples(fold.source, fold.table, rows, config.data, config.seed).epoch_length

    def clips_per_s(batches: int) -> float:
        start = time.perf_counter()
        for _ in range(batches):
            next(iterator)
        return options.batch * batches / (time.perf_counter() - start)

    start = time.perf_counter()
    next(iterator)
    first = time.perf_counter() - start
    first_epoch = clips_per_s(options.pipeline_batches)
    for _ in range(max(0, -(-epoch // options.batch) - options.pipeline_batches - 1)):  # the rest of the first epoch
        next(iterator)
    return {"first_batch_s": first, "first_epoch_clips_per_s": first_epoch, "clips_per_s": clips_per_s(options.pipeline_batches),
            "batch": options.batch, "window": options.window, "worker_count": config.data.worker_count}


def machine(threads: int) -> dict[str, Any]:
    import torch

    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    return {"cpu": model, "threads": threads, "torch_threads": torch.get_num_threads(), "jax": jax.__version__,
            "jax_devices": [str(d) for d in jax.devices()], "device_kind": jax.devices()[0].device_kind,
            "torch_device": torch.cuda.get_device_name() if bench_torch.torch_device().type == "cuda" else "cpu",
            "torch": torch.__version__, "python": platform.python_version(),
            "xla_flags": os.environ.get("XLA_FLAGS", ""), "load_average_at_start": os.getloadavg()}


def run_profile(options: BenchOptions) -> dict[str, Any]:
    """`--profile`: each family's train step traced op by op; prints and writes the op tables."""
    results = {}
    for family in options.families:
        config = family_config(family, options, options.window)
        num_classes = len(folds.class_names(config.data))
        progress(f"{family}: tracing {options.steps} JAX train steps")
        batch = random_batch(config, options.batch, num_classes)
        results[family] = bench_profile.profile_family(family, config, batch, num_classes, options.steps, options.warmup, options.out)
        print(bench_profile.markdown(results[family]) + "\n")
    return results


def run_bench(options: BenchOptions) -> dict[str, Any]:
    """Runs every measurement, prints the tables and writes `<out>/bench.json` (or, with
    `options.profile`, the op tables of `run_profile`)."""
    unknown = sorted(set(options.families) - set(FAMILIES))
    if unknown:
        raise UserError(f"unknown families {unknown}; expected some of {', '.join(FAMILIES)}")
    threads = pin_threads(options.threads)  # before the first JAX computation
    if options.profile:
        options.out.mkdir(parents=True, exist_ok=True)
        return run_profile(options)
    results: dict[str, Any] = {"machine": machine(threads), "options": {**dataclasses.asdict(options), "out": str(options.out)},
                               "peak_tflops": peak_tflops(options)}
    results["pipeline"] = bench_pipeline(options.families[0], options)
    results["families"] = {}
    options.out.mkdir(parents=True, exist_ok=True)
    for family in options.families:
        result = bench_family(family, options)
        consumed = options.batch / (result["jax"]["step_ms"] / 1e3)
        result["pipeline_over_consumption"] = results["pipeline"]["clips_per_s"] / consumed
        results["families"][family] = result
        # after every family: a long run stopped halfway keeps what it measured
        (options.out / BENCH_FILE).write_text(json.dumps(results, indent=2))
    print(bench_tables.tables(results))
    return results


def integers(text: str, least: int = 1) -> tuple[int, ...]:
    """A comma-separated list of integers of at least `least` (an argparse type: a bad one is a
    usage error before any work, not a traceback minutes into the run)."""
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated integers") from None
    if min(values) < least:
        raise argparse.ArgumentTypeError(f"{text!r}: every value must be at least {least}")
    return values


def integer(least: int) -> Callable[[str], int]:
    """One integer of at least `least`, as an argparse type."""
    def parse(text: str) -> int:
        values = integers(text, least)
        if len(values) != 1:
            raise argparse.ArgumentTypeError(f"{text!r}: expected one integer")
        return values[0]
    return parse


def parse_options(argv: list[str] | None = None) -> BenchOptions:
    parser = argparse.ArgumentParser(prog="python -m asd_jax.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--tiny", action="store_true", help="smoke models, few steps, small windows (seconds; tests)")
    parser.add_argument("--families", help=f"comma-separated subset of {','.join(FAMILIES)}")
    parser.add_argument("--batch", type=integer(1))
    parser.add_argument("--steps", type=integer(1), help="timed steps per measurement")
    parser.add_argument("--windows", type=integers, help="comma-separated window lengths of the sweep")
    parser.add_argument("--batches", type=integers, help="comma-separated global batch sizes of the batch sweep")
    parser.add_argument("--workers", type=integer(0), help="grain worker processes of the input pipeline measure (default: the config's)")
    parser.add_argument("--pipeline-batches", type=integer(1), help="batches timed in the input pipeline measure")
    parser.add_argument("--threads", type=integer(0), help="cores to pin to (default: all this process may use)")
    parser.add_argument("--no-torch-compile", action="store_true", help="skip the torch.compile column")
    parser.add_argument("--dtype", choices=("float32", "bfloat16"), help="activation dtype of both sides (default float32)")
    parser.add_argument("--peak-tflops", type=float, help="the chip's peak TFLOP/s for the MFU column (default: known GPUs under bfloat16)")
    parser.add_argument("--out", type=Path, default=Path("."), help=f"folder for {BENCH_FILE}")
    parser.add_argument("--profile", action="store_true", help="trace each family's train step and print its costliest XLA ops")
    args = parser.parse_args(argv)
    fields: dict[str, Any] = dict(TINY) if args.tiny else {}
    if args.families:
        fields["families"] = tuple(args.families.split(","))
    for name in ("windows", "batches", "batch", "steps", "threads", "dtype", "peak_tflops", "workers", "pipeline_batches"):
        if getattr(args, name) is not None:
            fields[name] = getattr(args, name)
    return BenchOptions(**fields, torch_compile=not args.no_torch_compile, out=args.out, profile=args.profile)


def main(argv: list[str] | None = None) -> None:
    try:
        run_bench(parse_options(argv))
    except UserError as err:
        exit_with_error(str(err))


def run(invocation) -> None:
    if invocation.config is not None:
        raise UserError("--mode=bench takes no --config: it runs configs/<family>.py of every family "
                        "(python -m asd_jax.bench --help for a subset)")
    run_bench(BenchOptions(out=invocation.out or Path(".")))


if __name__ == "__main__":
    main()

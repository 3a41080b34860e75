"""`python -m asd_jax.bench --profile`: where each family's JAX train step spends its time, op by op.

The same step the bench times (setup.fresh_parallel), traced with jax.profiler for `--steps`
steps after the warm-up; the trace's XLA ops (fusions, dots, convolutions, copies, loops) are
summed by name and divided by the steps. Writes `<out>/profile/<family>/` (the trace, for
Perfetto or TensorBoard) and `<out>/profile_<family>.json` (the op table), and prints the table.
docs/performance.md reads these tables.
"""

from __future__ import annotations

import collections
import gzip
import json
from pathlib import Path
from typing import Any

import jax

from asd_jax.base.files import write_atomically
from asd_jax.training import setup

TOP = 15


def op_table(events: list[dict[str, Any]], ops: set[str], steps: int, top: int = TOP) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """The `top` ops of the step (trace events named like an instruction of its HLO, `ops`; not
    the runtime's or Python's) by total time, per step: name, ms per step, runs per step; and the
    totals over every op: how many ran per step and their summed time (over all threads), which
    says whether a few large ops or many small ones make the step."""
    total: collections.Counter[str] = collections.Counter()
    runs: collections.Counter[str] = collections.Counter()
    for event in events:
        name = event.get("name", "")
        if event.get("ph") == "X" and name in ops:
            total[name] += event.get("dur", 0)
            runs[name] += 1
    table = [{"op": name, "ms_per_step": us / 1e3 / steps, "runs_per_step": runs[name] / steps} for name, us in total.most_common(top)]
    totals = {"ops_per_step": sum(runs.values()) / steps, "op_ms_per_step": sum(total.values()) / 1e3 / steps}
    return table, totals


def profile_family(family: str, config, batch: dict, num_classes: int, steps: int, warmup: int, out: Path) -> dict[str, Any]:
    """Traces `steps` train steps of `family` and returns its op table with the step's HLO text
    of each listed op (what the op computes: shapes, layouts, the JAX operation it came from)."""
    dp, host_state, _ = setup.fresh_parallel(config, num_classes)
    state, device_batch = dp.put_state(host_state), dp.put_batch(batch)
    hlo = dp.compile(state, device_batch).as_text()
    for _ in range(warmup):
        state, metrics = dp.train_step(state, device_batch)
        jax.block_until_ready((state, metrics))
    trace_dir = out / "profile" / family
    with jax.profiler.trace(str(trace_dir), create_perfetto_trace=True):
        for _ in range(steps):
            state, metrics = dp.train_step(state, device_batch)
            jax.block_until_ready((state, metrics))
    trace = max(trace_dir.rglob("*.trace.json.gz"), key=lambda p: p.stat().st_mtime)
    with gzip.open(trace) as f:
        events = json.load(f)["traceEvents"]
    definitions = {line.split(" = ", 1)[0].strip().lstrip("%"): line.strip() for line in hlo.splitlines() if " = " in line}
    table, totals = op_table(events, set(definitions), steps)
    for row in table:
        row["hlo"] = definitions.get(row["op"], "")[:300]
    result = {"family": family, "steps": steps, "trace": str(trace), "ops": table, **totals}
    write_atomically(out / f"profile_{family}.json", json.dumps(result, indent=2))
    return result


def markdown(result: dict[str, Any]) -> str:
    title = f"{result['family']}: top XLA ops of the train step ({result['steps']} traced steps)"
    top = sum(r["ms_per_step"] for r in result["ops"])
    summary = (f"{result['ops_per_step']:.0f} ops ran per step, {result['op_ms_per_step']:.1f} ms of op time per step "
               f"(summed over threads); the {len(result['ops'])} below: {top:.1f} ms")
    lines = [title, "", summary, "", "| op | ms/step | runs/step |", "| --- | --- | --- |"]
    lines += [f"| {r['op']} | {r['ms_per_step']:.2f} | {r['runs_per_step']:g} |" for r in result["ops"]]
    return "\n".join(lines)

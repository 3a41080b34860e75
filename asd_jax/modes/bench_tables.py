"""The bench's results (bench.py, `bench.json`) as the text tables it prints and
docs/performance.md quotes: one row per family, then the window and batch sweeps."""

from __future__ import annotations

from typing import Any

from asd_jax.evaluation import report


def tables(results: dict[str, Any]) -> str:
    """The console (and docs/performance.md) form: one row per family, then the window and batch sweeps."""
    rows, sweep, batch_sweep = [], [], []
    for family, r in results["families"].items():
        compiled = r.get("torch_compile", {})
        rows.append({
            "family": family, "jax ms": f"{r['jax']['step_ms']:.1f}", "eager ms": f"{r['torch_eager']['step_ms']:.1f}",
            "compile ms": f"{compiled['step_ms']:.1f}" if compiled else "-",
            "x eager": f"{r['speedup_vs_torch_eager']:.2f}",
            "x compile": f"{r['speedup_vs_torch_compile']:.2f}" if compiled else "-",
            "jit s": f"{r['jax']['compile_s'] + r['jax']['first_step_s']:.1f}",
            "torch.compile s": f"{compiled['first_step_s']:.1f}" if compiled else "-",
            "eval clips/s": f"{r['jax']['eval_clips_per_s']:.0f}", "GFLOP/step": f"{r['jax']['gflop_per_step']:.2f}",
            "GFLOP/s": f"{r['jax']['gflop_per_s']:.1f}",
            **({"MFU %": f"{100 * r['jax']['mfu']:.2f}"} if "mfu" in r["jax"] else {}),
            "MiB": f"{r['jax'].get('memory_mib', float('nan')):.0f}",
            "pipeline/need": f"{r['pipeline_over_consumption']:.2f}",
        })
        sweep.append(sweep_row(family, r["windows"], "T", "T"))
        if r.get("batches"):  # bench.json files from before the batch sweep have none
            batch_sweep.append(sweep_row(family, r["batches"], "B", "example"))
    pipeline = results["pipeline"]
    sweeps = [report.text_table(rows, list(rows[0])), "", report.text_table(sweep, list(sweep[0])), ""]
    if batch_sweep:
        sweeps += [report.text_table(batch_sweep, list(batch_sweep[0])), ""]
    return "\n".join([*sweeps,
                      f"input pipeline: {pipeline['clips_per_s']:.0f} clips/s once an epoch has filled its clip cache, "
                      f"{pipeline['first_epoch_clips_per_s']:.0f} in the first (batch {pipeline['batch']}, window {pipeline['window']})"])


def sweep_row(family: str, points: dict[str, dict[str, float]], symbol: str, unit: str) -> dict[str, str]:
    """One family's sweep over window lengths (symbol T) or batch sizes (B): the step time at each,
    and its time and FLOPs per frame (per example) relative to the first point: 1.00 at every point
    = growing linearly, above 1 = faster than linearly."""
    base_size, base = next(iter(points.items()))

    def relative(key: str) -> str:
        if not base[key]:  # no FLOP count from this backend
            return "-"
        return " ".join(f"{(p[key] / int(size)) / (base[key] / int(base_size)):.2f}" for size, p in points.items())

    row = {"family": family, **{f"{symbol}={size} ms": f"{p['step_ms']:.1f}" for size, p in points.items()},
           f"ms/{unit} vs {symbol}={base_size}": relative("step_ms"), f"GFLOP/{unit} vs {symbol}={base_size}": relative("gflop_per_step")}
    if all("memory_mib" in p for p in points.values()):  # older bench.json files have none
        row["MiB"] = " ".join(f"{p['memory_mib']:.0f}" for p in points.values())
    return row

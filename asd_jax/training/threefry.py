"""Threefry random bits on CPU without a rolled loop: the same bits, a third less step time.

JAX lowers its Threefry-2x32 hash on CPU as a `while` loop of five iterations (to keep compile
times short), and on GPU/TPU as the same rounds written out. XLA:CPU runs each loop iteration as
separate kernels with copies of the loop-carried state, which made the dropout masks of the train
step (one key per example, `steps.example_keys`) a third of vit_phasemix's step time
(docs/performance.md). Registering JAX's own unrolled lowering for CPU gives the identical
arithmetic, so identical bits: every sharded = pmap = one-device and resume guarantee holds, and
runs trained before replay bitwise (tests/test_steps.py checks the bits against a process that
keeps the rolled loop).

The rule lives in jax._src; if a JAX release moves it, the rolled loop stays (correct, slower)
and a warning says so.
"""

from __future__ import annotations

from absl import logging

MOVED = "JAX moved its Threefry lowering: CPU steps keep the rolled loop (slower, same results)"


def unroll_on_cpu() -> bool:
    """Registers the unrolled Threefry lowering for CPU; returns whether it could. Idempotent."""
    try:
        from jax._src.interpreters import mlir
        from jax._src.random import threefry2x32

        rule, primitive = threefry2x32._threefry2x32_lowering_rule, threefry2x32.threefry2x32_p
    except (ImportError, AttributeError):
        logging.warning(MOVED)
        return False
    mlir.register_lowering(primitive, rule, platform="cpu")
    return True

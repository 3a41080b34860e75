"""Orbax checkpoints of everything a restart needs: train state (params, optimiser, step, RNG)
and the grain iterator, saved together so a resumed run sees exactly the data it would have seen.

Kept: the latest `keep` steps (for resume) and the best step by the validation metric (for
testing). Restoring takes an abstract target carrying the current shardings, so a checkpoint
written on one device layout restores onto another.

Which step a finished run stands for (`selected_step`) is decided here, once: the best on
validation, or, for weights trained elsewhere (`save_imported`, whose provenance file sits beside
the checkpoints), the imported step.
"""

from __future__ import annotations

import json
import logging as pylogging
import sys
from pathlib import Path
from typing import Any

import grain
import jax
import ml_collections
import orbax.checkpoint as ocp
from absl import logging
from orbax.checkpoint import checkpoint_managers

from asd_jax.base.errors import RunStateError
from asd_jax.base.files import write_atomically

STATE, DATA = "state", "data"
CHECKPOINT_DIR = "checkpoints"
DAMAGED_DIR = "damaged_checkpoints"  # steps that no longer restore, moved out of the manager's sight
CONFIG_FILE = "config.json"  # the config a run's checkpoints were trained with
IMPORTED_FILE = "imported.json"  # provenance of weights trained elsewhere (--mode=import)
ABANDONED_READ_MESSAGES = ("Future exception was never retrieved", "Task exception was never retrieved")

# The config fields a rerun of a workdir that holds checkpoints may change (a dotted name covers
# its subfields): how long and how often it trains, logs, validates and saves, how it spreads over
# devices and hosts, how it reads data, and what it reports. Every other field (model.*, optim.*,
# seed, data.window, data.classes, the cohort, the split...) shapes the checkpoints or what they
# mean, so a rerun that changes one is refused before anything is written.
MAY_CHANGE_ON_RESUME = (
    "train.num_steps", "train.log_every", "train.eval_every", "train.checkpoint_every", "train.keep_checkpoints",
    "train.early_stop_patience", "train.parallel", "train.distributed", "train.coordinator_address",
    "train.num_processes", "train.process_id", "data.worker_count", "data.data_dir", "data.eval_batch_size",
    "report", "explain",
)


def make_manager(directory: str | Path, *, keep: int, best_metric: str) -> ocp.CheckpointManager:
    """A manager that saves asynchronously and keeps the latest `keep` and the single best step."""
    policy = checkpoint_managers.AnyPreservationPolicy(
        [
            checkpoint_managers.LatestN(n=keep),
            checkpoint_managers.BestN(
                get_metric_fn=lambda metrics: metrics[best_metric],
                n=1,
                keep_checkpoints_without_metrics=False,
            ),
        ]
    )
    options = ocp.CheckpointManagerOptions(
        best_fn=lambda metrics: metrics[best_metric],
        best_mode="max",
        preservation_policy=policy,
        enable_async_checkpointing=True,
    )
    return ocp.CheckpointManager(Path(directory).absolute(), options=options, item_names=(STATE, DATA))


def save_run_config(workdir: Path, config: ml_collections.ConfigDict) -> None:
    """The run's resolved config beside its checkpoints (process 0 writes), once
    `check_resumable` has found it fits the checkpoints already there."""
    check_resumable(workdir, config)
    if jax.process_index() == 0:
        workdir.mkdir(parents=True, exist_ok=True)
        write_atomically(workdir / CONFIG_FILE, config.to_json_best_effort(indent=2))


def load_run_config(workdir: Path) -> ml_collections.ConfigDict:
    """The config a run was trained with, as it saved it; a workdir that holds no run (nothing, a
    cross-validation's root, a damaged config.json) is refused before anything reads or writes it."""
    path = workdir / CONFIG_FILE
    if not path.exists() and (workdir / "fold_0").is_dir():
        raise RunStateError(f"{workdir} is a cross-validation run: give one of its folds, e.g. --workdir={workdir / 'fold_0'}")
    if not path.exists():
        raise RunStateError(f"{path}: not found; {workdir} is not a trained run (train it first, or check --workdir)")
    try:
        saved = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as error:
        raise RunStateError(f"{path}: not a run's config, it does not read as JSON ({error})") from None
    if not isinstance(saved, dict) or not {"data", "model", "train"} <= saved.keys():
        raise RunStateError(f"{path}: not a run's config, it lacks the data, model or train section")
    config = ml_collections.ConfigDict(saved)
    for dotted, value in ADDED_FIELDS.items():  # a run saved before the field existed did this
        *parents, leaf = dotted.split(".")
        node = config
        for name in parents:
            node = node[name]
        if leaf not in node:
            node[leaf] = value
    return config


# Fields added after runs were trained with the project, at the value that reproduces what those
# runs did: a saved config without the field resumes when the given value is this one.
ADDED_FIELDS: dict[str, Any] = {
    "data.on_error": "raise", "data.pad": "edge", "data.train_classes": "", "data.augment.mixup": 0.0,
}


def check_resumable(workdir: Path, config: ml_collections.ConfigDict) -> None:
    """Refuses a config that differs from the one `workdir`'s checkpoints were trained with in a
    field outside MAY_CHANGE_ON_RESUME; a workdir without checkpoints may start afresh."""
    saved_path, checkpoints = workdir / CONFIG_FILE, workdir / CHECKPOINT_DIR
    if not saved_path.exists() or not checkpoints.is_dir() or not any(checkpoints.iterdir()):
        return
    saved = _flatten(json.loads(saved_path.read_text()))
    given = _flatten(json.loads(config.to_json_best_effort()))
    allowed = lambda path: any(path == f or path.startswith(f + ".") for f in MAY_CHANGE_ON_RESUME)  # noqa: E731
    saved |= {p: v for p, v in ADDED_FIELDS.items() if p not in saved}
    changed = [p for p in sorted(saved.keys() | given.keys()) if saved.get(p) != given.get(p) and not allowed(p)]
    if changed:
        diffs = ", ".join(f"{p} {saved.get(p)!r} -> {given.get(p)!r}" for p in changed)
        raise RunStateError(
            f"{workdir}: holds checkpoints trained with another config ({diffs}); rerun with the saved values "
            f"(in {saved_path}) or use a new --workdir"
        )


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[prefix + key] = value
    return flat


def open_manager(workdir: Path, train: ml_collections.ConfigDict) -> ocp.CheckpointManager:
    """The run's checkpoint manager, as `config.train` sets it up."""
    return make_manager(workdir / CHECKPOINT_DIR, keep=train.keep_checkpoints, best_metric=train.select_metric)


def selected_step(manager: ocp.CheckpointManager, workdir: Path) -> int:
    """The step a finished run stands for: best on validation, else imported weights' step."""
    best = manager.best_step()
    if best is None and (workdir / IMPORTED_FILE).exists():
        return json.loads((workdir / IMPORTED_FILE).read_text())["step"]
    if best is None:
        raise RunStateError(f"{workdir / CHECKPOINT_DIR}: no validated checkpoint; train first (--mode=train)")
    return best


def save_imported(
    manager: ocp.CheckpointManager, workdir: Path, state: Any, data_iterator: grain.DatasetIterator, provenance: dict[str, Any]
) -> None:
    """Weights trained elsewhere as the step-0 checkpoint of a fresh run, with their provenance."""
    if manager.latest_step() is not None:
        raise RunStateError(f"{workdir}: already holds checkpoints; import into a new --workdir so nothing is overwritten")
    save(manager, 0, state, data_iterator)
    manager.wait_until_finished()
    write_atomically(workdir / IMPORTED_FILE, json.dumps({**provenance, "step": 0}, indent=2))


def save(
    manager: ocp.CheckpointManager,
    step: int,
    state: Any,
    data_iterator: grain.DatasetIterator,
    metrics: dict[str, float] | None = None,
) -> None:
    """Starts an asynchronous save; the caller waits (`wait_until_finished`) before exiting."""
    manager.save(
        step,
        args=ocp.args.Composite(
            **{STATE: ocp.args.StandardSave(state), DATA: grain.checkpoint.CheckpointSave(data_iterator)}
        ),
        metrics=metrics,
        force=True,
    )


def unrestorable(config: ml_collections.ConfigDict, workdir: Path, step: int, error: Exception) -> RunStateError:
    """Why the run's checkpoint does not restore into the model `config` builds: the model fields in
    which `config` and the config the run was trained with differ, or else the files themselves
    (the first line of the library's deepest error: a damaged file, a missing one)."""
    run = load_run_config(workdir).model.to_dict()
    given = json.loads(json.dumps(config.model.to_dict()))  # tuples as the saved run has them, lists
    differing = sorted((key for key in run.keys() | given.keys() if run.get(key) != given.get(key)), key=lambda k: (k != "name", k))
    if differing:
        what = "; ".join(f"model.{key}={given.get(key)!r} there, {run.get(key)!r} in the run" for key in differing[:3])
        return RunStateError(
            f"{workdir}: its checkpoint (step {step}) does not fit the model --config describes ({what}); "
            "give the config the run was trained with"
        )
    while error.__cause__ is not None:
        error = error.__cause__
    first_line = (str(error).strip().splitlines() or [type(error).__name__])[0].split(" [tensorstore_spec")[0]
    if len(first_line) > 300:  # tensorstore's messages quote whole specs
        first_line = first_line[:300] + "…"
    return RunStateError(f"{workdir / CHECKPOINT_DIR / str(step)}: cannot be read ({first_line}); its files may be damaged")


def restore(
    manager: ocp.CheckpointManager,
    step: int,
    abstract_state: Any,
    data_iterator: grain.DatasetIterator | None = None,
) -> Any:
    """Restores the state (onto the shardings of `abstract_state`) and, if given, the iterator in place."""
    items = {STATE: ocp.args.StandardRestore(abstract_state)}
    if data_iterator is not None:
        items[DATA] = grain.checkpoint.CheckpointRestore(data_iterator)
    restored = manager.restore(step, args=ocp.args.Composite(**items))
    return restored[STATE]


def restore_latest(
    manager: ocp.CheckpointManager, abstract_state: Any, data_iterator: grain.DatasetIterator
) -> tuple[int | None, Any]:
    """The newest step that restores, and its state (the iterator restored in place); (None, None)
    without checkpoints. A newer step that does not restore (truncated by a crash, damaged on
    disk) is moved to `<workdir>/damaged_checkpoints/` with a one-line warning, so the run resumes
    from the step before and can save that step again; only once an older step has restored,
    so a failure of every step (a bug, not damage) moves nothing and raises the newest's error."""
    _silence_abandoned_reads()
    damaged: list[tuple[int, Exception]] = []
    for step in sorted(manager.all_steps(), reverse=True):
        try:
            state = restore(manager, step, abstract_state, data_iterator)
        except Exception as err:  # orbax and tensorstore raise many types for a damaged step
            damaged.append((step, err))
            continue
        for bad_step, err in damaged:
            _set_aside(manager, bad_step, err, step)
        return step, state
    if damaged:
        raise damaged[0][1]
    return None, None


def _silence_abandoned_reads() -> None:
    """A step that fails to restore leaves tensorstore reads in flight whose callbacks land on
    orbax's closed event loop later, from tensorstore's threads ('Event loop is closed', through
    `sys.unraisablehook`) or when the failed futures and tasks are collected ('Future/Task exception
    was never retrieved', asyncio's logger). They repeat what the one-line warning says, dozens of times and
    interleaved, so from the first restore on exactly these are dropped (some arrive before
    the failed restore raises); anything else still reaches the previous hook and the log."""
    previous = sys.unraisablehook
    if getattr(previous, "drops_abandoned_reads", False):
        return

    def hook(unraisable: Any) -> None:
        if not (isinstance(unraisable.exc_value, RuntimeError) and str(unraisable.exc_value) == "Event loop is closed"):
            previous(unraisable)

    hook.drops_abandoned_reads = True
    sys.unraisablehook = hook
    pylogging.getLogger("asyncio").addFilter(
        lambda record: not record.getMessage().startswith(ABANDONED_READ_MESSAGES)
    )


def _set_aside(manager: ocp.CheckpointManager, step: int, err: Exception, resume_step: int) -> None:
    source = Path(manager.directory) / str(step)
    target = Path(manager.directory).parent / DAMAGED_DIR / str(step)
    if jax.process_index() == 0:
        target.parent.mkdir(parents=True, exist_ok=True)
        source.rename(target)
    manager.reload()
    reason = (str(err).strip().splitlines() or [""])[0][:120]
    logging.warning(
        "checkpoint step %d cannot be restored (%s: %s); moved to %s, resuming from step %d",
        step, type(err).__name__, reason, target, resume_step,
    )


def abstract_like(state: Any) -> Any:
    """Shape, dtype and sharding of every leaf: the restore target for `state`'s layout."""
    return jax.tree.map(ocp.utils.to_shape_dtype_struct, state)

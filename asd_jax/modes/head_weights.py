r"""`python -m asd_jax.modes.head_weights`: does a run's pose head earn its weight on new patients?

  python -m asd_jax.modes.head_weights runs/zen4_cnngait1500/cnn_clip_gait_bones_diagnoses/seed_5

For a finished run (a --mode=cv folder, or one fold's) of a model whose pose head and gait-feature
head add up (`model.gait_fusion='sum'`, e.g. configs/cnn_clip_gait_bones_diagnoses.py), each fold's
selected model is read with its pose head weighted 0, 0.25, 0.5, 0.75 and 1 on the fold's
validation patients, one weight is chosen there (asd_jax/evaluation/head_weights.py says how), and
the test patients are scored twice: by the model as trained (weight 1, the fold's own report) and
by the model with the chosen weight. No test patient picks anything. Writes
`<fold>/head_weights.json` and prints a table of the folds.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from asd_jax.base.errors import UserError, exit_with_error
from asd_jax.base.files import write_atomically
from asd_jax.base.labels import task_groups
from asd_jax.base.progress import progress_bar
from asd_jax.data import folds
from asd_jax.evaluation import head_weights, predict, protocol
from asd_jax.training import checkpointing

RESULT_FILE = "head_weights.json"


def fold_dirs(run: Path) -> list[Path]:
    """The fold folders of a --mode=cv run, or the run itself when it is one fold."""
    if not run.is_dir():
        raise UserError(f"{run}: not found; give a finished --mode=cv run folder or one of its fold folders")
    cv_folds = sorted(run.glob("fold_*"), key=lambda path: path.name)
    return cv_folds or [run]


def weigh_fold(fold_dir: Path) -> dict[str, Any]:
    """One fold: every weight on the validation patients, the chosen one and weight 1 on the test
    patients; written to `<fold_dir>/head_weights.json` and returned."""
    config = checkpointing.load_run_config(fold_dir)
    if not (config.model.get("gait_features") and config.model.get("gait_fusion") == "sum"):
        raise UserError(
            f"{fold_dir}: model {config.model.name} has no pose and gait-feature heads that add up "
            "(model.gait_features with model.gait_fusion='sum'), so there is no pose head to weigh"
        )
    fold = folds.prepare_fold(config, fold_dir)
    scorer, step = protocol.restore_scorer(config, fold_dir, len(fold.class_names), fold)
    weighted = head_weights.WeightedScorer(scorer, task_groups(config.data))
    validation = {}
    for weight in head_weights.POSE_WEIGHTS:
        weighted.pose_weight = weight
        result = predict.evaluate_rows(weighted, fold, fold.split.val)
        validation[weight] = (predict.selection_score(result, config.train.select_metric), predict.clip_log_loss(result))
    chosen = head_weights.choose(validation)
    test = {}
    for name, weight in (("as_trained", 1.0), ("chosen", chosen)):
        weighted.pose_weight = weight
        test[name] = predict.headline(predict.evaluate_rows(weighted, fold, fold.split.test))
    payload = {
        "selected_step": step,
        "select_metric": config.train.select_metric,
        "validation": {
            str(weight): {config.train.select_metric: score, "clip_log_loss": loss} for weight, (score, loss) in validation.items()
        },
        "chosen_pose_weight": chosen,
        "test": test,
    }
    write_atomically(fold_dir / RESULT_FILE, json.dumps(payload, indent=2))
    return payload


def table(rows: list[tuple[str, dict[str, Any]]]) -> str:
    """Markdown: per fold the chosen weight and the test patients' macro-F1 as trained and with it."""
    lines = [
        "| fold | step | chosen pose weight | test patient macro-F1, as trained | with the chosen weight |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, payload in rows:
        trained, chosen = (payload["test"][k]["patient_macro_f1"] for k in ("as_trained", "chosen"))
        lines.append(f"| {name} | {payload['selected_step']} | {payload['chosen_pose_weight']:g} | {trained:.3f} | {chosen:.3f} |")
    means = [np.mean([p["test"][k]["patient_macro_f1"] for _, p in rows]) for k in ("as_trained", "chosen")]
    lines.append(f"| mean of {len(rows)} | | | {means[0]:.3f} | {means[1]:.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m asd_jax.modes.head_weights", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("runs", nargs="+", type=Path, help="finished --mode=cv run folders, or fold folders")
    args = parser.parse_args(argv)
    try:
        todo = [fold_dir for run in args.runs for fold_dir in fold_dirs(run)]
        rows = [(str(fold_dir), weigh_fold(fold_dir)) for fold_dir in progress_bar(todo, desc="folds", unit="fold")]
    except UserError as err:
        exit_with_error(str(err))
    print(table(rows))


if __name__ == "__main__":
    main()

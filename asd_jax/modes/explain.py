"""`--mode=explain`: where the trained model looks, next to where clinicians look.

For chosen test clips: a region x time attention heatmap, key frames with joints coloured by
attention, an animated GIF of the first clip, and gait parameters. Over all test clips: mean
attention per region per class beside the raters' mean prior, and their agreement (Spearman rank
correlation and whether the top region matches). Written to `<workdir>/report/explain/`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jax
import ml_collections
import numpy as np

from asd_jax.base.errors import ConfigError
from asd_jax.base.files import write_atomically
from asd_jax.base.skeleton import REGION_NAMES
from asd_jax.data import folds, gait_params, input_pipeline, transforms
from asd_jax.evaluation import plots, predict
from asd_jax.evaluation.explanations import attention_agreement, frame_attention, joint_weights
from asd_jax.training import setup


def chosen_rows(config: ml_collections.ConfigDict, fold) -> np.ndarray:
    table, test = fold.table, fold.split.test
    if config.explain.clip_id:
        wanted = [c.strip() for c in config.explain.clip_id.split(",")]
        known = {str(table.clip_id[r]): r for r in range(len(table))}
        missing = [c for c in wanted if c not in known]
        if missing:
            raise ConfigError(f"explain.clip_id: unknown clip(s) {', '.join(missing)}")
        return np.array([known[c] for c in wanted])
    return np.concatenate([test[table.label[test] == c][: config.explain.per_class] for c in range(len(fold.class_names))])


def explain(config: ml_collections.ConfigDict, workdir: Path) -> dict[str, Any]:
    fold = folds.prepare_fold(config, workdir)
    dp, state, step = setup.restore_selected(config, workdir, len(fold.class_names))
    scorer = predict.WindowScorer(config, dp, state)
    table, out_dir = fold.table, workdir / "report" / "explain"
    result = predict.evaluate_rows(scorer, fold, fold.split.test)
    if not result.clip_attention:
        raise ConfigError(f"model {config.model.name!r} returns no attention maps to explain")
    clips = {}
    for i, row in enumerate(chosen_rows(config, fold)):
        clips[str(table.clip_id[row])] = explain_clip(config, dp, state, fold, int(row), out_dir, gif=i == 0)

    num_classes = len(fold.class_names)
    test = fold.split.test
    mean_attention, mean_prior, agreement = np.zeros((num_classes, len(REGION_NAMES))), np.zeros((num_classes, len(REGION_NAMES))), {}
    for c, name in enumerate(fold.class_names):
        rows = test[table.label[test] == c]
        masses = np.array([result.clip_attention[str(table.clip_id[r])].mean(-1) for r in rows])
        priors = np.array([fold.source[int(table.record[r])]["prior"] for r in rows])
        mean_attention[c], mean_prior[c] = masses.mean(0), priors.mean(0)
        scores = [attention_agreement(m, p) for m, p in zip(masses, priors)]
        agreement[name] = {k: float(np.nanmean([s[k] for s in scores])) for k in ("spearman", "top_region_match")}
    payload = {
        "selected_step": step,
        "regions": list(REGION_NAMES),
        "mean_attention": dict(zip(fold.class_names, mean_attention.round(4).tolist())),
        "mean_prior": dict(zip(fold.class_names, mean_prior.round(4).tolist())),
        "agreement": agreement,
        "clips": clips,
    }
    if jax.process_index() == 0:
        plots.attention_vs_prior(mean_attention, mean_prior, fold.class_names, out_dir / "attention_vs_prior.png")
        write_atomically(out_dir / "explanations.json", json.dumps(payload, indent=2))
    return {"agreement": agreement, "written_to": str(out_dir)}


def explain_clip(config, dp, state, fold, row: int, out_dir: Path, *, gif: bool) -> dict[str, Any]:
    """Figures and numbers of one clip."""
    data, table = config.data, fold.table
    windows = input_pipeline.eval_windows(table, np.array([row]), data)
    outputs = predict.predict_windows(dp, state, input_pipeline.eval_batches(fold.source, table, np.array([row]), data))
    clip = input_pipeline.load_clip(fold.source, table, row, data.fps)
    pose = transforms.normalize_pose(clip["pose"])
    attention = frame_attention(outputs["attention"], windows[:, 1], len(pose), data.window)
    clip_id, name = str(table.clip_id[row]), fold.class_names[table.label[row]]
    probs = np.exp(outputs["logits"].mean(0) - outputs["logits"].mean(0).max())
    predicted = fold.class_names[int(np.argmax(probs))]
    gait = gait_params.gait_parameters(fold.source[int(table.record[row])]["pose"], float(table.fps[row]))
    title = f"{clip_id}: {name} (predicted {predicted}); {gait_text(gait)}"
    if jax.process_index() == 0:
        draw_attention(pose, attention, data.fps, out_dir, clip_id, title, gif=gif)
    return {
        "label": name,
        "predicted": predicted,
        "region_attention": dict(zip(REGION_NAMES, attention.mean(-1).round(4).tolist())),
        "prior": dict(zip(REGION_NAMES, np.asarray(clip["prior"]).round(4).tolist())),
        "gait": gait,
    }


def gait_text(gait: dict[str, float]) -> str:
    """The gait parameters a figure title quotes."""
    return (
        f"cadence {gait['cadence_steps_per_min']:.0f} steps/min, "
        f"trunk {gait['trunk_inclination_deg']:.0f}° ({gait['trunk_inclination_change_deg']:+.0f}° over the walk)"
    )


def draw_attention(
    pose: np.ndarray, attention: np.ndarray, fps: float, out_dir: Path, clip_id: str, title: str, *, gif: bool = False
) -> list[Path]:
    """A clip's region x time attention heatmap and key frames with joints coloured by attention
    (and an animated GIF): `pose` normalised at `fps`, `attention` [regions, frames]."""
    written = [
        plots.attention_heatmap(attention, fps, out_dir / f"{clip_id}_attention.png", title),
        plots.skeleton_keyframes(pose, joint_weights(attention), out_dir / f"{clip_id}_keyframes.png", title),
    ]
    if gif:
        written.append(plots.skeleton_gif(pose, joint_weights(attention), out_dir / f"{clip_id}.gif", fps, title))
    return written


def run(invocation) -> dict[str, Any]:
    return explain(invocation.config, invocation.workdir)

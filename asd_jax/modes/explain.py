"""`--mode=explain`: which body regions and which moments of the walk drive a trained model's
diagnoses, with the checks that say whether to believe it.

For every model family, over the fold's test clips (asd_jax/evaluation/explanation_report.py):
attribution per region and class, its agreement with the raters beside the chance level of the
same architecture untrained, and the model-randomisation check. For the chosen clips of a pose
model (`explain.clip_id`, or the first `explain.per_class` test clips of each class): a region x
time occlusion heatmap with the heel strikes marked, key frames whose joints are coloured by
integrated gradients, an animated GIF of the first clip and its gait parameters. For attention
models the attention map is reported too, as what it is: biased towards the raters' regions by
construction (the prior enters its logits), so it is not the explanation. A model that also reads
the clip's clinical gait features is explained with its features kept as measured, and its
features are explained too: their occlusion by region (hidden as an unmeasured feature is read)
and how much of each diagnosis the pose and the features carry; with a head each whose logits add
up, also what each head diagnoses alone. Written to `<workdir>/report/explain/` (explanations.json and figures).
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
from asd_jax.base.gait import FEATURE_FPS, gait_parameters, heel_strikes
from asd_jax.base.labels import task_groups
from asd_jax.base.preprocess import normalize_pose, resample_fps
from asd_jax.base.skeleton import REGION_NAMES
from asd_jax.data import folds
from asd_jax.data.gait_features import FeatureCache
from asd_jax.evaluation import attribution, explanation_report, plots, predict
from asd_jax.evaluation.explanations import FEATURE_GROUPS, explain_clip, joint_weights, stream_reading_text
from asd_jax.evaluation.protocol import FEATURES
from asd_jax.models import reads_gait_features
from asd_jax.training import checkpointing, fit_features, setup

OUT_DIR = ("report", "explain")


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


def test_clips(fold, rows: np.ndarray, features: FeatureCache | None = None) -> list[dict[str, Any]]:
    """The stored pose, fps, raters' prior and true class of each of `rows`, and their clinical
    gait features when `features` (the cache of a model that reads them) is given."""
    table = fold.table
    measured = features.matrix(rows) if features is not None else [None] * len(rows)
    out = []
    for row, gait in zip(rows, measured, strict=True):
        record = fold.source[int(table.record[row])]
        out.append({"pose": np.asarray(record["pose"], np.float32), "fps": float(record["fps"]),
                    "prior": np.asarray(record["prior"], np.float32), "label": int(table.label[row]), "clip_id": str(table.clip_id[row]),
                    "features": gait})
    return out


def explain(config: ml_collections.ConfigDict, workdir: Path) -> dict[str, Any]:
    checkpointing.load_run_config(workdir)  # a trained run, before its splits or explanations are written
    fold = folds.prepare_fold(config, workdir)
    out_dir = workdir.joinpath(*OUT_DIR)
    if jax.process_index() == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
    if config.model.name == FEATURES:
        payload = explain_features(config, workdir, fold)
    else:
        payload = explain_pose_model(config, workdir, fold, out_dir)
    if jax.process_index() == 0:
        prior = np.array(list(payload["mean_prior"].values())) if len(payload["mean_prior"]) == len(fold.class_names) else None
        plots.attribution_by_class(
            np.array(list(payload["mean_attribution"].values())), fold.class_names, out_dir / "attribution_by_class.png", prior=prior
        )
        if "gait_features" in payload:
            plots.attribution_by_class(
                np.array(list(payload["gait_features"]["mean_attribution"].values())), fold.class_names,
                out_dir / "gait_feature_attribution_by_class.png", prior=prior, label="gait-feature attribution",
            )
        write_atomically(out_dir / "explanations.json", json.dumps({"regions": list(REGION_NAMES), **payload}, indent=2))
    return {"agreement": payload["agreement"], "randomisation_check": payload["randomisation_check"], "written_to": str(out_dir)}


def explain_features(config: ml_collections.ConfigDict, workdir: Path, fold) -> dict[str, Any]:
    fitted = fit_features.restore(workdir)
    cache = FeatureCache(fold.source, fold.table, config.data.fps)
    train, test = fold.split.train, fold.split.test
    priors = np.stack([np.asarray(fold.source[int(fold.table.record[r])]["prior"], np.float32) for r in test])
    payload = explanation_report.features_explanations(
        fitted.estimator, cache.matrix(train), fold.table.train_label[train], cache.matrix(test), fold.table.label[test],
        priors, fold.class_names, class_groups=task_groups(config.data), seed=config.seed,
    )
    return {"selected_step": fitted.selected_step, **payload}


def explain_pose_model(config: ml_collections.ConfigDict, workdir: Path, fold, out_dir: Path) -> dict[str, Any]:
    num_classes = len(fold.class_names)
    model, step = setup.restore_model(config, workdir, num_classes)
    trained = attribution.model_apply(model)
    untrained = attribution.model_apply(setup.reinitialised_like(config, model, num_classes))
    features = FeatureCache(fold.source, fold.table, FEATURE_FPS) if reads_gait_features(config) else None
    clips = test_clips(fold, fold.split.test, features)
    payload = explanation_report.deep_model_explanations(trained, untrained, clips, fold.class_names, config.data)
    streams_apply = attribution.stream_apply(model)
    if streams_apply is not None:
        payload["stream_readings"] = explanation_report.stream_readings(streams_apply, clips, fold.class_names, config.data)
    chosen = {}
    for i, clip in enumerate(test_clips(fold, chosen_rows(config, fold), features)):
        chosen[clip["clip_id"]] = explain_one(
            trained, clip, fold.class_names, config.data, out_dir, gif=i == 0, streams_apply=streams_apply
        )
    sample = clips[0]
    gait = {} if sample["features"] is None else {"features": sample["features"][None]}
    has_attention = model(normalize_pose(sample["pose"][: config.data.window])[None], sample["prior"][None], **gait).attention is not None
    attention = prior_biased_attention(config, workdir, fold) if has_attention else None
    return {"selected_step": step, **payload, "clips": chosen, **({"attention_prior_biased": attention} if attention else {})}


def explain_one(
    apply, clip: dict[str, Any], class_names: tuple[str, ...], data, out_dir: Path, *, gif: bool, streams_apply=None
) -> dict[str, Any]:
    """Figures and numbers of one clip, explained for the class the model predicts."""
    ex = explain_clip(
        apply, clip["pose"], clip["fps"], clip["prior"], data, features=clip["features"], integrated=True, streams_apply=streams_apply
    )
    pose = normalize_pose(resample_fps(clip["pose"], clip["fps"], data.fps))
    gait = gait_parameters(clip["pose"], clip["fps"])
    predicted, clip_id = class_names[ex.target], clip["clip_id"]
    title = f"{clip_id}: {class_names[clip['label']]} (predicted {predicted}); {gait_text(gait)}"
    if ex.stream_probs is not None:
        title += f"\n{stream_reading_text(ex.stream_probs, class_names)}"
    if jax.process_index() == 0:
        draw_clip(pose, ex.region_time, ex.joint_frame, data.fps, out_dir, clip_id, title, gif=gif)
    return {
        "label": class_names[clip["label"]],
        "predicted": predicted,
        "region_attribution": dict(zip(REGION_NAMES, np.asarray(ex.region, float).round(5).tolist())),
        "integrated_gradients_completeness_gap": round(ex.completeness_gap, 6),
        "prior": dict(zip(REGION_NAMES, clip["prior"].round(4).tolist())),
        "gait": gait,
        **({} if ex.streams is None else {
            "gait_feature_attribution": dict(zip(FEATURE_GROUPS, np.asarray(ex.feature_groups, float).round(5).tolist())),
            "streams": dict(zip(attribution.STREAMS, np.asarray(ex.streams, float).round(5).tolist())),
        }),
        **({} if ex.stream_probs is None else {
            "stream_readings": {
                stream: dict(zip(class_names, p.round(5).tolist())) for stream, p in zip(attribution.STREAMS, ex.stream_probs)
            },
        }),
    }


def draw_clip(
    pose: np.ndarray, region_time: np.ndarray, joint_frame: np.ndarray | None, fps: float, out_dir: Path, clip_id: str, title: str,
    *, gif: bool = False,
) -> list[Path]:
    """A clip's region x time occlusion heatmap (heel strikes marked) and key frames coloured by
    joint attribution (integrated gradients when given, else each joint's region occlusion);
    `pose` normalised at `fps`."""
    strikes = {side: (frames / fps).tolist() for side, frames in heel_strikes(pose, fps).items()}
    joints = joint_weights(region_time) if joint_frame is None else joint_frame
    written = [
        plots.region_time_heatmap(region_time, len(pose) / fps, strikes, out_dir / f"{clip_id}_regions_time.png", title),
        plots.attribution_keyframes(pose, joints, out_dir / f"{clip_id}_keyframes.png", title),
    ]
    if gif:
        magnitude = np.abs(joints) / max(float(np.abs(joints).max()), 1e-12)
        written.append(plots.skeleton_gif(pose, magnitude, out_dir / f"{clip_id}.gif", fps, title))
    return written


def prior_biased_attention(config: ml_collections.ConfigDict, workdir: Path, fold) -> dict[str, Any]:
    """Mean cross-attention per region and class and its agreement with the raters."""
    dp, state, _ = setup.restore_selected(config, workdir, len(fold.class_names))
    result = predict.evaluate_rows(predict.WindowScorer(config, dp, state), fold, fold.split.test)
    table, test = fold.table, fold.split.test
    out = {"note": "the clinical prior biases these logits towards the raters' regions by construction: not an explanation"}
    for c, name in enumerate(fold.class_names):
        rows = test[table.label[test] == c]
        masses = np.array([result.clip_attention[str(table.clip_id[r])].mean(-1) for r in rows])
        priors = np.array([fold.source[int(table.record[r])]["prior"] for r in rows])
        scores = [attribution.agreement_with_raters(m, p) for m, p in zip(masses, priors) if np.ptp(p) > 0]
        out[name] = {
            "mean_attention": masses.mean(0).round(4).tolist(),
            **{k: float(np.nanmean([s[k] for s in scores])) if scores else float("nan") for k in ("spearman", "top_region_match")},
        }
    return out


def gait_text(gait: dict[str, float]) -> str:
    """The gait parameters a figure title quotes."""
    return (
        f"cadence {gait['cadence_steps_per_min']:.0f} steps/min, "
        f"trunk {gait['trunk_inclination_deg']:.0f}° ({gait['trunk_inclination_change_deg']:+.0f}° over the walk)"
    )


def run(invocation) -> dict[str, Any]:
    return explain(invocation.config, invocation.workdir)

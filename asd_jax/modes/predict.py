"""`--mode=predict`: a trained run's diagnosis of new clips, without labels and without the data
it was trained on.

    python launch.py --mode=predict --workdir runs/crossattn --input /path/to/keypoints-or-videos [--out folder]

`--input` is a keypoint folder (annotations.pkl or the reference's whole_annotations.pkl,
optional clips.csv with clip_id, patient_id, fps, optional doctor*.csv; see
asd_jax/data/user_folder.py for what stands in for a missing clips.csv), one video, or a folder
of videos (extracted into `<out>/keypoints/` first, as --mode=pose does). Classes, preprocessing
and the model come from the run's config.json, the weights from its selected checkpoint (the
fitted estimator for `features`). `--config` is optional and supplies only the test-time fields
TEST_TIME_FIELDS of `config.data`; everything else stays as the run was trained.

Writes to `<workdir>/predict/` (or `--out`): predictions_clips.csv (clip_id, patient_id,
prediction, p_<class>; for a model with a pose head and a gait-feature head whose logits add up,
each head's own probabilities pose_p_<class> and gait_features_p_<class>; the gait parameters),
predictions_patients.csv (per patient: the mean of its clips' probabilities) and one figure per
clip in figures/, and prints the patients' table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import ml_collections
import numpy as np
from tqdm import tqdm

from asd_jax.base.errors import UserDataError, UserError
from asd_jax.base.files import check_output_folder
from asd_jax.base.gait import gait_parameters
from asd_jax.data import folds, input_pipeline, skeletons, splits, transforms, user_folder
from asd_jax.evaluation import aggregate, attribution, plots, protocol, report
from asd_jax.evaluation.explanations import explain_clip, stream_reading_text
from asd_jax.models import reads_gait_features
from asd_jax.modes import explain, pose
from asd_jax.training import checkpointing, parallel, setup

TEST_TIME_FIELDS = ("eval_batch_size", "test_flip", "default_prior")  # of config.data, taken from --config
FIGURES, KEYPOINTS, OUT_DIR = "figures", "keypoints", "predict"


def predict_config(workdir: Path, override: ml_collections.ConfigDict | None) -> ml_collections.ConfigDict:
    """The run's own config, with the test-time fields of `--config` when one is given."""
    config = checkpointing.load_run_config(workdir)
    if override is not None:
        for field in TEST_TIME_FIELDS:
            config.data[field] = override.data[field]
    parallel.check_batch_divisible(config.data.eval_batch_size, "data.eval_batch_size")  # before any clip is read
    return config


def check_free(out: Path, *, videos: bool) -> None:
    """Refuses to write over earlier predictions (or keypoints): one error naming them all."""
    check_output_folder(out)
    taken = [out / name for name in (*report.PREDICTION_FILES, FIGURES) if (out / name).exists()]
    if videos:
        taken += [out / KEYPOINTS / name for name in (skeletons.ANNOTATIONS, user_folder.CLIPS) if (out / KEYPOINTS / name).exists()]
    if taken:
        raise UserError(
            f"{out} already holds predictions ({', '.join(str(p.relative_to(out)) for p in taken)}); "
            "choose another --out or move them away first"
        )


def is_keypoint_folder(source: Path) -> bool:
    return source.is_dir() and any((source / name).exists() for name in skeletons.SKELETON_FILES)


def load_clips(folder: Path, config: ml_collections.ConfigDict, class_names: tuple[str, ...]) -> folds.FoldData:
    """Every clip of a keypoint folder, unlabeled, as the test side of a fold."""
    records = list(user_folder.read_user_folder(folder, default_prior_spec=config.data.default_prior, need_diagnosis=False))
    return folds.test_only(records, splits.ClipTable.for_prediction(records), class_names)


def clip_figure(
    config, fold: folds.FoldData, row: int, probs: np.ndarray, gait: dict[str, float], apply, out_dir: Path, streams_apply=None
) -> dict[str, float]:
    """The clip's explanation for its predicted class: region x time occlusion and key frames
    (explain.draw_clip) for deep models (`apply`; one that also reads the clip's gait features
    keeps them and says in the title how much the pose and the features carry), else (`features`)
    its skeleton beside its probabilities. Returns each stream's own probabilities for a model
    whose pose and gait-feature heads add up (`streams_apply`), as `<stream>_p_<class>` columns."""
    clip = input_pipeline.load_clip(fold.source, fold.table, row, config.data.fps, gait_features=reads_gait_features(config))
    normalised = transforms.normalize_pose(clip["pose"])
    clip_id, target = str(fold.table.clip_id[row]), int(np.argmax(probs))
    title = f"{clip_id}: {fold.class_names[target]} ({probs.max():.0%}); {explain.gait_text(gait)}"
    if apply is None:
        plots.skeleton_probabilities(normalised, probs, fold.class_names, out_dir / f"{clip_id}_prediction.png", title)
        return {}
    record = fold.source[int(fold.table.record[row])]
    attributions = explain_clip(
        apply, record["pose"], float(record["fps"]), clip["prior"], config.data, features=clip.get("features"), target=target,
        streams_apply=streams_apply,
    )
    if attributions.stream_probs is not None:
        title += f"\n{stream_reading_text(attributions.stream_probs, fold.class_names)}"
    if attributions.streams is not None:
        title += "\nevidence, the drop in log p when hidden: whole pose {:+.2f}, every gait feature {:+.2f}".format(*attributions.streams)
    explain.draw_clip(normalised, attributions.region_time, None, config.data.fps, out_dir, clip_id, title)
    if attributions.stream_probs is None:
        return {}
    return {
        f"{stream}_p_{name}": float(p)
        for stream, stream_probs in zip(attribution.STREAMS, attributions.stream_probs, strict=True)
        for name, p in zip(fold.class_names, stream_probs, strict=True)
    }


def predict_folder(config: ml_collections.ConfigDict, workdir: Path, folder: Path, out: Path) -> dict[str, Any]:
    """Scores every clip of a keypoint folder with the run's selected model and writes the outputs."""
    class_names = folds.class_names(config.data)
    fold = load_clips(folder, config, class_names)
    table, rows = fold.table, fold.split.test
    scorer, step = protocol.restore_scorer(config, workdir, len(class_names), fold, progress=True)
    windows = scorer.windows(fold, rows)
    clips = aggregate.clips_from_windows(windows["logits"], windows["clip_index"], rows, table.clip_id, table.label)
    patients = aggregate.patients_from_clips(clips, table.patient_id[rows])  # no labels: one unit per patient
    apply = streams_apply = None
    if config.model.name != protocol.FEATURES:  # occlusion figures need the model itself
        model = setup.restore_model(config, workdir, len(class_names))[0]
        apply, streams_apply = attribution.model_apply(model), attribution.stream_apply(model)
    columns = {}  # per clip: its gait parameters and, for a model with a head per stream, each one's probabilities
    if jax.process_index() == 0:
        out.mkdir(parents=True, exist_ok=True)
        for i, row in enumerate(tqdm(rows, desc="gait and figures", unit="clip", dynamic_ncols=True)):
            record = fold.source[int(table.record[row])]
            clip_id = str(table.clip_id[row])
            gait = gait_parameters(record["pose"], float(record["fps"]))
            readings = clip_figure(config, fold, int(row), clips.probs[i], gait, apply, out / FIGURES, streams_apply)
            columns[clip_id] = {**readings, **gait}
        patient_of = dict(zip(table.clip_id.tolist(), table.patient_id.tolist()))
        report.write_predictions(out / report.PREDICTION_FILES[0], "clip", clips, class_names, patient_of, columns, labelled=False)
        report.write_predictions(out / report.PREDICTION_FILES[1], "patient", patients, class_names, patient_of, labelled=False)
    counts = dict(zip(*np.unique(table.patient_id[rows].astype(str), return_counts=True)))
    return {"selected_step": step, "class_names": class_names, "patients": patients, "clips": clips, "clips_per_patient": counts}


def summary_text(result: dict[str, Any], workdir: Path, out: Path) -> str:
    """The patients' table (patient, predicted class, probabilities, clips) and where files went."""
    patients, (clips_file, patients_file) = result["patients"], report.PREDICTION_FILES
    written = f"wrote {out / clips_file}, {out / patients_file} and {out / FIGURES}/"
    where = f"model of {workdir} (selected step {result['selected_step']}); {written}"
    table = report.patients_text(patients, result["class_names"], result["clips_per_patient"])
    return f"{table}\n\n{len(result['clips'].ids)} clip(s) of {len(patients.ids)} patient(s), {where}"


def run_predict(config: ml_collections.ConfigDict | None, workdir: Path | None, source: Path | None, out: Path | None) -> dict[str, Any]:
    if workdir is None or source is None:
        raise UserError("--mode=predict needs --workdir <a trained run> and --input <a keypoint folder, a video or a folder of videos>")
    config = predict_config(workdir, config)
    out = out or workdir / OUT_DIR
    if not source.exists():
        raise UserDataError(source, "not found")
    videos = not is_keypoint_folder(source)
    check_free(out, videos=videos)
    folder = source
    if videos:
        folder = out / KEYPOINTS
        print(pose.extract_keypoints(source, folder))
    result = predict_folder(config, workdir, folder, out)
    print(summary_text(result, workdir, out))
    return result


def run(invocation) -> None:
    run_predict(invocation.config, invocation.workdir, invocation.input, invocation.out)

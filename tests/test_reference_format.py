"""The reference's own files, read as it wrote them: whole_annotations.pkl (its
prepare_skeleton_dataset/main_yolov8.py: frame_dir = the video's path, YOLOv8 `xyn` keypoints in
0-1, an int `label`, a top-level train/val `split`) and doctor1.csv / doctor2.csv (`video file
name`, `attention`, sliced [2:-6] by its med_attn_map.py), with no clips.csv."""

from __future__ import annotations

import csv
import pickle
from pathlib import Path

import numpy as np
import pytest

from asd_jax.base.errors import UserDataError
from asd_jax.data.synthetic import CohortParams, WalkSpec, simulate_walk
from asd_jax.data.user_folder import read_user_folder

ROOT = "/workspace/data/segmentation_dataset_512/fold0"
# (video name, class folder, label): three patients per class of the 3-class task, two clips
# each, named `<patient>-<clip number>` with the disease as a `_`-separated word, as the
# reference's videos are; LCS and HipOA share label 2 (its `LCS_HipOA`) and the folder ASD_not.
PATIENTS = [
    ("20190101_ASD_lat_V1", "ASD", 0), ("20190102_ASD_lat_V1", "ASD", 0), ("20190103_ASD_lat_V1", "ASD", 0),
    ("20190104_DHS_lat_V1", "ASD_not", 1), ("20190105_DHS_lat_V1", "ASD_not", 1), ("20190106_DHS_lat_V1", "ASD_not", 1),
    ("20190107_LCS_lat_V1", "ASD_not", 2), ("20190108_HipOA_lat_V1", "ASD_not", 2), ("20190109_lat_V1", "ASD_not", 2),
]
# The cell format the reference slices with attention[2:-6] (its files are not public; any
# 2-character prefix and 6-character suffix around the region name reads the same).
CELL = "1.{}_point"
RATER_HEADER = "video file name,attention"


def skeleton(video: str, label: int, seed: int) -> dict:
    walk = simulate_walk(WalkSpec(num_frames=45, cadence=100.0 + seed), CohortParams(), np.random.default_rng(seed))
    return {
        "keypoint": (walk["keypoints"] / np.array([1920.0, 1080.0]))[None].astype(np.float32),  # YOLOv8 xyn: 0-1 per axis
        "keypoint_score": walk["scores"][None].astype(np.float32),
        "frame_dir": video,
        "img_shape": (1080, 1920),
        "original_shape": (1080, 1920),
        "total_frames": 45,
        "label": label,
    }


def reference_folder(folder: Path) -> Path:
    folder.mkdir(parents=True)
    annotations, split = [], {"train": [], "val": []}
    for i, (patient, class_folder, label) in enumerate(PATIENTS):
        side = "val" if i % 3 == 2 else "train"
        for clip in (1, 2):
            video = f"{ROOT}/{side}/{class_folder}/{patient}-{clip}.mp4"
            annotations.append(skeleton(video, label, seed=10 * i + clip))
            split["val" if clip == 2 and i == 0 else side].append(video)  # the reference's split leaks patient 0
    with (folder / "whole_annotations.pkl").open("wb") as f:
        pickle.dump({"annotations": annotations, "split": split}, f)
    for name, rows in {
        "doctor1.csv": [("20190101_ASD_lat_V1-1", "lumbar_pelvis"), ("20190101_ASD_lat_V1-1", "head"), ("20190104_DHS_lat_V1-2", "head")],
        "doctor2.csv": [("20190101_ASD_lat_V1-1", "lumbar_pelvis"), ("20190107_LCS_lat_V1-1.mp4", "foot")],
    }.items():
        with (folder / name).open("w", newline="", encoding="utf-8-sig") as f:  # as a spreadsheet saves it, with a BOM
            writer = csv.writer(f)
            writer.writerow(["video file name", "attention"])
            writer.writerows((video, CELL.format(region)) for video, region in rows)
    return folder


def test_records_come_from_the_reference_files_alone(tmp_path):
    folder = reference_folder(tmp_path / "ref")
    records = {r["clip_id"]: r for r in read_user_folder(folder)}
    assert len(records) == 18 and "20190101_ASD_lat_V1-1" in records  # the video's name without .mp4
    first = records["20190101_ASD_lat_V1-1"]
    assert first["patient_id"] == "20190101_ASD_lat_V1" and first["fps"] == 30.0
    diagnoses = {r["patient_id"]: r["diagnosis"] for r in records.values()}
    assert [diagnoses[p] for p, _, _ in PATIENTS] == ["ASD"] * 3 + ["DHS"] * 3 + ["LCS", "HipOA", "LCS_HipOA"]
    # Rater 1 marked two regions, rater 2 one: the prior is their mean.
    np.testing.assert_allclose(first["prior"], [0.25, 0, 0, 0.75, 0])
    np.testing.assert_allclose(records["20190104_DHS_lat_V1-2"]["prior"], [1, 0, 0, 0, 0])
    np.testing.assert_allclose(records["20190107_LCS_lat_V1-1"]["prior"], [0, 0, 0, 0, 1])  # named with its .mp4
    np.testing.assert_allclose(records["20190102_ASD_lat_V1-1"]["prior"], np.full(5, 0.2))
    with (folder / "whole_annotations.pkl").open("rb") as f:
        raw = pickle.load(f)["annotations"][0]
    np.testing.assert_allclose(first["pose"][..., :2], raw["keypoint"][0] * np.array([1920, 1080]) / 1920, rtol=1e-5)


def test_a_clips_csv_beside_them_takes_precedence(tmp_path):
    folder = reference_folder(tmp_path / "ref")
    with (folder / "clips.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["clip_id", "patient_id", "fps"])
        for i, (patient, _, _) in enumerate(PATIENTS):
            writer.writerows((f"{patient}-{clip}", f"P{i}", 25) for clip in (1, 2))
    records = {r["clip_id"]: r for r in read_user_folder(folder)}
    assert records["20190108_HipOA_lat_V1-2"]["patient_id"] == "P7" and records["20190108_HipOA_lat_V1-2"]["fps"] == 25
    assert records["20190108_HipOA_lat_V1-2"]["diagnosis"] == "HipOA"  # still from the label


@pytest.mark.parametrize(
    "break_it, message",
    [
        (lambda anns, folder: anns[0].update(label=7), "label 7 is not one of 0..3"),
        (lambda anns, folder: anns[0].pop("label"), "no diagnosis"),
        (lambda anns, folder: (folder / "doctor2.csv").write_text(f"{RATER_HEADER}\nnobody-1,1.foot_point\n"), "names no clip"),
        (lambda anns, folder: (folder / "doctor2.csv").write_text(f"{RATER_HEADER}\n{PATIENTS[0][0]}-1,1.knee_point\n"), "unknown region"),
    ],
)
def test_malformed_reference_files_are_one_clear_error(tmp_path, break_it, message):
    folder = reference_folder(tmp_path / "ref")
    with (folder / "whole_annotations.pkl").open("rb") as f:
        data = pickle.load(f)
    break_it(data["annotations"], folder)
    with (folder / "whole_annotations.pkl").open("wb") as f:
        pickle.dump(data, f)
    with pytest.raises(UserDataError, match=message):
        list(read_user_folder(folder))


def test_prepare_builds_the_dataset_and_notes_the_reference_split(tmp_path):
    from asd_jax.data import folds
    from asd_jax.modes import prepare
    from configs.crossattn import get_config

    config = get_config("smoke")
    config.data.source, config.data.manual_dir = "files", str(reference_folder(tmp_path / "ref"))
    config.data.data_dir, config.data.val_fraction = str(tmp_path / "tfds"), 0.5  # 3 patients per class
    text = prepare.summary_text(config, tmp_path / "run")
    assert "whole_annotations.pkl's own split (train, val) is not used: it puts 1 patient(s) on both of its sides" in text
    clips = folds.load_table(config.data)  # what training reads
    assert len(clips.table) == 18 and sorted(set(clips.table.label)) == [0, 1, 2]
    split = folds.splits.make_splits(clips.table, num_folds=3, fold=0, val_fraction=0.5, seed=0)
    assert len(split.patients["test"]) == 3

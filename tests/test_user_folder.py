"""A user's folder: values come back exactly, and every malformed input is one clear error."""

from __future__ import annotations

import csv
import pickle
from pathlib import Path

import numpy as np
import pytest

from asd_jax.base.labels import parse_label_map
from asd_jax.data.user_folder import UserDataError, read_user_folder


def write_folder(folder: Path, annotations: list[dict], clips: list[dict], raters: dict[str, list[dict]] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "annotations.pkl", "wb") as f:
        pickle.dump({"annotations": annotations}, f)
    with open(folder / "clips.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(clips[0]))
        writer.writeheader()
        writer.writerows(clips)
    for name, rows in (raters or {}).items():
        with open(folder / name, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["clip_id", "attention"])
            writer.writeheader()
            writer.writerows(rows)
    return folder


def annotation(clip_id: str, frames: int = 5, persons: int = 1, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "frame_dir": f"videos/{clip_id}",
        "keypoint": rng.uniform(0, 1000, size=(persons, frames, 17, 2)).astype(np.float32),
        "keypoint_score": rng.uniform(0.5, 1.0, size=(persons, frames, 17)).astype(np.float32),
        "img_shape": (1080, 1920),
        "original_shape": (1080, 1920),
        "total_frames": frames,
    }


def valid_folder(folder: Path) -> Path:
    two_people = annotation("c2", persons=2, seed=1)
    two_people["keypoint_score"][0] *= 0.5  # person 1 is the more confident one
    return write_folder(
        folder,
        [annotation("c1"), two_people],
        [
            {"clip_id": "c1", "patient_id": "p1", "diagnosis": "ASD", "fps": 30},
            {"clip_id": "c2", "patient_id": "p2", "diagnosis": "normal", "fps": 25},
        ],
        {
            "doctor1.csv": [{"clip_id": "c1", "attention": "head;foot"}],
            "doctor2.csv": [{"clip_id": "c1", "attention": "head"}],
        },
    )


def test_records_come_back_scaled_with_the_confident_person_and_mean_prior(tmp_path):
    folder = valid_folder(tmp_path / "ok")
    records = {r["clip_id"]: r for r in read_user_folder(folder)}
    with open(folder / "annotations.pkl", "rb") as f:
        raw = {Path(a["frame_dir"]).name: a for a in pickle.load(f)["annotations"]}
    c1 = records["c1"]
    assert c1["patient_id"] == "p1" and c1["diagnosis"] == "ASD" and c1["fps"] == 30
    np.testing.assert_allclose(c1["pose"][..., :2], raw["c1"]["keypoint"][0] / 1920, rtol=1e-6)
    np.testing.assert_array_equal(c1["pose"][..., 2], raw["c1"]["keypoint_score"][0])
    np.testing.assert_allclose(c1["prior"], [0.75, 0, 0, 0, 0.25])  # mean of {head, foot} and {head}
    np.testing.assert_allclose(records["c2"]["pose"][..., :2], raw["c2"]["keypoint"][1] / 1920, rtol=1e-6)
    np.testing.assert_allclose(records["c2"]["prior"], np.full(5, 0.2))  # default prior: uniform


def test_normalised_coordinates_are_scaled_to_pixels_first(tmp_path):
    ann = annotation("c1")
    ann["keypoint"] = ann["keypoint"] / 2000.0  # all within [0, 1]: normalised per axis
    folder = write_folder(tmp_path / "norm", [ann], [{"clip_id": "c1", "patient_id": "p", "diagnosis": "ASD", "fps": 30}])
    pose = next(read_user_folder(folder))["pose"]
    np.testing.assert_allclose(pose[..., 0], ann["keypoint"][0, ..., 0] * 1920 / 1920, rtol=1e-6)
    np.testing.assert_allclose(pose[..., 1], ann["keypoint"][0, ..., 1] * 1080 / 1920, rtol=1e-6)


def break_pkl(field, value):
    def apply(anns, clips, raters):
        anns[0][field] = value
    return apply


def nan_coordinates(anns, clips, raters):
    anns[0]["keypoint"][0, 2, 3, 0] = np.nan


CASES = {
    "wrong joint count": (break_pkl("keypoint", np.zeros((1, 5, 13, 2), np.float32)), "expected 17 COCO joints", "annotations.pkl", "c1"),
    "wrong rank": (break_pkl("keypoint", np.zeros((5, 2), np.float32)), "keypoint must be [M, T, 17, 2]", "annotations.pkl", "c1"),
    "NaN": (nan_coordinates, "NaN or infinite", "annotations.pkl", "c1"),
    "empty clip": (
        lambda a, c, r: a[0].update(keypoint=np.zeros((1, 0, 17, 2), np.float32), keypoint_score=np.zeros((1, 0, 17), np.float32)),
        "empty clip",
        "annotations.pkl",
        "c1",
    ),
    "missing from clips.csv": (lambda a, c, r: c.pop(1), "clip is not in clips.csv", "annotations.pkl", "c2"),
    "missing from pkl": (lambda a, c, r: a.pop(0), "have no skeleton in annotations.pkl", "clips.csv", "c1"),
    "duplicate in pkl": (lambda a, c, r: a.append(dict(a[0])), "duplicate clip", "annotations.pkl", "c1"),
    "duplicate in csv": (lambda a, c, r: c.append(dict(c[0])), "duplicate clip_id", "clips.csv", "c1"),
    "empty diagnosis": (lambda a, c, r: c[0].update(diagnosis=""), "empty diagnosis", "clips.csv", "c1"),
    "bad fps": (lambda a, c, r: c[0].update(fps="0"), "fps must be positive", "clips.csv", "c1"),
    "unknown region": (lambda a, c, r: r["doctor1.csv"][0].update(attention="knee"), "unknown region 'knee'", "doctor1.csv", "c1"),
    "rated clip unknown": (
        lambda a, c, r: r["doctor1.csv"][0].update(clip_id="zz"), "clip is not in the skeleton file", "doctor1.csv", "zz"
    ),
    "reserved patient id": (lambda a, c, r: c[0].update(patient_id="p|1"), "is reserved", "clips.csv", "c1"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_malformed_input_is_one_clear_error(tmp_path, case):
    mutate, message, filename, clip = CASES[case]
    annotations = [annotation("c1"), annotation("c2", seed=1)]
    clips = [
        {"clip_id": "c1", "patient_id": "p1", "diagnosis": "ASD", "fps": 30},
        {"clip_id": "c2", "patient_id": "p2", "diagnosis": "DHS", "fps": 30},
    ]
    raters = {"doctor1.csv": [{"clip_id": "c1", "attention": "head"}]}
    mutate(annotations, clips, raters)
    folder = write_folder(tmp_path / "bad", annotations, clips, raters)
    with pytest.raises(UserDataError) as err:
        list(read_user_folder(folder))
    text = str(err.value)
    assert message in text and filename in text and repr(clip) in text, text


def test_unknown_diagnosis_is_named_with_its_clip(tmp_path):
    folder = write_folder(
        tmp_path / "dx", [annotation("c1")], [{"clip_id": "c1", "patient_id": "p", "diagnosis": "Scoliosis", "fps": 30}]
    )
    with pytest.raises(ValueError, match=r"clips.csv, clip 'c1'.*'Scoliosis' is not in the class mapping"):
        list(read_user_folder(folder, label_map=parse_label_map("3")))


def test_missing_column_and_missing_file(tmp_path):
    folder = valid_folder(tmp_path / "cols")
    (folder / "clips.csv").write_text("clip_id,patient_id\nc1,p1\n")
    with pytest.raises(UserDataError, match=r"clips.csv: missing column\(s\) diagnosis, fps"):
        list(read_user_folder(folder))
    (folder / "clips.csv").unlink()
    with pytest.raises(UserDataError, match="clips.csv: file not found"):
        list(read_user_folder(folder))


def test_a_folder_without_clips_csv_or_diagnoses_is_read_for_prediction(tmp_path):
    folder = tmp_path / "unlabeled"
    folder.mkdir()
    with open(folder / "annotations.pkl", "wb") as f:
        pickle.dump({"annotations": [annotation("c1"), annotation("c2", seed=1)]}, f)
    records = list(read_user_folder(folder, need_diagnosis=False))
    assert [(r["clip_id"], r["patient_id"], r["diagnosis"], r["fps"]) for r in records] == [("c1", "c1", "", 30.0), ("c2", "c2", "", 30.0)]
    with pytest.raises(UserDataError, match="clips.csv: file not found; training needs each clip's diagnosis"):
        list(read_user_folder(folder))
    (folder / "clips.csv").write_text("clip_id,patient_id,fps\nc1,p1,25\nc2,p1,50\n")  # no diagnosis column
    records = list(read_user_folder(folder, need_diagnosis=False))
    assert [(r["patient_id"], r["fps"]) for r in records] == [("p1", 25.0), ("p1", 50.0)]
    with pytest.raises(UserDataError, match=r"clips.csv: missing column\(s\) diagnosis"):
        list(read_user_folder(folder))

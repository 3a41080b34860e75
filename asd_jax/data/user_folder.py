"""A clinic's folder in the reference's formats -> validated clip records.

The folder holds `annotations.pkl` (pyskl / MMAction2 skeletons, as the reference produced with
YOLOv8-pose), `clips.csv` (clip_id, patient_id, diagnosis, fps) and optional rater files
`doctor*.csv` (clip_id, attention: region names). Every problem is one `UserDataError` naming the
file, the clip and what is wrong, raised before anything is written.

Security: `annotations.pkl` is a pickle, and loading a pickle runs code. Only read files from a
trusted source.
"""

from __future__ import annotations

import csv
import pickle
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from asd_jax.base.errors import UserDataError
from asd_jax.base.labels import LabelMap
from asd_jax.base.skeleton import NUM_JOINTS, NUM_REGIONS, REGION_NAMES, default_prior

CLIPS_COLUMNS = ("clip_id", "patient_id", "diagnosis", "fps")
RATER_COLUMNS = ("clip_id", "attention")
REGION_SEPARATORS = re.compile(r"[;,|]")


def read_csv(path: Path, required: tuple[str, ...]) -> list[dict[str, str]]:
    """Rows of a CSV whose header must contain `required`."""
    if not path.exists():
        raise UserDataError(path, "file not found")
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise UserDataError(path, f"missing column(s) {', '.join(missing)}; found {reader.fieldnames}")
        return [{k: (v or "").strip() for k, v in row.items() if k is not None} for row in reader]


def read_clips_table(path: Path) -> dict[str, dict[str, Any]]:
    """clips.csv -> {clip_id: {patient_id, diagnosis, fps}}."""
    table: dict[str, dict[str, Any]] = {}
    for row in read_csv(path, CLIPS_COLUMNS):
        clip_id = row["clip_id"]
        if not clip_id:
            raise UserDataError(path, "empty clip_id")
        if clip_id in table:
            raise UserDataError(path, "duplicate clip_id", clip_id)
        for column in ("patient_id", "diagnosis"):
            if not row[column]:
                raise UserDataError(path, f"empty {column}", clip_id)
        try:
            fps = float(row["fps"])
        except ValueError:
            raise UserDataError(path, f"fps {row['fps']!r} is not a number", clip_id) from None
        if not np.isfinite(fps) or fps <= 0:
            raise UserDataError(path, f"fps must be positive, got {row['fps']!r}", clip_id)
        table[clip_id] = {"patient_id": row["patient_id"], "diagnosis": row["diagnosis"], "fps": fps}
    if not table:
        raise UserDataError(path, "no clips")
    return table


def read_rater_priors(folder: Path, clip_ids: set[str]) -> dict[str, list[np.ndarray]]:
    """Each rater's region vector per clip (k named regions get 1/k each), from doctor*.csv."""
    votes: dict[str, list[np.ndarray]] = {}
    for path in sorted(folder.glob("doctor*.csv")):
        seen: set[str] = set()
        for row in read_csv(path, RATER_COLUMNS):
            clip_id = row["clip_id"]
            if clip_id not in clip_ids:
                raise UserDataError(path, "clip is not in clips.csv", clip_id)
            if clip_id in seen:
                raise UserDataError(path, "clip rated twice by the same rater", clip_id)
            seen.add(clip_id)
            names = [n.strip() for n in REGION_SEPARATORS.split(row["attention"]) if n.strip()]
            if not names:
                raise UserDataError(path, "empty attention", clip_id)
            vector = np.zeros(NUM_REGIONS, np.float32)
            for name in names:
                if name not in REGION_NAMES:
                    raise UserDataError(path, f"unknown region {name!r}; expected {', '.join(REGION_NAMES)}", clip_id)
                vector[REGION_NAMES.index(name)] += 1.0 / len(names)
            votes.setdefault(clip_id, []).append(vector)
    return votes


def load_annotations(path: Path) -> list[dict[str, Any]]:
    """The pkl's list of skeleton annotations (pyskl: a dict with 'annotations', or a bare list)."""
    if not path.exists():
        raise UserDataError(path, "file not found")
    try:
        with path.open("rb") as f:
            data = pickle.load(f)  # noqa: S301 - documented: annotations must come from a trusted source
    except Exception as err:  # a corrupt pickle can raise almost anything
        raise UserDataError(path, f"cannot be read as a pickle ({type(err).__name__}: {err})") from None
    annotations = data.get("annotations") if isinstance(data, dict) else data
    if not isinstance(annotations, list):
        raise UserDataError(path, "expected a dict with an 'annotations' list (pyskl format)")
    return annotations


def pose_from_annotation(ann: dict[str, Any], path: Path, clip_id: str) -> np.ndarray:
    """[T, 17, 3] pose of the most confident person: x, y over the longer image side, score."""
    for key in ("keypoint", "keypoint_score", "img_shape"):
        if key not in ann:
            raise UserDataError(path, f"annotation has no {key!r}", clip_id)
    keypoint = np.asarray(ann["keypoint"], np.float32)
    score = np.asarray(ann["keypoint_score"], np.float32)
    if keypoint.ndim == 3:  # a single person without the M axis
        keypoint, score = keypoint[None], score[None]
    if keypoint.ndim != 4 or keypoint.shape[-1] != 2:
        raise UserDataError(path, f"keypoint must be [M, T, 17, 2], got shape {keypoint.shape}", clip_id)
    if keypoint.shape[2] != NUM_JOINTS:
        raise UserDataError(path, f"expected {NUM_JOINTS} COCO joints, got {keypoint.shape[2]}", clip_id)
    if score.shape != keypoint.shape[:-1]:
        raise UserDataError(path, f"keypoint_score shape {score.shape} does not match keypoint {keypoint.shape}", clip_id)
    if keypoint.shape[1] == 0:
        raise UserDataError(path, "empty clip (0 frames)", clip_id)
    if not (np.isfinite(keypoint).all() and np.isfinite(score).all()):
        raise UserDataError(path, "NaN or infinite keypoint coordinates or scores", clip_id)
    height, width = (float(v) for v in ann["img_shape"][:2])
    if height <= 0 or width <= 0:
        raise UserDataError(path, f"img_shape must be positive, got {ann['img_shape']}", clip_id)
    person = int(np.argmax(score.mean(axis=(1, 2))))
    xy, s = keypoint[person], np.clip(score[person], 0.0, 1.0)
    if np.abs(xy).max() <= 1.5:  # 0-1 normalised per axis -> pixels
        xy = xy * np.array([width, height], np.float32)
    xy = xy / max(height, width)
    xy = np.where(s[..., None] > 0, xy, 0.0)
    return np.concatenate([xy, s[..., None]], axis=-1).astype(np.float32)


def read_user_folder(
    folder: str | Path, *, default_prior_spec: str = "uniform", label_map: LabelMap | None = None
) -> Iterator[dict[str, Any]]:
    """Validated clip records of a folder, in the order of annotations.pkl.

    Everything is checked before the first record is yielded, so a build never half-writes.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise UserDataError(folder, "folder not found")
    clips_path, pkl_path = folder / "clips.csv", folder / "annotations.pkl"
    table = read_clips_table(clips_path)
    if label_map is not None:
        for clip_id, row in table.items():
            label_map.includes(row["diagnosis"], where=f"{clips_path}, clip {clip_id!r}")
    priors = read_rater_priors(folder, set(table))
    fallback = default_prior(default_prior_spec)

    records, seen = [], set()
    for ann in load_annotations(pkl_path):
        if not isinstance(ann, dict) or "frame_dir" not in ann:
            raise UserDataError(pkl_path, "an annotation is not a dict with a 'frame_dir'")
        clip_id = Path(str(ann["frame_dir"])).name
        if clip_id in seen:
            raise UserDataError(pkl_path, "duplicate clip (frame_dir basename)", clip_id)
        seen.add(clip_id)
        if clip_id not in table:
            raise UserDataError(pkl_path, f"clip is not in {clips_path.name}", clip_id)
        row = table[clip_id]
        votes = priors.get(clip_id)
        prior = np.mean(votes, axis=0) if votes else fallback
        records.append(
            {
                "clip_id": clip_id,
                "patient_id": row["patient_id"],
                "diagnosis": row["diagnosis"],
                "pose": pose_from_annotation(ann, pkl_path, clip_id),
                "prior": (prior / prior.sum()).astype(np.float32),
                "fps": np.float32(row["fps"]),
            }
        )
    missing = sorted(set(table) - seen)
    if missing:
        raise UserDataError(clips_path, f"{len(missing)} clip(s) have no skeleton in {pkl_path.name}", missing[0])
    yield from records

"""A clinic's folder -> validated clip records, in our format or the reference's own files.

Skeletons: `annotations.pkl` (pyskl / MMAction2, as `--mode=pose` writes it) or the reference's
`whole_annotations.pkl` (the same, with a `label` per annotation and a top-level `split`), one of
the two. Clip metadata: `clips.csv` (clip_id, patient_id, fps, and diagnosis to train). Rater
files: any `doctor*.csv`, keyed by `clip_id` (ours) or `video file name` (the reference's).

What may be left out, and what then stands in (README "Bring your own data"):
- `clips.csv`: patient_id = the clip id (annotations.pkl) or, for whole_annotations.pkl, the clip
  id up to its last `-` (the reference names clips `<patient>-<number>` and groups patients that
  way); fps = DEFAULT_FPS (the reference's videos are 30 fps).
- diagnoses, when `need_diagnosis` is False (prediction): records carry diagnosis ''.
- in whole_annotations.pkl, a clip's diagnosis is its `label` read through
  `labels.REFERENCE_LABELS` (0 ASD, 1 DHS, 2 LCS_HipOA, 3 normal), where label 2 becomes LCS or
  HipOA when exactly one of them is a `_`-separated word of the clip's name, as the reference's
  own file names say; a diagnosis in clips.csv takes precedence.

The clip id is the basename of `frame_dir`; the reference's frame_dir is a video path, so for
whole_annotations.pkl a video suffix (`.mp4`, ...) is dropped. Every problem is one
`UserDataError` naming the file, the clip and what is wrong, raised before anything is yielded.

Security: the pkl files are pickles, and loading a pickle runs code. Only read files from a
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

from asd_jax.base import preprocess
from asd_jax.base.errors import UserDataError
from asd_jax.base.labels import REFERENCE_LABELS, UNIT_SEPARATOR, LabelMap
from asd_jax.base.skeleton import NUM_JOINTS, NUM_REGIONS, REGION_NAMES, default_prior

ANNOTATIONS, REFERENCE_ANNOTATIONS, CLIPS = "annotations.pkl", "whole_annotations.pkl", "clips.csv"
SKELETON_FILES = (ANNOTATIONS, REFERENCE_ANNOTATIONS)
CLIPS_COLUMNS = ("clip_id", "patient_id", "fps")  # and `diagnosis` to train
RATER_COLUMNS = ("clip_id", "attention")
REFERENCE_RATER_COLUMNS = ("video file name", "attention")
DEFAULT_FPS = 30.0  # of clips without a clips.csv row: the reference's recordings are 30 fps
VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".m4v", ".webm", ".mpg", ".mpeg", ".wmv")
REGION_SEPARATORS = re.compile(r"[;,|]")


def read_csv(path: Path, required: tuple[str, ...]) -> tuple[list[str], list[dict[str, str]]]:
    """Header and rows of a CSV whose header must contain `required`."""
    if not path.exists():
        raise UserDataError(path, "file not found")
    with path.open(newline="", encoding="utf-8-sig") as f:  # a spreadsheet's byte-order mark is not part of the first column's name
        reader = csv.DictReader(f)
        header = list(reader.fieldnames or [])
        missing = [c for c in required if c not in header]
        if missing:
            raise UserDataError(path, f"missing column(s) {', '.join(missing)}; found {header}")
        return header, [{k: (v or "").strip() for k, v in row.items() if k is not None} for row in reader]


def read_clips_table(path: Path, *, need_diagnosis: bool) -> dict[str, dict[str, Any]]:
    """clips.csv -> {clip_id: {patient_id, diagnosis ('' where the file has none), fps}}."""
    required = CLIPS_COLUMNS[:2] + ("diagnosis",) + CLIPS_COLUMNS[2:] if need_diagnosis else CLIPS_COLUMNS
    _, rows = read_csv(path, required)
    table: dict[str, dict[str, Any]] = {}
    for row in rows:
        clip_id = row["clip_id"]
        if not clip_id:
            raise UserDataError(path, "empty clip_id")
        if clip_id in table:
            raise UserDataError(path, "duplicate clip_id", clip_id)
        if not row["patient_id"]:
            raise UserDataError(path, "empty patient_id", clip_id)
        if need_diagnosis and not row["diagnosis"]:
            raise UserDataError(path, "empty diagnosis", clip_id)
        try:
            fps = float(row["fps"])
        except ValueError:
            raise UserDataError(path, f"fps {row['fps']!r} is not a number", clip_id) from None
        if not np.isfinite(fps) or fps <= 0:
            raise UserDataError(path, f"fps must be positive, got {row['fps']!r}", clip_id)
        table[clip_id] = {"patient_id": row["patient_id"], "diagnosis": row.get("diagnosis", ""), "fps": fps}
    if not table:
        raise UserDataError(path, "no clips")
    return table


def _split_regions(text: str) -> list[str]:
    """The names of an `attention` cell: 'head;foot' -> ['head', 'foot']."""
    return [n.strip() for n in REGION_SEPARATORS.split(text) if n.strip()]


def _reference_regions(text: str) -> list[str]:
    """The reference's cell: its med_attn_map.py reads one region at `attention[2:-6]`; a plain
    list of region names is read as ours."""
    names = _split_regions(text)
    if names and all(n in REGION_NAMES for n in names):
        return names
    inner = text[2:-6].strip()
    return [inner] if inner in REGION_NAMES else [text]


def _clips_named(name: str, clip_ids: set[str]) -> list[str]:
    """Clips a reference rater row names: the clip of that name (video suffix dropped), else every
    clip whose id contains it, as the reference matches (`name in video_name`)."""
    stem = strip_video_suffix(name)
    if stem in clip_ids:
        return [stem]
    return sorted(c for c in clip_ids if stem and stem in c)


def read_rater_priors(folder: Path, clip_ids: set[str]) -> dict[str, list[np.ndarray]]:
    """Each rater's region vector per clip (k named regions get 1/k each), from doctor*.csv.

    Ours: one row per clip (`clip_id`, `attention`: region names separated by ';'). The
    reference's: `video file name`, `attention`, any number of rows per clip (their regions are
    pooled, as the reference does)."""
    votes: dict[str, list[np.ndarray]] = {}
    for path in sorted(folder.glob("doctor*.csv")):
        header, _ = read_csv(path, ())
        reference = "clip_id" not in header and REFERENCE_RATER_COLUMNS[0] in header
        _, rows = read_csv(path, REFERENCE_RATER_COLUMNS if reference else RATER_COLUMNS)
        chosen: dict[str, list[str]] = {}
        for row in rows:
            if reference:
                name = row["video file name"]
                clips = _clips_named(name, clip_ids)
                if not clips:
                    raise UserDataError(path, "names no clip of the skeleton file", name)
                names = _reference_regions(row["attention"])
            else:
                clips = [row["clip_id"]]
                if clips[0] not in clip_ids:
                    raise UserDataError(path, "clip is not in the skeleton file", clips[0])
                if clips[0] in chosen:
                    raise UserDataError(path, "clip rated twice by the same rater", clips[0])
                names = _split_regions(row["attention"])
            if not row["attention"]:
                raise UserDataError(path, "empty attention", clips[0])
            unknown = [n for n in names if n not in REGION_NAMES]
            if unknown:
                raise UserDataError(path, f"unknown region {unknown[0]!r}; expected {', '.join(REGION_NAMES)}", clips[0])
            for clip_id in clips:
                pooled = chosen.setdefault(clip_id, [])
                pooled += [n for n in names if n not in pooled]
        for clip_id, names in chosen.items():
            vector = np.zeros(NUM_REGIONS, np.float32)
            for name in names:
                vector[REGION_NAMES.index(name)] += 1.0 / len(names)
            votes.setdefault(clip_id, []).append(vector)
    return votes


def load_pickle(path: Path) -> Any:
    if not path.exists():
        raise UserDataError(path, "file not found")
    try:
        with path.open("rb") as f:
            return pickle.load(f)  # noqa: S301 - documented: annotations must come from a trusted source
    except Exception as err:  # a corrupt pickle can raise almost anything
        raise UserDataError(path, f"cannot be read as a pickle ({type(err).__name__}: {err})") from None


def load_annotations(path: Path) -> list[dict[str, Any]]:
    """The pkl's list of skeleton annotations (pyskl: a dict with 'annotations', or a bare list)."""
    data = load_pickle(path)
    annotations = data.get("annotations") if isinstance(data, dict) else data
    if not isinstance(annotations, list):
        raise UserDataError(path, "expected a dict with an 'annotations' list (pyskl format)")
    return annotations


def skeleton_file(folder: Path) -> Path:
    """The folder's annotations.pkl or whole_annotations.pkl (exactly one of them)."""
    present = [folder / name for name in SKELETON_FILES if (folder / name).exists()]
    if len(present) > 1:
        raise UserDataError(folder, f"holds both {ANNOTATIONS} and {REFERENCE_ANNOTATIONS}; keep one of them")
    if not present:
        raise UserDataError(folder / ANNOTATIONS, f"file not found (nor the reference's {REFERENCE_ANNOTATIONS})")
    return present[0]


def strip_video_suffix(name: str) -> str:
    return name[: -len(Path(name).suffix)] if Path(name).suffix.lower() in VIDEO_SUFFIXES else name


def clip_id_of(frame_dir: Any, reference: bool) -> str:
    name = Path(str(frame_dir)).name
    return strip_video_suffix(name) if reference else name


def reference_patient(clip_id: str) -> str:
    """The reference's patient of a clip: its name up to the last `-` (`<patient>-<number>`)."""
    return clip_id.rsplit("-", 1)[0] if "-" in clip_id else clip_id


def reference_diagnosis(label: Any, clip_id: str, path: Path) -> str:
    """The diagnosis of a whole_annotations.pkl `label` (labels.REFERENCE_LABELS), label 2 refined
    to LCS or HipOA by the clip's name."""
    try:
        diagnosis = REFERENCE_LABELS[int(label)]
    except (TypeError, ValueError, IndexError):
        known = f"0..{len(REFERENCE_LABELS) - 1} ({', '.join(REFERENCE_LABELS)})"
        raise UserDataError(path, f"label {label!r} is not one of {known}", clip_id) from None
    words = set(clip_id.split("_"))
    if diagnosis == "LCS_HipOA" and len(words & {"LCS", "HipOA"}) == 1:
        return (words & {"LCS", "HipOA"}).pop()
    return diagnosis


def reference_split(folder: Path) -> dict[str, str]:
    """{clip_id: side} of whole_annotations.pkl's own `split` (the reference's one train/val
    fold); empty for other folders. Our folds do not use it (they are patient-grouped)."""
    path = Path(folder) / REFERENCE_ANNOTATIONS
    data = load_pickle(path) if path.exists() else None
    if not isinstance(data, dict) or not isinstance(data.get("split"), dict):
        return {}
    return {clip_id_of(name, True): str(side) for side, names in data["split"].items() for name in (names or [])}


def pose_from_annotation(ann: dict[str, Any], path: Path, clip_id: str) -> np.ndarray:
    """[T, 17, 3] pose of the most confident person (preprocess.stored_pose), after validation."""
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
    return preprocess.stored_pose(keypoint, score, (height, width))


def _clip_rows(
    folder: Path, annotations: dict[str, dict[str, Any]], pkl_path: Path, *, need_diagnosis: bool
) -> dict[str, dict[str, Any]]:
    """{clip_id: {patient_id, diagnosis, fps}} from clips.csv, or by the rules of the module docstring."""
    reference = pkl_path.name == REFERENCE_ANNOTATIONS
    clips_path = folder / CLIPS
    if clips_path.exists():
        table = read_clips_table(clips_path, need_diagnosis=need_diagnosis and not reference)
        for clip_id in annotations:
            if clip_id not in table:
                raise UserDataError(pkl_path, f"clip is not in {CLIPS}", clip_id)
        missing = sorted(set(table) - set(annotations))
        if missing:
            raise UserDataError(clips_path, f"{len(missing)} clip(s) have no skeleton in {pkl_path.name}", missing[0])
    elif need_diagnosis and not reference:
        raise UserDataError(clips_path, "file not found; training needs each clip's diagnosis (clip_id, patient_id, diagnosis, fps)")
    else:
        table = {
            clip_id: {"patient_id": reference_patient(clip_id) if reference else clip_id, "diagnosis": "", "fps": DEFAULT_FPS}
            for clip_id in annotations
        }
    for clip_id, row in table.items():
        if UNIT_SEPARATOR in row["patient_id"]:
            raise UserDataError(clips_path, f"patient_id {row['patient_id']!r} contains {UNIT_SEPARATOR!r}, which is reserved", clip_id)
        if reference and not row["diagnosis"] and "label" in annotations[clip_id]:
            row["diagnosis"] = reference_diagnosis(annotations[clip_id]["label"], clip_id, pkl_path)
        if need_diagnosis and not row["diagnosis"]:
            raise UserDataError(pkl_path, f"no diagnosis: the annotation has no 'label' and {CLIPS} gives none", clip_id)
    return table


def read_user_folder(
    folder: str | Path, *, default_prior_spec: str = "uniform", label_map: LabelMap | None = None, need_diagnosis: bool = True
) -> Iterator[dict[str, Any]]:
    """Validated clip records of a folder, in the order of its skeleton file.

    `need_diagnosis=False` (prediction) accepts clips without a diagnosis (their records carry
    diagnosis ''). Everything is checked before the first record is yielded, so a build never
    half-writes.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise UserDataError(folder, "folder not found")
    pkl_path = skeleton_file(folder)
    reference = pkl_path.name == REFERENCE_ANNOTATIONS
    annotations: dict[str, dict[str, Any]] = {}
    for ann in load_annotations(pkl_path):
        if not isinstance(ann, dict) or "frame_dir" not in ann:
            raise UserDataError(pkl_path, "an annotation is not a dict with a 'frame_dir'")
        clip_id = clip_id_of(ann["frame_dir"], reference)
        if clip_id in annotations:
            raise UserDataError(pkl_path, "duplicate clip (frame_dir basename)", clip_id)
        annotations[clip_id] = ann
    if not annotations:
        raise UserDataError(pkl_path, "no annotations")
    table = _clip_rows(folder, annotations, pkl_path, need_diagnosis=need_diagnosis)
    if label_map is not None:
        where = folder / CLIPS if (folder / CLIPS).exists() else pkl_path
        for clip_id, row in table.items():
            if row["diagnosis"]:
                label_map.includes(row["diagnosis"], where=f"{where}, clip {clip_id!r}")
    priors = read_rater_priors(folder, set(table))
    fallback = default_prior(default_prior_spec)

    records = []
    for clip_id, ann in annotations.items():
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
    yield from records

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
whole_annotations.pkl a video suffix (`.mp4`, ...) is dropped (skeletons.py reads and checks
the pkl). Every problem is a `UserDataError` naming the file, the clip and what is wrong, found
before anything is yielded. A problem of one clip stops the read (`on_error='raise'`, the
default) or leaves that clip out (`'skip'`, problems.py); a problem of a whole file always stops it.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from asd_jax.base.errors import ConfigError, UserDataError
from asd_jax.base.labels import UNIT_SEPARATOR, LabelMap
from asd_jax.base.skeleton import NUM_REGIONS, REGION_NAMES, default_prior
from asd_jax.data.problems import Problems, counts
from asd_jax.data.skeletons import (
    REFERENCE_ANNOTATIONS,
    clip_id_of,
    load_annotations,
    load_pickle,
    pose_from_annotation,
    reference_diagnosis,
    skeleton_file,
    strip_video_suffix,
)

CLIPS = "clips.csv"
CLIPS_COLUMNS = ("clip_id", "patient_id", "fps")  # and `diagnosis` to train
RATER_COLUMNS = ("clip_id", "attention")
REFERENCE_RATER_COLUMNS = ("video file name", "attention")
DEFAULT_FPS = 30.0  # of clips without a clips.csv row: the reference's recordings are 30 fps
REGION_SEPARATORS = re.compile(r"[;,|]")
EXTRA = "(cells beyond the header)"  # where a row's surplus cells go: an unquoted ',' in a cell shifts the rest


def read_csv(path: Path, required: tuple[str, ...]) -> tuple[list[str], list[dict[str, Any]]]:
    """Header and rows of a UTF-8 CSV whose header must contain `required`."""
    if not path.is_file():
        raise UserDataError(path, "file not found" if not path.exists() else "is not a file")
    try:  # decoded whole, so that a bad byte is one error naming the file, not a UnicodeDecodeError mid-read
        text = path.read_bytes().decode("utf-8-sig")  # a spreadsheet's byte-order mark is not part of the first column's name
        reader = csv.DictReader(io.StringIO(text, newline=""), restkey=EXTRA)
        header = list(reader.fieldnames or [])
        rows = [{k: v if k == EXTRA else (v or "").strip() for k, v in row.items()} for row in reader]
    except UnicodeDecodeError as err:
        problem = f"is not UTF-8 text (byte {err.object[err.start]:#04x} at offset {err.start}); save it as UTF-8 ('CSV UTF-8' in Excel)"
        raise UserDataError(path, problem) from None
    except (OSError, csv.Error) as err:
        raise UserDataError(path, f"cannot be read as CSV ({type(err).__name__}: {err})") from None
    missing = [c for c in required if c not in header]
    if missing:
        one_cell = len(header) == 1 and any(sep in header[0] for sep in ";\t")
        hint = "; the header is one cell: separate the columns with ',' (not ';' or tabs)" if one_cell else ""
        raise UserDataError(path, f"missing column(s) {', '.join(missing)}; found {header}{hint}")
    return header, rows


def _clip_entry(row: dict[str, Any], path: Path, need_diagnosis: bool) -> dict[str, Any]:
    """One clips.csv row -> {patient_id, diagnosis, fps}, checked."""
    clip_id = row["clip_id"]
    if row.get(EXTRA):
        problem = f"row has {len(row[EXTRA])} cell(s) more than the header (a ',' inside an unquoted cell?)"
        raise UserDataError(path, problem, clip_id, kind="row has more cells than the header")
    if not row["patient_id"]:
        raise UserDataError(path, "empty patient_id", clip_id)
    if need_diagnosis and not row["diagnosis"]:
        raise UserDataError(path, "empty diagnosis", clip_id)
    try:
        fps = float(row["fps"])
    except ValueError:
        raise UserDataError(path, f"fps {row['fps']!r} is not a number", clip_id, kind="fps is not a number") from None
    if not np.isfinite(fps) or fps <= 0:
        raise UserDataError(path, f"fps must be positive, got {row['fps']!r}", clip_id, kind="fps is not positive")
    return {"patient_id": row["patient_id"], "diagnosis": row.get("diagnosis", ""), "fps": fps}


def read_clips_table(path: Path, *, need_diagnosis: bool, problems: Problems | None = None) -> dict[str, dict[str, Any]]:
    """clips.csv -> {clip_id: {patient_id, diagnosis ('' where the file has none), fps}}; the rows
    of a clip listed twice are all left out under `on_error='skip'` (which one is right?)."""
    problems = problems or Problems()
    required = CLIPS_COLUMNS[:2] + ("diagnosis",) + CLIPS_COLUMNS[2:] if need_diagnosis else CLIPS_COLUMNS
    _, rows = read_csv(path, required)
    if not rows:
        raise UserDataError(path, "no clips")
    listed = Counter(row["clip_id"] for row in rows)
    for clip_id in sorted(c for c, n in listed.items() if c and n > 1):
        problems.clip(UserDataError(path, f"duplicate clip_id ({listed[clip_id]} rows)", clip_id, kind="duplicate clip_id"))
    table: dict[str, dict[str, Any]] = {}
    for number, row in enumerate(rows, start=1):
        if not row["clip_id"]:
            problems.row(UserDataError(path, f"row {number} has an empty clip_id", kind="empty clip_id"))
        elif listed[row["clip_id"]] == 1:
            try:
                table[row["clip_id"]] = _clip_entry(row, path, need_diagnosis)
            except UserDataError as err:
                problems.clip(err)
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


def _rated_regions(row: dict[str, Any], reference: bool, clips: list[str], chosen: dict[str, list[str]], path: Path) -> list[str]:
    """The region names of one rater row about `clips` (the clips of the data it names)."""
    if reference:
        if not clips:
            raise UserDataError(path, "names no clip of the skeleton file", row["video file name"], kind="names no clip")
        names = _reference_regions(row["attention"])
    else:
        if not clips:
            raise UserDataError(path, "clip is not in the skeleton file", row["clip_id"], kind="names no clip")
        if clips[0] in chosen:
            raise UserDataError(path, "clip rated twice by the same rater", clips[0])
        names = _split_regions(row["attention"])
    if not row["attention"]:
        raise UserDataError(path, "empty attention", clips[0])
    unknown = [n for n in names if n not in REGION_NAMES]
    if unknown:
        raise UserDataError(path, f"unknown region {unknown[0]!r}; expected {', '.join(REGION_NAMES)}", clips[0], kind="unknown region")
    return names


def read_rater_priors(folder: Path, clip_ids: set[str], problems: Problems | None = None) -> dict[str, list[np.ndarray]]:
    """Each rater's region vector per clip (k named regions get 1/k each), from doctor*.csv.

    Ours: one row per clip (`clip_id`, `attention`: region names separated by ';'). The
    reference's: `video file name`, `attention`, any number of rows per clip (their regions are
    pooled, as the reference does). Under `on_error='skip'` a bad row leaves out the clips it
    names (their prior would otherwise silently lose a rater), and a row naming none is ignored."""
    problems = problems or Problems()
    votes: dict[str, list[np.ndarray]] = {}
    for path in sorted(folder.glob("doctor*.csv")):
        header, _ = read_csv(path, ())
        reference = "clip_id" not in header and REFERENCE_RATER_COLUMNS[0] in header
        _, rows = read_csv(path, REFERENCE_RATER_COLUMNS if reference else RATER_COLUMNS)
        chosen: dict[str, list[str]] = {}
        for row in rows:
            clips = _clips_named(row["video file name"], clip_ids) if reference else [c for c in [row["clip_id"]] if c in clip_ids]
            try:
                names = _rated_regions(row, reference, clips, chosen, path)
            except UserDataError as err:
                if not clips:
                    problems.row(err)
                for clip_id in clips:
                    problems.clip(UserDataError(path, err.problem, clip_id, kind=err.kind))
                continue
            for clip_id in clips:
                pooled = chosen.setdefault(clip_id, [])
                pooled += [n for n in names if n not in pooled]
        for clip_id, names in chosen.items():
            vector = np.zeros(NUM_REGIONS, np.float32)
            for name in names:
                vector[REGION_NAMES.index(name)] += 1.0 / len(names)
            votes.setdefault(clip_id, []).append(vector)
    return votes


def reference_patient(clip_id: str) -> str:
    """The reference's patient of a clip: its name up to the last `-` (`<patient>-<number>`)."""
    return clip_id.rsplit("-", 1)[0] if "-" in clip_id else clip_id


def reference_split(folder: Path) -> dict[str, str]:
    """{clip_id: side} of whole_annotations.pkl's own `split` (the reference's one train/val
    fold); empty for other folders. Our folds do not use it (they are patient-grouped)."""
    path = Path(folder) / REFERENCE_ANNOTATIONS
    data = load_pickle(path) if path.exists() else None
    if not isinstance(data, dict) or not isinstance(data.get("split"), dict):
        return {}
    return {strip_video_suffix(Path(str(name)).name): str(side) for side, names in data["split"].items() for name in (names or [])}


def _annotations_by_clip(pkl_path: Path, problems: Problems) -> dict[str, dict[str, Any]]:
    """{clip_id: annotation} of the skeleton file; a clip id found twice is left out whole."""
    by_clip: dict[str, list[dict[str, Any]]] = {}
    for index, ann in enumerate(load_annotations(pkl_path)):
        try:
            by_clip.setdefault(clip_id_of(ann, index, pkl_path), []).append(ann)
        except UserDataError as err:
            problems.row(err)
    if not by_clip and not problems.skipped:
        raise UserDataError(pkl_path, "no annotations")
    for clip_id, anns in by_clip.items():
        if len(anns) > 1:
            problem = f"duplicate clip (frame_dir basename, {len(anns)} annotations)"
            problems.clip(UserDataError(pkl_path, problem, clip_id, kind="duplicate clip"))
    return {clip_id: anns[0] for clip_id, anns in by_clip.items() if len(anns) == 1}


def _clip_rows(
    folder: Path, annotations: dict[str, dict[str, Any]], pkl_path: Path, *, need_diagnosis: bool, problems: Problems
) -> dict[str, dict[str, Any]]:
    """{clip_id: {patient_id, diagnosis, fps}} from clips.csv, or by the rules of the module docstring."""
    reference = pkl_path.name == REFERENCE_ANNOTATIONS
    clips_path = folder / CLIPS
    if clips_path.exists():
        table = read_clips_table(clips_path, need_diagnosis=need_diagnosis and not reference, problems=problems)
        left_out = problems.left_out()
        for clip_id in annotations:
            if clip_id not in table and clip_id not in left_out:
                problem = f"clip is not in {CLIPS}: add its row, or remove it from {pkl_path.name}"
                problems.clip(UserDataError(pkl_path, problem, clip_id, kind=f"not in {CLIPS}"))
        missing = sorted(set(table) - set(annotations) - left_out)
        for clip_id in missing:
            problem = f"{len(missing)} clip(s) have no skeleton in {pkl_path.name}"
            problems.row(UserDataError(clips_path, problem, clip_id, kind=f"no skeleton in {pkl_path.name}"))
    elif need_diagnosis and not reference:
        raise UserDataError(clips_path, "file not found; training needs each clip's diagnosis (clip_id, patient_id, diagnosis, fps)")
    else:
        table = {
            clip_id: {"patient_id": reference_patient(clip_id) if reference else clip_id, "diagnosis": "", "fps": DEFAULT_FPS}
            for clip_id in annotations
        }
    rows, left_out = {}, problems.left_out()
    for clip_id, row in table.items():
        if clip_id not in annotations or clip_id in left_out:
            continue
        try:
            if UNIT_SEPARATOR in row["patient_id"]:
                problem = f"patient_id {row['patient_id']!r} contains {UNIT_SEPARATOR!r}, which is reserved"
                raise UserDataError(clips_path, problem, clip_id, kind=f"patient_id contains {UNIT_SEPARATOR!r}")
            if reference and not row["diagnosis"] and "label" in annotations[clip_id]:
                row["diagnosis"] = reference_diagnosis(annotations[clip_id]["label"], clip_id, pkl_path)
            if need_diagnosis and not row["diagnosis"]:
                problem = f"no diagnosis: the annotation has no 'label' and {CLIPS} gives none"
                raise UserDataError(pkl_path, problem, clip_id, kind="no diagnosis")
            rows[clip_id] = row
        except UserDataError as err:
            problems.clip(err)
    return rows


def read_user_folder(
    folder: str | Path,
    *,
    default_prior_spec: str = "uniform",
    label_map: LabelMap | None = None,
    need_diagnosis: bool = True,
    problems: Problems | None = None,
) -> Iterator[dict[str, Any]]:
    """Validated clip records of a folder, in the order of its skeleton file.

    `need_diagnosis=False` (prediction) accepts clips without a diagnosis (their records carry
    diagnosis ''). `problems` (default: raise) decides what a bad clip does and keeps the skips.
    Everything is checked before the first record is yielded, so a build never half-writes.
    """
    folder, problems = Path(folder), problems or Problems()
    if not folder.is_dir():
        raise UserDataError(folder, "folder not found")
    pkl_path = skeleton_file(folder)
    annotations = _annotations_by_clip(pkl_path, problems)
    table = _clip_rows(folder, annotations, pkl_path, need_diagnosis=need_diagnosis, problems=problems)
    if label_map is not None:
        where = folder / CLIPS if (folder / CLIPS).exists() else pkl_path
        for clip_id, row in table.items():
            try:
                if row["diagnosis"]:
                    label_map.includes(row["diagnosis"])
            except ConfigError as err:
                problems.clip(UserDataError(where, str(err), clip_id, kind="diagnosis not in data.classes"))
    priors = read_rater_priors(folder, set(annotations) | problems.left_out(), problems)  # rows about a left-out clip are no news
    fallback = default_prior(default_prior_spec)

    records = []
    for clip_id, ann in annotations.items():
        if clip_id not in table or clip_id in problems.left_out():
            continue
        try:
            pose = pose_from_annotation(ann, pkl_path, clip_id)
        except UserDataError as err:
            problems.clip(err)
            continue
        votes = priors.get(clip_id)
        prior = np.mean(votes, axis=0) if votes else fallback
        row = table[clip_id]
        records.append(
            {
                "clip_id": clip_id,
                "patient_id": row["patient_id"],
                "diagnosis": row["diagnosis"],
                "pose": pose,
                "prior": (prior / prior.sum()).astype(np.float32),
                "fps": np.float32(row["fps"]),
            }
        )
    if not records:
        raise UserDataError(folder, f"no clip left: data.on_error=skip: {counts(problems.skipped)} (see the warnings above)")
    yield from records

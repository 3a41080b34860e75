"""The bad-input catalogue (README "Bad input"): every malformed input a user can hand over is
refused with its one message (file, clip, problem) before anything is computed or written, or met
by a documented policy. test_bad_input_skip.py covers data.on_error=skip and the launch.py path,
test_bad_input_fuzz.py fuzzes the readers."""

from __future__ import annotations

import dataclasses
import pickle
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from test_user_folder import annotation, write_folder

from asd_jax.base import preprocess
from asd_jax.base.errors import UserError
from asd_jax.base.labels import parse_label_map
from asd_jax.data import dataset, splits
from asd_jax.data.user_folder import read_user_folder
from asd_jax.modes import import_weights, prepare
from configs.crossattn import get_config

CLIPS = [
    {"clip_id": "c1", "patient_id": "p1", "diagnosis": "ASD", "fps": 30},
    {"clip_id": "c2", "patient_id": "p2", "diagnosis": "DHS", "fps": 30},
]
PKL, CSV, DOCTOR = "{tmp}/bad/annotations.pkl", "{tmp}/bad/clips.csv", "{tmp}/bad/doctor1.csv"
REGIONS = "expected head, shoulder, wrist, lumbar_pelvis, foot"


@dataclasses.dataclass(frozen=True)
class Entry:
    """One malformed input: `make(tmp_path)` builds it and returns the call that must refuse it;
    `message` is the whole error, `{tmp}` standing for tmp_path and `…` for details (library text)."""

    make: Callable[[Path], Callable[[], object]]
    message: str


def folder(mutate: Callable | None = None, after: Callable | None = None, **read: object) -> Callable[[Path], Callable[[], object]]:
    """A two-clip folder (c1 ASD, c2 DHS, c1 rated 'head'), changed by `mutate(annotations, clips,
    raters)` before it is written and `after(folder)` after, read as the dataset build reads it."""

    def make(tmp_path: Path) -> Callable[[], object]:
        anns, clips, raters = (
            [annotation("c1"), annotation("c2", seed=1)],
            [dict(c) for c in CLIPS],
            {"doctor1.csv": [{"clip_id": "c1", "attention": "head"}]},
        )
        if mutate:
            mutate(anns, clips, raters)
        path = write_folder(tmp_path / "bad", anns, clips, raters)
        if after:
            after(path)
        return lambda: list(read_user_folder(path, **read))

    return make


def set_field(field: str, value: object) -> Callable:
    return lambda anns, clips, raters: anns[0].update({field: value})


def write(name: str, content: bytes | str | object) -> Callable[[Path], None]:
    """Replaces a file of the folder: bytes or text as they are, anything else pickled."""

    def apply(path: Path) -> None:
        data = content.encode() if isinstance(content, str) else content if isinstance(content, bytes) else pickle.dumps(content)
        (path / name).write_bytes(data)

    return apply


def coordinate(person: int, frame: int, joint: int, axis: int, value: float) -> Callable:
    return lambda anns, clips, raters: anns[0]["keypoint"].__setitem__((person, frame, joint, axis), value)


def truncate(path: Path) -> None:
    (path / "annotations.pkl").write_bytes((path / "annotations.pkl").read_bytes()[:300])


def reference_file(label: object) -> Callable[[Path], Callable[[], object]]:
    """The reference's whole_annotations.pkl alone (no clips.csv), its one clip labelled `label`."""

    def make(tmp_path: Path) -> Callable[[], object]:
        (tmp_path / "bad").mkdir()
        ann = {**annotation("c1"), "frame_dir": "/data/val/ASD/c1.mp4", "label": label}
        (tmp_path / "bad" / "whole_annotations.pkl").write_bytes(pickle.dumps({"annotations": [ann]}))
        return lambda: list(read_user_folder(tmp_path / "bad"))

    return make


def records(spec: list[tuple[str, int]]) -> list[dict]:
    """Records (what ClipTable reads) of patients given as (diagnosis, clips)."""
    pose = np.zeros((40, 17, 3), np.float32)
    return [
        {"clip_id": f"p{p}_c{c}", "patient_id": f"p{p}", "diagnosis": dx, "pose": pose, "fps": 30.0}
        for p, (dx, n) in enumerate(spec)
        for c in range(n)
    ]


def training_table(classes: str, **change: object) -> Callable[[Path], Callable[[], object]]:
    """The two-clip folder with clips.csv changed by `change` (for every row), read as training
    reads it: records -> ClipTable under `data.classes`, errors naming the diagnoses' file."""

    def make(tmp_path: Path) -> Callable[[], object]:
        path = write_folder(tmp_path / "bad", [annotation("c1"), annotation("c2", seed=1)], [{**c, **change} for c in CLIPS])
        data = get_config().data
        data.source, data.manual_dir = "files", str(path)
        found = list(read_user_folder(path))
        return lambda: splits.ClipTable.from_source(found, parse_label_map(classes), origin=dataset.diagnosis_origin(data))

    return make


def fold_of(spec: list[tuple[str, int]], classes: str, **split: object) -> Callable[[Path], Callable[[], object]]:
    table = splits.ClipTable.from_source(records(spec), parse_label_map(classes))
    return lambda tmp_path: lambda: splits.make_splits(table, **{"fold": 0, "val_fraction": 0.2, "seed": 0, **split})


def video(content: str) -> Callable[[Path], Callable[[], object]]:
    """A video to --mode=pose: 'garbage' bytes, or an mp4 of an empty room."""

    def make(tmp_path: Path) -> Callable[[], object]:
        from test_video_pose import write_video

        from asd_jax.data import pose_model
        from asd_jax.modes import pose

        (tmp_path / "videos").mkdir()
        path = tmp_path / "videos" / "x.mp4"
        if content == "garbage":
            path.write_bytes(np.random.default_rng(0).bytes(4096))
        else:
            write_video(path, None, num_frames=10)
            pose_model.ensure_bundle()  # the cached model (built on first use), before the snapshot
        return lambda: pose.extract_keypoints(path, tmp_path / "keypoints")

    return make


def weights(state: dict[str, np.ndarray] | None) -> Callable[[Path], Callable[[], object]]:
    """--mode=import of a safetensors file holding `state` (None: not a safetensors file)."""

    def make(tmp_path: Path) -> Callable[[], object]:
        import safetensors.numpy

        path = tmp_path / "other.safetensors"
        if state is None:
            path.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{broken}")
        else:
            safetensors.numpy.save_file(state, str(path))
        return lambda: import_weights.import_weights(get_config("smoke"), tmp_path / "run", path)

    return make


CATALOGUE = {
    # annotations.pkl as a whole: always an error, whatever data.on_error says
    "pkl is not a pickle": Entry(
        folder(after=write("annotations.pkl", b"PK\x03\x04 a zip archive")), PKL + ": cannot be read as a pickle (…)"
    ),
    "pkl truncated": Entry(folder(after=truncate), PKL + ": cannot be read as a pickle (UnpicklingError: pickle data was truncated)"),
    "pkl of another structure": Entry(
        folder(after=write("annotations.pkl", {"skeletons": []})), PKL + ": expected a dict with an 'annotations' list (pyskl format)"
    ),
    "pkl without annotations": Entry(folder(after=write("annotations.pkl", {"annotations": []})), PKL + ": no annotations"),
    "no skeleton file": Entry(
        folder(after=lambda p: (p / "annotations.pkl").unlink()), PKL + ": file not found (nor the reference's whole_annotations.pkl)"
    ),
    "two skeleton files": Entry(
        folder(after=lambda p: shutil.copy(p / "annotations.pkl", p / "whole_annotations.pkl")),
        "{tmp}/bad: holds both annotations.pkl and whole_annotations.pkl; keep one of them",
    ),
    # one annotation: an error, or under data.on_error=skip its clip left out
    "annotation without frame_dir": Entry(
        folder(set_field("frame_dir", None)),
        PKL + ": annotation #0 is not a dict with a 'frame_dir' (a path whose last part names the clip)",
    ),
    "annotation without scores": Entry(
        folder(lambda a, c, r: a[0].pop("keypoint_score")), PKL + ", clip 'c1': annotation has no 'keypoint_score'"
    ),
    "keypoint of wrong rank": Entry(
        folder(set_field("keypoint", np.zeros((5, 2)))), PKL + ", clip 'c1': keypoint must be [M, T, 17, 2], got shape (5, 2)"
    ),
    "wrong joint count": Entry(
        folder(set_field("keypoint", np.zeros((1, 5, 13, 2)))), PKL + ", clip 'c1': expected 17 COCO joints, got 13"
    ),
    "scores of another shape": Entry(
        folder(set_field("keypoint_score", np.ones((1, 4, 17)))),
        PKL + ", clip 'c1': keypoint_score shape (1, 4, 17) does not match keypoint (1, 5, 17, 2)",
    ),
    "keypoint not numbers": Entry(
        folder(set_field("keypoint", "walks")), PKL + ", clip 'c1': keypoint is not an array of numbers (got str of dtype <U5)"
    ),
    "keypoint ragged": Entry(
        folder(set_field("keypoint", [[1.0, 2.0], [3.0]])), PKL + ", clip 'c1': keypoint is not a rectangular array of numbers"
    ),
    "no person": Entry(
        folder(lambda a, c, r: a[0].update(keypoint=np.zeros((0, 5, 17, 2)), keypoint_score=np.zeros((0, 5, 17)))),
        PKL + ", clip 'c1': no person (keypoint holds 0 persons)",
    ),
    "zero-length clip": Entry(
        folder(lambda a, c, r: a[0].update(keypoint=np.zeros((1, 0, 17, 2)), keypoint_score=np.zeros((1, 0, 17)))),
        PKL + ", clip 'c1': empty clip (0 frames)",
    ),
    "NaN coordinate": Entry(folder(coordinate(0, 2, 3, 0, np.nan)), PKL + ", clip 'c1': NaN or infinite keypoint coordinates or scores"),
    "infinite score": Entry(
        folder(lambda a, c, r: a[0]["keypoint_score"].__setitem__((0, 1, 1), np.inf)),
        PKL + ", clip 'c1': NaN or infinite keypoint coordinates or scores",
    ),
    "coordinate far outside the image": Entry(
        folder(coordinate(0, 2, 15, 1, 50_000.0)),
        PKL + ", clip 'c1': left_ankle at frame 2 has y = 5e+04 px, far outside the image (1920 x 1080; 1 joint(s) in all): "
        "check img_shape (height, width) and that keypoints are pixels or 0-1 per axis",
    ),
    "img_shape not (height, width)": Entry(
        folder(set_field("img_shape", (0, 1920))), PKL + ", clip 'c1': img_shape must be (height, width) in pixels, got (0, 1920)"
    ),
    "scores in percent": Entry(
        folder(lambda a, c, r: a[0].update(keypoint_score=a[0]["keypoint_score"] * 100)),
        PKL + ", clip 'c1': keypoint_score must be detector confidences in [0, 1], got … to … (percentages? divide them by 100)",
    ),
    "negative score": Entry(
        folder(lambda a, c, r: a[0]["keypoint_score"].__setitem__((0, 0, 0), -0.5)),
        PKL + ", clip 'c1': keypoint_score must be detector confidences in [0, 1], got -0.5 to …",
    ),
    "duplicate clip ids in the pkl": Entry(
        folder(lambda a, c, r: a.append(dict(a[0]))), PKL + ", clip 'c1': duplicate clip (frame_dir basename, 2 annotations)"
    ),
    "reference label outside 0-3": Entry(
        reference_file(label=-1), "{tmp}/bad/whole_annotations.pkl, clip 'c1': label -1 is not one of 0..3 (ASD, DHS, LCS_HipOA, normal)"
    ),
    # clips.csv as a whole
    "clips.csv not UTF-8": Entry(
        folder(after=write("clips.csv", "clip_id,patient_id,diagnosis,fps\nc1,p\xe9,ASD,30\nc2,p2,DHS,30\n".encode("latin-1"))),
        CSV + ": is not UTF-8 text (byte 0xe9 at offset 37); save it as UTF-8 ('CSV UTF-8' in Excel)",
    ),
    "clips.csv separated by ';'": Entry(
        folder(after=write("clips.csv", "clip_id;patient_id;diagnosis;fps\nc1;p1;ASD;30\nc2;p2;DHS;30\n")),
        CSV + ": missing column(s) clip_id, patient_id, diagnosis, fps; found ['clip_id;patient_id;diagnosis;fps']; "
        "the header is one cell: separate the columns with ',' (not ';' or tabs)",
    ),
    "clips.csv missing columns": Entry(
        folder(after=write("clips.csv", "clip_id,patient_id\nc1,p1\nc2,p2\n")),
        CSV + ": missing column(s) diagnosis, fps; found ['clip_id', 'patient_id']",
    ),
    "clips.csv without rows": Entry(folder(after=write("clips.csv", "clip_id,patient_id,diagnosis,fps\n")), CSV + ": no clips"),
    "clips.csv missing": Entry(
        folder(after=lambda p: (p / "clips.csv").unlink()),
        CSV + ": file not found; training needs each clip's diagnosis (clip_id, patient_id, diagnosis, fps)",
    ),
    # one row of clips.csv
    "clip missing from clips.csv": Entry(
        folder(lambda a, c, r: c.pop(1)), PKL + ", clip 'c2': clip is not in clips.csv: add its row, or remove it from annotations.pkl"
    ),
    "clips.csv row without a skeleton": Entry(
        folder(lambda a, c, r: c.append({**c[0], "clip_id": "c3"})), CSV + ", clip 'c3': 1 clip(s) have no skeleton in annotations.pkl"
    ),
    "duplicate clip ids in clips.csv": Entry(folder(lambda a, c, r: c.append(dict(c[0]))), CSV + ", clip 'c1': duplicate clip_id (2 rows)"),
    "row with more cells than the header": Entry(
        folder(after=write("clips.csv", "clip_id,patient_id,diagnosis,fps\nc1,Smith, J.,ASD,30\nc2,p2,DHS,30\n")),
        CSV + ", clip 'c1': row has 1 cell(s) more than the header (a ',' inside an unquoted cell?)",
    ),
    "empty diagnosis": Entry(folder(lambda a, c, r: c[0].update(diagnosis="")), CSV + ", clip 'c1': empty diagnosis"),
    "unknown diagnosis": Entry(
        training_table("3", diagnosis="Scoliosis"),
        CSV + ", clip 'c1': diagnosis 'Scoliosis' is not in the class mapping (known: …); "
        "set --config.data.classes to a preset (2, 3, 4) or 'diagnosis:class,...'",
    ),
    "fps not a number": Entry(folder(lambda a, c, r: c[0].update(fps="thirty")), CSV + ", clip 'c1': fps 'thirty' is not a number"),
    "fps zero": Entry(folder(lambda a, c, r: c[0].update(fps="0")), CSV + ", clip 'c1': fps must be positive, got '0'"),
    "reserved patient id": Entry(
        folder(lambda a, c, r: c[0].update(patient_id="p|1")), CSV + ", clip 'c1': patient_id 'p|1' contains '|', which is reserved"
    ),
    # doctor*.csv
    "unknown region": Entry(
        folder(lambda a, c, r: r["doctor1.csv"][0].update(attention="knee")), DOCTOR + f", clip 'c1': unknown region 'knee'; {REGIONS}"
    ),
    "rater names an unknown clip": Entry(
        folder(lambda a, c, r: r["doctor1.csv"][0].update(clip_id="zz")), DOCTOR + ", clip 'zz': clip is not in the skeleton file"
    ),
    # the clips that take part, and the folds
    "empty dataset after filtering": Entry(
        training_table("3", diagnosis="normal"),
        CSV + ": no clip takes part: data.classes excludes all its diagnoses (normal); "
        "set --config.data.classes to a mapping that includes them",
    ),
    "a class without clips": Entry(
        fold_of([("ASD", 2)] * 6, "2", num_folds=3),
        "class 1 (non-ASD) has no clips, so the model could not learn it: add its clips, or leave it out of --config.data.classes",
    ),
    "a fold whose training side lacks a class": Entry(
        fold_of([("ASD", 2)] * 10 + [("DHS", 2)] * 2, "2", num_folds=2, val_fraction=0.5, seed=2),
        "fold 0: no training clip is of class non-ASD, so the model could not learn it; "
        "add patients of the rarer classes, or change data.num_folds, data.val_fraction or data.split_seed",
    ),
    "too few patients for the validation share": Entry(
        fold_of([("ASD", 2)] * 6 + [("DHS", 2)] * 2, "2", num_folds=2),
        "fold 0: 4 patients lie outside the test fold, too few to hold out 1 in 5 for validation (data.val_fraction=0.2); "
        "add patients, raise data.val_fraction or lower data.num_folds",
    ),
    "too few clips of any class for the validation share": Entry(
        fold_of([("ASD", 1)] * 5 + [("DHS", 1)] * 5, "2", num_folds=2),
        "fold 0: the largest class has 3 clips outside the test fold, too few to hold out 1 in 5 for validation "
        "(data.val_fraction=0.2); add patients, raise data.val_fraction or lower data.num_folds",
    ),
    # videos (--mode=pose) and weights (--mode=import)
    "video that cannot be decoded": Entry(
        video("garbage"), "{tmp}/videos/x.mp4: cannot be opened as a video (corrupt, unsupported format, or no frames)"
    ),
    "video without a person": Entry(video("empty room"), "{tmp}/videos/x.mp4: no person detected in any of its 10 frames"),
    "weights of another network": Entry(
        weights({"conv1.weight": np.zeros((64, 3, 7, 7), np.float32), "fc.weight": np.zeros((1000, 512), np.float32)}),
        "{tmp}/other.safetensors do not fit the model:\n"
        "  not one of their keys is one of the model's: these are the weights of another network\n"
        "  missing (…): …\n  unexpected (2): conv1.weight, fc.weight\n"
        "Check that the config (model name, dim, depth, heads, classes) is the one the weights were trained with.",
    ),
    "weights file that is not one": Entry(weights(None), "{tmp}/other.safetensors: not a safetensors file (…)"),
}


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


def matches(expected: str, tmp_path: Path, text: str) -> bool:
    pattern = ".*".join(re.escape(part) for part in expected.replace("{tmp}", str(tmp_path)).split("…"))
    return re.fullmatch(pattern, text, re.DOTALL) is not None


@pytest.mark.parametrize("name", list(CATALOGUE))
def test_each_bad_input_is_refused_with_its_message_and_nothing_written(name, tmp_path):
    entry = CATALOGUE[name]
    refuse = entry.make(tmp_path)
    before = snapshot(tmp_path)
    with pytest.raises(UserError) as caught:
        refuse()
    assert matches(entry.message, tmp_path, str(caught.value)), str(caught.value)
    assert snapshot(tmp_path) == before


def test_the_catalogue_is_at_least_twenty_distinct_inputs():
    assert len(CATALOGUE) >= 20 and len({e.message for e in CATALOGUE.values()}) >= 20


def test_a_clip_shorter_than_the_window_is_padded_with_its_last_frame_and_counted(tmp_path):
    path = write_folder(tmp_path / "short", [annotation("c1", frames=5)], [CLIPS[0]])
    (record,) = read_user_folder(path)
    data = get_config("smoke").data  # window 32 at 30 fps
    (window,) = preprocess.clip_windows(record["pose"], record["fps"], target_fps=data.fps, window=data.window, stride=8, test_flip=False)
    np.testing.assert_array_equal(window[5:], np.repeat(window[4:5], data.window - 5, axis=0))
    table = splits.ClipTable.from_source([record], parse_label_map("3"))
    assert prepare.short_clips_text(table, data) == [
        "1 clip(s) are shorter than data.window=32 frames at 30 fps (c1): padded by repeating their last frame",
        "",
    ]

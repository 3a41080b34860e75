"""The bad-input catalogue (README "Bad input"): every malformed input a user can hand over is
refused with its one message (file, clip, problem) before anything is computed or written, or met
by a documented policy; `data.on_error=skip` leaves bad clips out and counts them; and the pkl and
clips.csv readers are fuzzed: any input gives a valid result or a UserDataError, nothing else."""

from __future__ import annotations

import csv
import dataclasses
import datetime
import pickle
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from test_errors import one_error_line
from test_launch import run_launch
from test_user_folder import annotation, write_folder

from asd_jax.base import preprocess
from asd_jax.base.errors import ConfigError, RunStateError, UserDataError, UserError
from asd_jax.base.labels import parse_label_map
from asd_jax.data import dataset, problems, splits
from asd_jax.data.problems import Problems
from asd_jax.data.skeletons import SKELETON_FILES
from asd_jax.data.user_folder import read_clips_table, read_user_folder
from asd_jax.modes import import_weights, prepare
from asd_jax.training import checkpointing
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


def mixed_folder(tmp_path: Path) -> Path:
    """c1 fine, c2 NaN, c3 not in clips.csv, c4 rated with an unknown region, c5 fine; c2 and c3
    are the only clips of their patients, c4 shares p1 with c1."""
    anns = [annotation(f"c{i}", seed=i) for i in range(1, 6)]
    anns[1]["keypoint"][0, 0, 0, 0] = np.nan
    clips = [{"clip_id": f"c{i}", "patient_id": p, "diagnosis": "ASD", "fps": 30} for i, p in [(1, "p1"), (2, "p2"), (4, "p1"), (5, "p5")]]
    raters = {"doctor1.csv": [{"clip_id": "c4", "attention": "knee"}, {"clip_id": "c1", "attention": "head"}]}
    return write_folder(tmp_path / "mixed", anns, clips, raters)


def test_skip_leaves_each_bad_clip_out_with_one_warning_and_keeps_the_rest(tmp_path, caplog):
    path, found = mixed_folder(tmp_path), Problems("skip")
    kept = list(read_user_folder(path, problems=found))
    assert [(r["clip_id"], r["patient_id"]) for r in kept] == [("c1", "p1"), ("c5", "p5")]  # p2's only clip gone: p2 is absent
    np.testing.assert_allclose(kept[0]["prior"], [1, 0, 0, 0, 0])  # c1's rating survives c4's bad row
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == [
        f"data.on_error=skip, clip left out: {path}/annotations.pkl, clip 'c3': clip is not in clips.csv: "
        "add its row, or remove it from annotations.pkl",
        f"data.on_error=skip, clip left out: {path}/doctor1.csv, clip 'c4': unknown region 'knee'; {REGIONS}",
        f"data.on_error=skip, clip left out: {path}/annotations.pkl, clip 'c2': NaN or infinite keypoint coordinates or scores",
    ]
    assert problems.summary_lines(found.skipped) == [
        "data.on_error=skip: 3 clip(s) left out:",
        "  1 clip left out, annotations.pkl: not in clips.csv (c3)",
        "  1 clip left out, doctor1.csv: unknown region (c4)",
        "  1 clip left out, annotations.pkl: NaN or infinite keypoint coordinates or scores (c2)",
    ]
    with pytest.raises(UserDataError, match="clip 'c3': clip is not in clips.csv"):  # the default stops at the first
        list(read_user_folder(path))


def test_skip_drops_every_copy_of_a_duplicate_and_ignores_rows_naming_no_clip(tmp_path):
    anns = [annotation("c1"), annotation("c1", seed=1), annotation("c2", seed=2), annotation("c3", seed=3)]
    clips = [{**CLIPS[0], "clip_id": c} for c in ("c1", "c2", "c2", "c3", "c9")]
    path = write_folder(tmp_path / "dup", anns, clips, {"doctor1.csv": [{"clip_id": "zz", "attention": "head"}]})
    found = Problems("skip")
    assert [r["clip_id"] for r in read_user_folder(path, problems=found)] == ["c3"]
    assert problems.summary_lines(found.skipped) == [
        "data.on_error=skip: 2 clip(s) left out, 2 entries naming no clip ignored:",
        "  1 clip left out, annotations.pkl: duplicate clip (c1)",
        "  1 clip left out, clips.csv: duplicate clip_id (c2)",
        "  1 entry ignored, clips.csv: no skeleton in annotations.pkl (c9)",
        "  1 entry ignored, doctor1.csv: names no clip (zz)",
    ]


@pytest.mark.parametrize(
    "break_it, message",
    [
        (write("annotations.pkl", b"not a pickle"), "annotations.pkl: cannot be read as a pickle"),
        (write("clips.csv", b"clip_id,patient_id,diagnosis,fps\nc1,p\xe9,ASD,30\n"), "clips.csv: is not UTF-8 text"),
        (write("clips.csv", "clip_id,fps\nc1,30\n"), r"clips.csv: missing column\(s\) patient_id, diagnosis"),
        (
            write("annotations.pkl", {"annotations": [annotation("c1") | {"keypoint": "x"}]}),
            r"mixed: no clip left: data.on_error=skip: 1 clip\(s\) left out, 4 entries naming no clip ignored \(see the warnings",
        ),
    ],
)
def test_skip_still_stops_at_a_bad_file_or_an_empty_result(tmp_path, break_it, message):
    path = mixed_folder(tmp_path)
    break_it(path)
    with pytest.raises(UserDataError, match=message):
        list(read_user_folder(path, problems=Problems("skip")))


def test_prepare_counts_the_skips_and_a_strict_build_writes_nothing(tiny_cohort, tmp_path):
    path = shutil.copytree(tiny_cohort, tmp_path / "clinic")
    data = pickle.loads((path / "annotations.pkl").read_bytes())
    data["annotations"][0]["keypoint_score"] = data["annotations"][0]["keypoint_score"] * 100
    (path / "annotations.pkl").write_bytes(pickle.dumps(data))
    with (path / "clips.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    rows[3]["diagnosis"] = "Scoliosis"
    write_folder(path, data["annotations"], rows)
    config = get_config("smoke")
    config.data.source, config.data.manual_dir, config.data.data_dir = "files", str(path), str(tmp_path / "tfds")
    with pytest.raises(UserDataError, match="keypoint_score must be detector confidences in"):
        prepare.summary_text(config, tmp_path / "run")
    assert not list((tmp_path / "tfds").rglob("*.array_record*"))  # the refused build left no dataset behind
    config.data.on_error = "skip"
    assert dataset.builder_config(config.data).name.endswith("_skip")  # never the strict build's files
    for _ in range(2):  # built, then read back: the skips come from the dataset's metadata
        text = prepare.summary_text(config, tmp_path / "run")
        assert "data.on_error=skip: 2 clip(s) left out:\n" in text
        assert (
            f"  1 clip left out, annotations.pkl: keypoint_score outside [0, 1] ({Path(data['annotations'][0]['frame_dir']).name})\n"
            in text
        )
        assert f"  1 clip left out, clips.csv: diagnosis not in data.classes ({rows[3]['clip_id']})\n" in text
    assert len(dataset.load_source(config.data)[0]) == len(rows) - 1  # the unknown diagnosis is left out of the table only


def test_on_error_is_checked_and_may_not_change_on_resume(tmp_path):
    with pytest.raises(ConfigError, match="data.on_error='ignore': expected 'raise'"):
        Problems("ignore")
    config = get_config("smoke")
    checkpointing.save_run_config(tmp_path, config)
    (tmp_path / checkpointing.CHECKPOINT_DIR / "15").mkdir(parents=True)
    config.data.on_error = "skip"
    with pytest.raises(RunStateError, match="data.on_error 'raise' -> 'skip'"):
        checkpointing.check_resumable(tmp_path, config)


def test_launch_reports_a_bad_folder_in_one_line_and_skips_with_a_summary(tiny_cohort, tmp_path):
    """End to end through launch.py: one `error:` line, no traceback, no dataset; then the same
    folder under data.on_error=skip prepares, warning about the clip and counting it."""
    path = shutil.copytree(tiny_cohort, tmp_path / "clinic")
    text = (path / "clips.csv").read_text()
    (path / "clips.csv").write_bytes(text.replace("P001", "P\xe9001", 1).encode("latin-1"))
    files = ["--config.data.source=files", f"--config.data.manual_dir={path}"]
    refused = run_launch(tmp_path / "run", tmp_path / "tfds", *files, mode="prepare")
    offset = text.index("P001")
    assert (
        one_error_line(refused)
        == f"error: {path}/clips.csv: is not UTF-8 text (byte 0xe9 at offset {offset + 1}); save it as UTF-8 ('CSV UTF-8' in Excel)"
    )
    assert not list((tmp_path / "tfds").rglob("*.array_record*"))  # TFDS made its folders, but no dataset

    (path / "clips.csv").write_text(text.replace(",30.0", ",zero", 1))  # the first clip's fps
    first = text.splitlines()[1].split(",")[0]
    done = run_launch(tmp_path / "run", tmp_path / "tfds", *files, "--config.data.on_error=skip", mode="prepare")
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"clip left out: {path}/clips.csv, clip '{first}': fps 'zero' is not a number" in done.stderr
    assert f"data.on_error=skip: 1 clip(s) left out:\n  1 clip left out, clips.csv: fps is not a number ({first})" in done.stdout


def test_launch_reports_an_empty_task_in_one_line(tiny_cohort, tmp_path):
    classes = "--config.data.classes=ASD:-,DHS:-,LCS:-,HipOA:-,normal:-,PD:a,stroke:b"
    files = ["--config.data.source=files", f"--config.data.manual_dir={tiny_cohort}", classes]
    assert one_error_line(run_launch(tmp_path / "run", tmp_path / "tfds", *files, mode="prepare")) == (
        f"error: {tiny_cohort}/clips.csv: no clip takes part: data.classes excludes all its diagnoses (ASD, DHS, HipOA, LCS, normal); "
        "set --config.data.classes to a mapping that includes them"
    )


# Fuzzing: whatever the bytes or the structure, a reader returns a valid result or a UserDataError.
# Inputs are mostly nearly right (so that the checks deep inside are reached) and now and then anything.
FUZZ = settings(  # about 5 s for all four; generation may be slow on a busy machine, so no health check on it
    max_examples=150,
    deadline=datetime.timedelta(seconds=5),
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
LEAVES = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6) | st.binary(max_size=6)
ANYTHING = st.recursive(
    LEAVES, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4), max_leaves=12
)
RARE = 40  # odds against one field of an annotation going wrong
ODD_ARRAYS = hnp.arrays(hnp.scalar_dtypes() | hnp.unicode_string_dtypes(), hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=3))


def mostly(good: st.SearchStrategy, bad: st.SearchStrategy, odds: int = 10) -> st.SearchStrategy:
    """`bad` once in `odds` draws, else `good` (st.one_of would draw them evenly)."""
    return st.integers(1, odds).flatmap(lambda i: bad if i == 1 else good)


@st.composite
def fuzzed_annotations(draw: st.DrawFn) -> dict:
    """A pyskl annotation: arrays of about the right shape with sensible values, now and then (one
    field in RARE) odd values, anything in a field, or a field left out; a folder has a few."""
    persons, frames = draw(mostly(st.integers(1, 2), st.just(0), RARE)), draw(mostly(st.integers(1, 5), st.just(0), RARE))
    shape = (persons, frames, draw(mostly(st.just(17), st.sampled_from([13, 18]), RARE)))
    floats, odd = st.sampled_from([np.float32, np.float64]), st.floats(width=32) | st.sampled_from([1e30, -1e6])
    keypoint, score = (
        hnp.arrays(floats, (*shape, 2), elements=st.floats(-100, 2000, width=32)),
        hnp.arrays(floats, shape, elements=st.floats(0, 1, width=32)),
    )
    ann = {
        "frame_dir": draw(mostly(st.sampled_from(["v/c1", "v/c2", "v/c3", "v/c4", "/d/ASD/c5.mp4"]), ANYTHING, RARE)),
        "keypoint": draw(mostly(keypoint, hnp.arrays(floats, (*shape, 2), elements=odd) | ODD_ARRAYS | ANYTHING, RARE)),
        "keypoint_score": draw(mostly(score, hnp.arrays(floats, shape, elements=odd) | ODD_ARRAYS | ANYTHING, RARE)),
        "img_shape": draw(mostly(st.tuples(st.integers(100, 2000), st.integers(100, 2000)), ODD_ARRAYS | ANYTHING, RARE)),
        "label": draw(mostly(st.integers(0, 3), ANYTHING, RARE)),  # read only from the reference's whole_annotations.pkl
    }
    ann.pop(draw(mostly(st.just(""), st.sampled_from(sorted(ann)), RARE)), None)
    return ann


def check_records(path: Path, on_error: str) -> None:
    """A valid folder's records (finite poses of 17 joints with scores in [0, 1]), or a UserDataError."""
    try:
        found = list(read_user_folder(path, need_diagnosis=False, problems=Problems(on_error)))
    except UserDataError:
        return
    for record in found:
        pose = record["pose"]
        assert pose.ndim == 3 and pose.shape[1:] == (17, 3) and len(pose) > 0 and np.isfinite(pose).all()
        assert 0 <= pose[..., 2].min() and pose[..., 2].max() <= 1


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory) -> Path:
    """One folder the fuzz examples overwrite (hypothesis runs many examples per test call)."""
    return tmp_path_factory.mktemp("fuzz")


def write_skeletons(folder: Path, name: str, content: bytes) -> None:
    """`content` as the folder's only skeleton file, ours or the reference's."""
    for other in SKELETON_FILES:
        (folder / other).unlink(missing_ok=True)
    (folder / name).write_bytes(content)


@FUZZ
@given(content=st.binary(max_size=400), on_error=st.sampled_from(problems.POLICIES))
def test_fuzz_pkl_bytes(fuzz_dir, content, on_error):
    write_skeletons(fuzz_dir, "annotations.pkl", content)
    check_records(fuzz_dir, on_error)


@FUZZ
@given(
    name=st.sampled_from(SKELETON_FILES),
    top=mostly(st.sampled_from(["dict", "list"]), st.just("anything")),
    anns=st.lists(fuzzed_annotations(), max_size=4),
    other=ANYTHING,
    on_error=st.sampled_from(problems.POLICIES),
)
def test_fuzz_pkl_structures(fuzz_dir, name, top, anns, other, on_error):
    content = {"annotations": anns, "split": other} if top == "dict" else anns if top == "list" else other
    write_skeletons(fuzz_dir, name, pickle.dumps(content))
    check_records(fuzz_dir, on_error)


def check_table(path: Path, need_diagnosis: bool, on_error: str) -> None:
    """A valid clips table (ids, patients and, when needed, diagnoses non-empty; fps positive), or a UserDataError."""
    try:
        table = read_clips_table(path, need_diagnosis=need_diagnosis, problems=Problems(on_error))
    except UserDataError:
        return
    for clip_id, row in table.items():
        assert clip_id and row["patient_id"] and (row["diagnosis"] or not need_diagnosis)
        assert np.isfinite(row["fps"]) and row["fps"] > 0


@FUZZ
@given(content=st.binary(max_size=400), need_diagnosis=st.booleans(), on_error=st.sampled_from(problems.POLICIES))
def test_fuzz_clips_csv_bytes(fuzz_dir, content, need_diagnosis, on_error):
    (fuzz_dir / "clips.csv").write_bytes(content)
    check_table(fuzz_dir / "clips.csv", need_diagnosis, on_error)


COLUMNS = ["clip_id", "patient_id", "diagnosis", "fps"]
CELLS = {
    "clip_id": st.sampled_from(["c1", "c2", "c3", " c1 "]),
    "patient_id": st.sampled_from(["p1", "p2", "p|2"]),
    "diagnosis": st.sampled_from(["ASD", "DHS", "normal"]),
    "fps": st.sampled_from(["30", "25.0", "0", "-1", "nan", "inf", "thirty"]),
}
ANY_CELL = st.sampled_from(["", '"a,b"', '"', "a\nb", ";"]) | st.text(max_size=5)


@st.composite
def fuzzed_clips_csv(draw: st.DrawFn) -> bytes:
    """clips.csv bytes: mostly its columns in any order and sensible cells, now and then other
    columns, rows of the wrong width, odd cells, another encoding."""
    header = draw(mostly(st.permutations(COLUMNS + ["note"]), st.lists(st.sampled_from(COLUMNS) | st.text(max_size=5), max_size=6)))
    lines = [",".join(header)]
    for _ in range(draw(st.integers(0, 5))):
        width = len(header) + draw(mostly(st.just(0), st.integers(-2, 2)))
        cells = [draw(mostly(CELLS.get(header[i] if i < len(header) else "", ANY_CELL), ANY_CELL)) for i in range(max(width, 0))]
        lines.append(",".join(cells))  # unquoted on purpose: a ',' in a cell shifts the rest
    encoding = draw(mostly(st.just("utf-8"), st.sampled_from(["utf-8-sig", "latin-1", "utf-16", "cp1252"])))
    return "\n".join(lines).encode(encoding, errors="replace")


@FUZZ
@given(content=fuzzed_clips_csv(), need_diagnosis=st.booleans(), on_error=st.sampled_from(problems.POLICIES))
def test_fuzz_clips_csv_tables(fuzz_dir, content, need_diagnosis, on_error):
    (fuzz_dir / "clips.csv").write_bytes(content)
    check_table(fuzz_dir / "clips.csv", need_diagnosis, on_error)

"""data.on_error=skip (README "Bad input"): a bad clip is left out with one warning, counted in
--mode=prepare's summary, the rest still loads; a bad file or an empty result still stops; the
policy may not change on resume. And launch.py end to end: one `error:` line, no traceback."""

from __future__ import annotations

import csv
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
from test_bad_input import CLIPS, REGIONS, write
from test_errors import one_error_line
from test_launch import run_launch
from test_user_folder import annotation, write_folder

from asd_jax.base.errors import ConfigError, RunStateError, UserDataError
from asd_jax.data import dataset, problems
from asd_jax.data.problems import Problems
from asd_jax.data.user_folder import read_user_folder
from asd_jax.modes import prepare
from asd_jax.training import checkpointing
from configs.crossattn import get_config


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

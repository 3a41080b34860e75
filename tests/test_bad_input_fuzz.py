"""Fuzzing of the folder readers (README "Bad input"): whatever the bytes or the structure of
annotations.pkl and clips.csv, a reader returns a valid result or a UserDataError, nothing else."""

from __future__ import annotations

import datetime
import pickle
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from asd_jax.base.errors import UserDataError
from asd_jax.data import problems
from asd_jax.data.problems import Problems
from asd_jax.data.skeletons import SKELETON_FILES
from asd_jax.data.user_folder import read_clips_table, read_user_folder

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

"""write_atomically / atomic_path: a file is replaced whole or left as it was."""

from __future__ import annotations

import pytest

from asd_jax.base.errors import UserError
from asd_jax.base.files import atomic_path, check_output_folder, write_atomically


def test_write_atomically_replaces_text_and_bytes(tmp_path):
    path = tmp_path / "results.json"
    write_atomically(path, "{}")
    write_atomically(path, b'{"a": 1}')
    assert path.read_bytes() == b'{"a": 1}'
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]  # no temporary left behind


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="disk full"), atomic_path(path) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("disk full")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]


def test_the_temporary_keeps_the_suffix_for_writers_that_infer_the_format(tmp_path):
    with atomic_path(tmp_path / "roc_patient.png") as tmp:
        assert tmp.suffix == ".png" and tmp.parent == tmp_path
        tmp.write_bytes(b"png")
    assert (tmp_path / "roc_patient.png").read_bytes() == b"png"


def test_an_output_folder_may_be_missing_or_a_folder_but_not_a_file(tmp_path):
    check_output_folder(tmp_path / "new")
    check_output_folder(tmp_path)
    (tmp_path / "report.csv").write_text("")
    with pytest.raises(UserError, match=rf"^--out {tmp_path / 'report.csv'} is a file; give a folder \(it is created if missing\)$"):
        check_output_folder(tmp_path / "report.csv")

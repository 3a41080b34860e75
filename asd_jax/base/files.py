"""Files written whole or not at all: the one home of "temporary file beside it, then os.replace".

A crash, a kill or a full disk mid-write leaves the previous file (or none), never half of one that
a rerun, a reader or `--mode=eval` would then trust.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from asd_jax.base.errors import UserError


@contextlib.contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """A temporary path beside `path` (same suffix, so writers that infer the format still do),
    renamed over `path` when the block ends without an error, removed otherwise."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")  # concurrent writers do not share one
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def check_output_folder(out: Path) -> None:
    """`--out` must be a folder or not exist yet: a file there would fail only once all the work
    that fills it is done."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give a folder (it is created if missing)")


def write_atomically(path: Path | str, data: bytes | str) -> None:
    """Writes `data` (text as UTF-8) to `path` through `atomic_path`."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data.encode() if isinstance(data, str) else data)

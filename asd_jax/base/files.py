"""Files written whole or not at all: the one home of "temporary file beside it, then os.replace".

A crash, a kill or a full disk mid-write leaves the previous file (or none), never half of one that
a rerun, a reader or `--mode=eval` would then trust.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path


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


def write_atomically(path: Path | str, data: bytes | str) -> None:
    """Writes `data` (text as UTF-8) to `path` through `atomic_path`."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data.encode() if isinstance(data, str) else data)

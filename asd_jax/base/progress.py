"""Progress bars for long work, made by one function so that `TQDM_DISABLE=1` (and tqdm's other
`TQDM_*` settings) reach every bar, e.g. to keep them out of a log: tqdm applies those settings
only to the options a call leaves out, so a call must not pass `disable` unless it hides its bar."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tqdm import tqdm


def progress_bar(iterable: Iterable[Any] | None = None, *, hidden: bool = False, **options: Any) -> tqdm:
    """`tqdm(iterable, **options)`, always hidden where `hidden` (another process's copy of the
    same work, or work too short to watch); otherwise the environment decides."""
    if hidden:
        options["disable"] = True
    return tqdm(iterable, **options)

"""What `data.on_error` does with a problem of one clip: stop ('raise', the default) or leave the
clip out ('skip').

A problem of one clip (its arrays, its clips.csv row, its diagnosis, a rater's row about it) goes
through `Problems.clip`; a row that names no clip of the data (a clips.csv row without a skeleton,
a rater's row naming an unknown clip) through `Problems.row`. A problem of a whole file (not a
pickle, not UTF-8, missing columns) is raised whatever the policy: nothing in that file can be
trusted. Each skip is one warning naming the file, the clip and the problem, and one record; the
records travel with the built dataset (its TFDS metadata), so `--mode=prepare` and every later
run can say what was left out without reading the folder again.
"""

from __future__ import annotations

from collections import defaultdict

from absl import logging

from asd_jax.base.errors import ConfigError, UserDataError

POLICIES = ("raise", "skip")
CLIP, ROW = "clip left out", "entry ignored"
SHOWN = 5  # clip ids named per problem in a summary


class Problems:
    """The skips of one read; with 'raise', the first problem is raised instead."""

    def __init__(self, on_error: str = "raise"):
        if on_error not in POLICIES:
            raise ConfigError(f"data.on_error={on_error!r}: expected 'raise' (stop at the first bad clip) or 'skip' (leave bad clips out)")
        self.on_error = on_error
        self.skipped: list[dict[str, str]] = []
        self._left_out: set[str] = set()

    def clip(self, error: UserDataError) -> None:
        """The clip `error` names is left out of the data (or `error` is raised)."""
        self._skip(error, CLIP)

    def row(self, error: UserDataError) -> None:
        """An entry naming no clip of the data (a row, an annotation) is ignored (or `error` is raised)."""
        self._skip(error, ROW)

    def _skip(self, error: UserDataError, action: str) -> None:
        if self.on_error == "raise":
            raise error
        if action == CLIP and error.clip_id in self._left_out:  # a clip is left out once, for its first problem
            return
        logging.warning("data.on_error=skip, %s: %s", action, error)
        self.skipped.append({"action": action, "file": error.path.name, "clip": error.clip_id or "", "problem": error.kind})
        if action == CLIP and error.clip_id:
            self._left_out.add(error.clip_id)

    def left_out(self) -> set[str]:
        """The ids of the clips left out (a copy)."""
        return set(self._left_out)


def summary_lines(skipped: list[dict[str, str]]) -> list[str]:
    """'N clip(s) left out ...' and one line per (file, problem) with its count and first clips."""
    if not skipped:
        return []
    groups: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for s in skipped:
        groups[(s["action"], s["file"], s["problem"])].append(s["clip"])
    lines = [f"data.on_error=skip: {counts(skipped)}:"]
    for (action, file, problem), ids in sorted(groups.items(), key=lambda item: -len(item[1])):
        named = [i for i in ids if i]
        shown = f" ({', '.join(named[:SHOWN])}{', ...' if len(named) > SHOWN else ''})" if named else ""
        lines.append(f"  {len(ids)} {action}, {file}: {problem}{shown}")
    return lines


def counts(skipped: list[dict[str, str]]) -> str:
    """'N clip(s) left out' and, if any, 'M entries naming no clip ignored'."""
    clips = sum(s["action"] == CLIP for s in skipped)
    others = len(skipped) - clips
    return f"{clips} clip(s) left out" + (f", {others} entries naming no clip ignored" if others else "")

"""Errors a user can fix, in one family, so `launch.py` prints any of them as one line, and the one
way every command line writes that line.

Everything else (a bug, a library failure) stays a traceback: it is ours to fix, not the user's.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn


def exit_with_error(message: str) -> NoReturn:
    """Exits 1 after the `error:` line, written whole in one call: sys.exit(message) writes the text
    and its newline apart, and threads of a failed storage read (tensorstore) that print their own
    tracebacks while the process exits could land on the error line between the two."""
    sys.stderr.write(f"error: {message}\n")
    sys.stderr.flush()
    raise SystemExit(1)


class UserError(Exception):
    """Bad input, config or weights: the message says what is wrong and what to change."""


class ConfigError(UserError, ValueError):
    """A config value that cannot work (unknown key, inconsistent settings, out of range)."""


class UserDataError(UserError, ValueError):
    """Malformed user data; the message names the file, the clip and the problem.

    `kind` is the problem without its particulars (values, shapes), so that the clips a lenient
    run skipped (`data.on_error=skip`) can be counted by problem; it defaults to `problem`.
    """

    def __init__(self, path: Path | str, problem: str, clip_id: str | None = None, *, kind: str = ""):
        self.path, self.problem, self.clip_id, self.kind = Path(path), problem, clip_id, kind or problem
        where = f"{path}" + (f", clip {clip_id!r}" if clip_id is not None else "")
        super().__init__(f"{where}: {problem}")


class LeakageError(UserError, ValueError):
    """A patient is on two sides of a split."""


class RunStateError(UserError):
    """A workdir that cannot serve the mode asked for (no checkpoint yet, already trained...)."""


class WeightsError(UserError, ValueError):
    """A weights file that cannot be read, or that does not fit the model."""


class ConversionError(WeightsError):
    """Weights that do not fit the model; the message lists every offending key, and says so when
    not one key matches (the weights of another network)."""

    def __init__(self, what: str, missing: list[str], unexpected: list[str], misshapen: list[str], *, matched: int | None = None):
        self.missing, self.unexpected, self.misshapen = missing, unexpected, misshapen
        lines = [f"{what} do not fit the model:"]
        if matched == 0:
            lines.append("  not one of their keys is one of the model's: these are the weights of another network")
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("misshapen", misshapen)):
            if keys:
                lines.append(f"  {label} ({len(keys)}): " + ", ".join(keys))
        lines.append("Check that the config (model name, dim, depth, heads, classes) is the one the weights were trained with.")
        super().__init__("\n".join(lines))


class ParityError(UserError, RuntimeError):
    """The PyTorch twin does not reproduce the JAX model; nothing was exported."""


class NonFiniteLossError(UserError, RuntimeError):
    """Training produced a NaN/inf loss; the last good checkpoint is kept."""


class Preempted(Exception):
    """SIGTERM (a preemption notice) stopped training after a step, whose checkpoint was saved.

    Not a UserError: nothing is wrong. launch.py prints it as one `stopped:` line and exits with
    EXIT_CODE (128 + SIGTERM, what a shell reports for a process SIGTERM ended), non-zero so that a
    scheduler restarts the job and `train && eval` does not go on with an unfinished run.
    """

    EXIT_CODE = 143

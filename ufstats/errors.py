"""Exception hierarchy of ufstats.

Every error that ufstats raises is a `StatsManagerError`, so a caller that
caught the v1 exception keeps working. Errors about bad arguments or bad
input files are also `ValueError`s.
"""

from __future__ import annotations

from pathlib import Path


class StatsManagerError(Exception):
    """Base class of every error raised by ufstats."""


class FileLockError(StatsManagerError):
    """A shard lock could not be acquired within the lock timeout."""

    def __init__(self, lock_file: Path | str, waited: float) -> None:
        self.lock_file = Path(lock_file)
        self.waited = waited
        super().__init__(
            f"Timed out after {waited:.1f} s waiting for lock file {self.lock_file}. "
            "Another process on this PC is writing the same shard; "
            "retry, or raise lock_timeout if this PC is very slow."
        )


class InvalidRecordError(StatsManagerError, ValueError):
    """An argument of `record_*` is invalid; nothing was written."""

    def __init__(self, argument: str, value: object, reason: str) -> None:
        self.argument = argument
        self.value = value
        super().__init__(f"Invalid {_shorten(argument)}={_shown(value)}: {reason}")


def _shorten(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _shown(value: object) -> str:
    """Return a short repr, also for values nested too deep for repr()."""
    try:
        return _shorten(repr(value), 80)
    except RecursionError:
        return f"<deeply nested {type(value).__name__}>"


class InvalidArgumentError(StatsManagerError, ValueError):
    """A configuration argument (base path, workstation id, limit) is invalid."""


class StatsFolderError(StatsManagerError):
    """The statistics folder is missing or cannot be read or written."""


class WorkstationConflictError(StatsManagerError):
    """Two machines are appending to the same shard."""


class LegacyImportError(StatsManagerError, ValueError):
    """A file given to the legacy import is not a usable v1 statistics file."""


class ViewOwnershipError(StatsManagerError):
    """Merge refused to replace a view that ufstats did not write."""


class OutputFileError(StatsManagerError):
    """A report or export file cannot be written."""

"""ufstats: warehouse statistics in per-workstation shards, with a merge reader.

v1 callers change only their import line::

    from ufstats import StatsManager, StatsManagerError, FileLockError
"""

from typing import TYPE_CHECKING

from .errors import (
    FileLockError,
    InvalidArgumentError,
    InvalidRecordError,
    LegacyImportError,
    StatsFolderError,
    StatsManagerError,
    ViewOwnershipError,
    WorkstationConflictError,
)

if TYPE_CHECKING:
    from .manager import StatsManager
    from .reader import StatsReader

__version__ = "0.1.0"

__all__ = [
    "FileLockError",
    "InvalidArgumentError",
    "InvalidRecordError",
    "LegacyImportError",
    "StatsFolderError",
    "StatsManager",
    "StatsManagerError",
    "StatsReader",
    "ViewOwnershipError",
    "WorkstationConflictError",
    "__version__",
]


def __getattr__(name: str) -> object:
    # StatsManager and StatsReader are imported on first use, so that a process
    # that needs only a submodule (a merge process, say) skips their imports.
    if name == "StatsManager":
        from .manager import StatsManager

        return StatsManager
    if name == "StatsReader":
        from .reader import StatsReader

        return StatsReader
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

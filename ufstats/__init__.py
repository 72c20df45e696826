"""ufstats: warehouse statistics in per-workstation shards, with a merge reader.

v1 callers change only their import line::

    from ufstats import StatsManager, StatsManagerError, FileLockError
"""

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

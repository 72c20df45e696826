"""Replacing a file so that readers see the old or the new bytes, never a mix."""

from __future__ import annotations

import os
import time
from pathlib import Path

from . import _platform

# A briefly missing file is expected while some SMB clients rename: they
# delete the target first, then rename the new file into place. The delay
# doubles from MISSING_FILE_DELAY: 0.01 s to 0.16 s, 0.31 s in all.
MISSING_FILE_RETRIES = 6
MISSING_FILE_DELAY = 0.01


def write_atomically(target: Path, data: bytes) -> None:
    """Write `data` to a temporary file beside `target`, flush it, then rename it over."""
    temporary = target.with_name(f".{target.name}.{os.getpid()}.{time.monotonic_ns()}.tmp")
    try:
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        _platform.replace_file(temporary, target)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
    _platform.fsync_directory(target.parent)


def read_bytes_retrying(path: Path) -> bytes:
    """Read a file that another process replaces by rename, retrying if it is briefly missing.

    A file that does not exist at all costs the whole retry time (0.31 s)
    before FileNotFoundError is raised.

    Raises:
        FileNotFoundError: the file was missing at every attempt.
        OSError: any other read error, at once.
    """
    for attempt in range(MISSING_FILE_RETRIES):
        try:
            return path.read_bytes()
        except FileNotFoundError:
            if attempt == MISSING_FILE_RETRIES - 1:
                raise
            time.sleep(MISSING_FILE_DELAY * 2**attempt)
    raise AssertionError("unreachable")

"""Checks of the file that `ufstats export` and `ufstats report` write.

Both commands write a temporary file beside the target and rename it over
the target. A rename replaces whatever entry has that name, so a device, a
pipe or a folder would be replaced by a regular file, and a symbolic link
would become a regular file too. `output_target` rejects the first three
and follows a link to the file it points to.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from .errors import OutputFileError


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def output_target(output: Path, option: str) -> Path:
    """Return the path to write for `output`: the path itself, or a link's final target.

    `option` names the argument in messages (for example "--output").

    Raises:
        OutputFileError: `output` is "-" (standard output is not supported),
            or it (or its link target) exists and is not a regular file.
    """
    if os.fspath(output) == "-":
        raise OutputFileError(
            f"Invalid {option} '-': writing to standard output is not supported; give a file name"
        )
    target = Path(os.path.realpath(output)) if output.is_symlink() else output
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        return target
    except OSError as exc:
        raise OutputFileError(f"Cannot use {option} {output}: {exc.strerror or exc}") from exc
    if not stat.S_ISREG(mode):
        described = output if target == output else f"{output} (a link to {target})"
        raise OutputFileError(
            f"Invalid {option} {described}: it exists and is {_kind(mode)}, which ufstats will not replace; "
            "give the path of a new or regular file"
        )
    return target

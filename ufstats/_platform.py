"""Everything that differs between Windows and POSIX systems.

Other modules call these helpers instead of testing `os.name` themselves, so
the Windows-only paths (sharing violations, machine GUID, local app data) can
be exercised on Linux by patching this module.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import re
import socket
import time
import uuid
from pathlib import Path
from typing import BinaryIO

from .errors import StatsFolderError

if os.name != "nt":
    import fcntl

log = logging.getLogger("ufstats")

IS_WINDOWS = os.name == "nt"

# Windows system error codes that mean "another process has this file open".
# They clear once that process closes the file, so they are worth retrying.
WINERROR_ACCESS_DENIED = 5
WINERROR_SHARING_VIOLATION = 32
WINERROR_LOCK_VIOLATION = 33
_TRANSIENT_WINERRORS = {WINERROR_ACCESS_DENIED, WINERROR_SHARING_VIOLATION, WINERROR_LOCK_VIOLATION}

# POSIX errno values that mean "try again shortly". EBUSY is what some SMB
# clients return for a rename while anyone holds the target open.
_TRANSIENT_ERRNOS = {errno.EBUSY, errno.EAGAIN, errno.EINTR, errno.ETXTBSY}

_WINDOWS_RESERVED_NAMES = {
    "CON", "PRN", "AUX", "NUL",
    *(f"COM{i}" for i in range(1, 10)),
    *(f"LPT{i}" for i in range(1, 10)),
}
_WORKSTATION_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_UNSAFE_CHARACTERS = re.compile(r"[^A-Za-z0-9._-]+")


def is_transient_error(exc: OSError) -> bool:
    """Return True for an error that usually clears within a second.

    Sharing and lock violations on Windows, and EBUSY/EAGAIN on SMB mounts,
    come from another process holding the file open for a moment.
    """
    winerror = getattr(exc, "winerror", None)
    if winerror is not None:
        return winerror in _TRANSIENT_WINERRORS
    return exc.errno in _TRANSIENT_ERRNOS


def workstation_problem(name: str) -> str | None:
    """Return why `name` cannot be a workstation id, or None if it can.

    A workstation id becomes a file name on Windows and POSIX, so it must
    stay inside the shards folder and be valid on both.
    """
    if not isinstance(name, str):
        return f"must be a string, not {type(name).__name__}"
    if not _WORKSTATION_PATTERN.fullmatch(name):
        return (
            "must be 1-64 characters of ASCII letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    if name.endswith("."):
        return "must not end with '.' (Windows drops it from file names)"
    if name.split(".")[0].upper() in _WINDOWS_RESERVED_NAMES:
        return "is a reserved device name on Windows"
    return None


def safe_workstation_name(raw: str) -> str:
    """Turn a machine name into a valid workstation id."""
    name = _UNSAFE_CHARACTERS.sub("-", raw.strip()).strip("-.")[:64].rstrip(".")
    if not name or not name[0].isalnum():
        name = ("ws-" + name)[:64]
    if workstation_problem(name) is not None:
        name = "ws-" + hashlib.sha256(raw.encode("utf-8")).hexdigest()[:12]
    return name


def machine_name() -> str:
    """Return this computer's network name."""
    if IS_WINDOWS and os.environ.get("COMPUTERNAME"):
        return os.environ["COMPUTERNAME"]
    return socket.gethostname() or "unknown"


def _windows_machine_guid() -> str | None:
    try:
        import winreg  # type: ignore[import-not-found]

        key = winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, r"SOFTWARE\Microsoft\Cryptography")
        value, _ = winreg.QueryValueEx(key, "MachineGuid")
        return str(value)
    except (ImportError, OSError):
        # ImportError: no winreg (not Windows); OSError: the value is missing
        # or unreadable. The machine name is used in place of the installation id.
        return None


def _posix_machine_id() -> str | None:
    for candidate in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        try:
            text = Path(candidate).read_text(encoding="ascii").strip()
        except OSError:
            continue
        if text:
            return text
    return None


def machine_id() -> str:
    """Return a stable id of this physical machine, 16 hex digits.

    It combines the OS installation id with the network card address, so two
    PCs cloned from one disk image still differ. `UFSTATS_MACHINE_ID`
    overrides it (tests use that to play several machines).

    NOTE: `uuid.getnode()` may pick another adapter when one is added (a
    laptop on a dock), which changes the id and makes the writer report a
    workstation conflict; such PCs should set `UFSTATS_MACHINE_ID`.
    """
    override = os.environ.get("UFSTATS_MACHINE_ID")
    if override:
        return override
    install_id = _windows_machine_guid() if IS_WINDOWS else _posix_machine_id()
    node = uuid.getnode()
    # uuid.getnode() sets the multicast bit when it had to invent a random
    # address; such a value changes per process and is useless here.
    hardware = "" if node & (1 << 40) else f"{node:012x}"
    source = f"{install_id or machine_name()}|{hardware}"
    return hashlib.sha256(source.encode("utf-8")).hexdigest()[:16]


def local_state_dir() -> Path:
    """Return the per-user local folder for the spool and lock files.

    `%LOCALAPPDATA%\\ufstats` on Windows, `$XDG_STATE_HOME/ufstats` (by
    default `~/.local/state/ufstats`) elsewhere; `UFSTATS_LOCAL_DIR`
    overrides both.
    """
    override = os.environ.get("UFSTATS_LOCAL_DIR")
    if override:
        return Path(override)
    if IS_WINDOWS and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "ufstats"
    state_home = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state_home) / "ufstats"


_APPEND_FLAGS = os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0)


def open_for_append(path: Path) -> int:
    """Open `path` for appending bytes, creating it, and return the descriptor.

    The file is opened read-write (like mode 'a+b'): some SMB clients fail
    write-only appends with EIO, and the writer also reads the tail.
    """
    return os.open(path, _APPEND_FLAGS, 0o666)


def replace_file(source: Path, target: Path, attempts: int = 8, delay: float = 0.05) -> None:
    """Rename `source` over `target`, retrying while the target is busy.

    Windows refuses to rename over a file that another process has open
    (sharing violation), and some SMB clients return EBUSY in the same case.
    Each retry doubles the delay (0.05 s to 3.2 s, about 6.4 s in all with
    the defaults).

    Raises:
        StatsFolderError: the target stayed busy through every attempt.
        OSError: any other rename failure, at once and unchanged.
    """
    for attempt in range(attempts):
        try:
            os.replace(source, target)
            return
        except OSError as exc:
            if not is_transient_error(exc):
                raise
            if attempt == attempts - 1:
                raise StatsFolderError(
                    f"Could not replace {target}: it stayed in use by another program through "
                    f"{attempts} attempts ({exc}). Close programs that have it open (an editor, "
                    "Excel, a backup or antivirus scan) and run the command again."
                ) from exc
            wait = delay * (2**attempt)
            log.debug("rename %s -> %s busy (%s), retrying in %.2f s", source, target, exc, wait)
            time.sleep(wait)


def fsync_directory(path: Path) -> None:
    """Flush a folder's entries to disk where the OS supports it (not Windows)."""
    if IS_WINDOWS:
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # Some network file systems reject fsync on folders.
    finally:
        os.close(fd)


def try_lock_exclusive(handle: BinaryIO) -> bool:
    """Take an exclusive OS lock on an open file without waiting; return False if it is held.

    On POSIX this is `fcntl.flock`, which is what portalocker uses there too,
    called directly because portalocker's checks cost more than the system
    call on every record. Windows goes through portalocker.
    """
    if IS_WINDOWS:
        # Imported here: importing portalocker takes about 30 ms, which every
        # merge process and command would pay, while only Windows locks use it.
        import portalocker

        try:
            portalocker.lock(handle, portalocker.LOCK_EX | portalocker.LOCK_NB)
        except portalocker.exceptions.LockException:
            return False
        return True
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def unlock(handle: BinaryIO) -> None:
    """Release a lock taken with `try_lock_exclusive`."""
    if IS_WINDOWS:
        import portalocker

        portalocker.unlock(handle)
    else:
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

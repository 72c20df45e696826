"""Appending events to a workstation's shard under a short local lock.

Only processes on one PC write a given shard, so the lock lives on the local
disk (in the per-user state folder), never on the file server: it costs no
network round trip and works while the server is offline. The lock is an OS
lock held through an open file (portalocker), so the OS drops it when a
process dies, and a lock file left behind never blocks anyone.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from pathlib import Path

import msgspec
import portalocker

from . import _platform
from .errors import FileLockError, WorkstationConflictError

log = logging.getLogger("ufstats")

# How far back from the end of a shard the writer looks for the last line.
TAIL_BYTES = 4096
_LOCK_POLL_SECONDS = 0.005

_thread_locks: dict[str, threading.Lock] = {}
_thread_locks_guard = threading.Lock()


def _thread_lock(key: str) -> threading.Lock:
    with _thread_locks_guard:
        return _thread_locks.setdefault(key, threading.Lock())


def lock_path_for(target: Path) -> Path:
    """Return the local lock file that guards writes to `target`."""
    digest = hashlib.sha256(os.path.abspath(target).encode("utf-8")).hexdigest()[:20]
    return _platform.local_state_dir() / "locks" / f"{target.stem}-{digest}.lock"


class LocalLock:
    """An exclusive lock shared by the threads and processes of one PC.

    Threads of one process queue on a `threading.Lock`; processes contend
    on an OS lock of a local file. Both waits together are bounded by
    `timeout` seconds, after which `FileLockError` is raised.
    """

    def __init__(self, key_path: Path, timeout: float) -> None:
        self.path = lock_path_for(key_path)
        self.timeout = timeout
        self._thread_lock = _thread_lock(str(self.path))
        self._file = None

    def __enter__(self) -> LocalLock:
        started = time.monotonic()
        if not self._thread_lock.acquire(timeout=self.timeout):
            raise FileLockError(self.path, time.monotonic() - started)
        try:
            self._lock_file(started)
        except BaseException:
            self._thread_lock.release()
            raise
        return self

    def _lock_file(self, started: float) -> None:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a+b")  # noqa: SIM115 - kept open for reuse
        while True:
            try:
                portalocker.lock(self._file, portalocker.LOCK_EX | portalocker.LOCK_NB)
                return
            except portalocker.exceptions.LockException:
                waited = time.monotonic() - started
                if waited >= self.timeout:
                    raise FileLockError(self.path, waited) from None
                time.sleep(_LOCK_POLL_SECONDS)

    def __exit__(self, *exc_info: object) -> None:
        try:
            portalocker.unlock(self._file)
        finally:
            self._thread_lock.release()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class _TailLine(msgspec.Struct):
    machine: str | None = None


_tail_decoder = msgspec.json.Decoder(_TailLine)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _read_tail(fd: int, size: int) -> bytes:
    start = max(0, size - TAIL_BYTES)
    os.lseek(fd, start, os.SEEK_SET)
    return os.read(fd, size - start)


def check_tail_owner(tail: bytes, shard: Path, machine: str) -> None:
    """Raise `WorkstationConflictError` if the shard's last line is another machine's."""
    body = tail[:-1] if tail.endswith(b"\n") else b""
    last_line = body.rsplit(b"\n", 1)[-1]
    if not last_line:
        return
    try:
        other = _tail_decoder.decode(last_line).machine
    except msgspec.MsgspecError:
        return  # A damaged line says nothing about its writer.
    if other is not None and other != machine:
        raise WorkstationConflictError(
            f"Shard {shard} was last written by machine {other}, but this is machine "
            f"{machine}: two PCs use the same workstation id {shard.stem!r}. Nothing was "
            "written. Give each PC a unique id with the UFSTATS_HOST environment "
            "variable or StatsManager(workstation=...)."
        )


def append_lines(shard: Path, data: bytes, machine: str | None) -> None:
    """Append complete lines to a shard and flush them to disk.

    The caller holds the shard's `LocalLock`. If the shard ends in an
    incomplete line (a writer died mid-append), a newline is written first,
    so that fragment becomes one damaged line that readers skip and report;
    no byte already in the shard is changed or removed.
    """
    fd = _platform.open_for_append(shard)
    try:
        size = os.fstat(fd).st_size
        if size:
            tail = _read_tail(fd, size)
            if not tail.endswith(b"\n"):
                log.warning("shard %s ended in an incomplete line; closing it before appending", shard)
                data = b"\n" + data
            elif machine is not None:
                check_tail_owner(tail, shard, machine)
        _write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)

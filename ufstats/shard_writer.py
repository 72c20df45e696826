"""Appending events to a workstation's shard under a short local lock.

Only processes on one PC write a given shard, so the lock lives on the local
disk (in the per-user state folder), never on the file server: it costs no
network round trip and works while the server is offline. The lock is an OS
lock held through an open file (`_platform.try_lock_exclusive`), so the OS drops it when a
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

from . import _platform
from .errors import FileLockError, WorkstationConflictError

log = logging.getLogger("ufstats")

# How far back from the end of a shard the writer looks for the last line.
TAIL_BYTES = 4096
# Longer than the largest record (validation.MAX_EVENT_BYTES) plus a crash fragment.
LONG_TAIL_BYTES = 192 * 1024
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
        while not _platform.try_lock_exclusive(self._file):
            waited = time.monotonic() - started
            if waited >= self.timeout:
                raise FileLockError(self.path, waited)
            time.sleep(_LOCK_POLL_SECONDS)

    def __exit__(self, *exc_info: object) -> None:
        try:
            _platform.unlock(self._file)
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
    # One write nearly always takes everything; the loop covers short writes.
    view = memoryview(data)[os.write(fd, data) :]
    while view:
        view = view[os.write(fd, view) :]


def _read_tail(fd: int, size: int, length: int = TAIL_BYTES) -> bytes:
    start = max(0, size - length)
    os.lseek(fd, start, os.SEEK_SET)
    return os.read(fd, size - start)


def last_writer(tail: bytes, whole_file: bool) -> str | None:
    """Return the machine id of the newest complete line in `tail` that has one.

    Damaged lines (a crash fragment closed by the repair newline) and lines
    without a machine id (imported v1 events) are skipped, so they cannot hide
    the previous writer. Returns None if no line in `tail` names a machine.
    """
    lines = tail.split(b"\n")[:-1]  # The piece after the last newline is no complete line.
    if not whole_file and lines:
        lines = lines[1:]  # The first piece may start in the middle of a line.
    for line in reversed(lines):
        if not line.strip():
            continue
        try:
            machine = _tail_decoder.decode(line).machine
        except msgspec.MsgspecError:
            continue
        if machine is not None:
            return machine
    return None


def check_tail_owner(tail: bytes, shard: Path, machine: str, whole_file: bool = True) -> None:
    """Raise `WorkstationConflictError` if the shard's newest writer is another machine."""
    other = last_writer(tail, whole_file)
    if other is not None and other != machine:
        raise WorkstationConflictError(
            f"Shard {shard} was last written by machine {other}, but this is machine "
            f"{machine}: two PCs use the same workstation id {shard.stem!r}. Nothing was "
            "written. Give each PC a unique id with the UFSTATS_HOST environment "
            "variable or StatsManager(workstation=...)."
        )


def append_lines(shard: Path, data: bytes, machine: str | None, known_size: int | None = None) -> int:
    """Append complete lines to a shard, flush them to disk, and return the new size.

    The caller holds the shard's `LocalLock`. If the shard ends in an
    incomplete line (a writer died mid-append), a newline is written first,
    so that fragment becomes one damaged line that readers skip and report;
    no byte already in the shard is changed or removed.

    `known_size` is the size this writer left the shard at. If the shard
    still has that size, nobody wrote since, so its tail needs no check.
    """
    fd = _platform.open_for_append(shard)
    try:
        size = os.fstat(fd).st_size
        if size and size != known_size:
            tail = _read_tail(fd, size)
            if machine is not None:
                if last_writer(tail, size <= TAIL_BYTES) is None and size > TAIL_BYTES:
                    # The newest lines are long (large metadata): read one record's worth.
                    tail = _read_tail(fd, size, LONG_TAIL_BYTES)
                check_tail_owner(tail, shard, machine, size <= len(tail))
            if not tail.endswith(b"\n"):
                log.warning("shard %s ended in an incomplete line; closing it before appending", shard)
                data = b"\n" + data
        _write_all(fd, data)
        os.fsync(fd)
        return size + len(data)
    finally:
        os.close(fd)

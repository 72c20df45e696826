"""Delivering encoded events to the shard, through the spool when needed.

Error policy of a record call:

- retried: errors that usually clear within a second (Windows sharing,
  lock and access violations, EBUSY, EAGAIN, EINTR), up to `max_retries`
  attempts, attempt N waiting `retry_delay * N` seconds before the next;
- spooled (spooling on, the default): any other `OSError` on the file
  server (base path missing, share offline, permission denied, disk full,
  I/O error) at once, and transient errors that outlast the retries. While
  records wait in the spool, a new record goes to the spool behind them;
- raised: invalid arguments (`InvalidRecordError`, before anything is
  written), a base path, `Stats` or `Stats/shards` that is a file
  (`StatsFolderError`: a setup mistake, so nothing is written or spooled),
  lock timeouts (`FileLockError`), two machines on one shard
  (`WorkstationConflictError`), a failure of the local spool itself
  (`StatsManagerError`, the record is not stored), and with spooling off,
  every `OSError`, retried like a transient one, then raised as
  `StatsManagerError` (the v1 behaviour).
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path

from . import _platform
from .errors import StatsFolderError, StatsManagerError, WorkstationConflictError
from .layout import Layout
from .shard_writer import LocalLock, append_lines
from .spool import Spool

log = logging.getLogger("ufstats")

# How long interpreter exit waits for background delivery, in seconds.
EXIT_FLUSH_SECONDS = 10.0
_BACKGROUND_FIRST_RETRY_SECONDS = 0.5
_BACKGROUND_RETRY_MAX_SECONDS = 60.0


class Recorder:
    """Writes events of one workstation to its shard, spooling when needed."""

    def __init__(
        self,
        layout: Layout,
        workstation: str,
        machine: str,
        *,
        lock_timeout: float,
        max_retries: int,
        retry_delay: float,
        spool: bool,
        spool_dir: Path | None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.layout = layout
        self.workstation = workstation
        self.machine = machine
        self.shard = layout.shard_path(workstation)
        self.lock = LocalLock(self.shard, lock_timeout)
        self.max_retries = max(1, max_retries)
        self.retry_delay = retry_delay
        self.spool_enabled = spool
        self.spool = Spool.for_target(layout.base_path, workstation, spool_dir)
        # The spool has its own lock, so that spooling (background mode) never
        # waits for a slow shard write. Lock order: shard lock, then spool lock.
        self.spool_lock = LocalLock(self.spool.path, lock_timeout)
        # The spool's path as text, for the check that every record makes.
        self._spool_file = os.fspath(self.spool.path)
        self._sleep = sleep
        # The shard's size after this recorder's last append (see append_lines).
        self._known_size: int | None = None

    # Direct writes -----------------------------------------------------------

    def write(self, line: bytes) -> bool:
        """Store one encoded event; return True if it reached the shard, False if spooled."""
        with self.lock:
            # Nearly always there is no spool: one system call instead of a lock and a read.
            if self.spool_enabled and os.access(self._spool_file, os.F_OK):
                pending = self._pending()
                if pending:
                    if not self._try_append(pending):
                        self._spool(line)
                        return False
                    self._remove_delivered(pending)
            if self._try_append(line):
                return True
            self._spool(line)
            return False

    def _pending(self) -> bytes:
        """Return the spooled lines that the shard does not have yet.

        The caller holds the shard lock.
        """
        with self.spool_lock:
            pending = self.spool.pending()
        # The shard is read without the spool lock, so that spooling in
        # background mode never waits for the file server. Only the holder of
        # the shard lock removes lines, and spooling only appends.
        delivered = self._delivered_before(pending)
        if delivered:
            # A process died after appending these lines to the shard and
            # before removing them from the spool. Appending them again
            # would only add copies, which readers drop by event id.
            with self.spool_lock:
                self.spool.remove_delivered(delivered)
            log.info(
                "%d spooled records were already in %s; removed them from the spool",
                pending[:delivered].count(b"\n"), self.shard,
            )
        return pending[delivered:]

    def _delivered_before(self, pending: bytes) -> int:
        """Return how many leading bytes of `pending` the shard already ends with (whole lines)."""
        try:
            size = os.stat(self.shard).st_size
            if not size:
                return 0
            length = min(size, len(pending))
            with open(self.shard, "rb") as handle:
                handle.seek(size - length)
                tail = handle.read(length)
        except OSError:
            return 0  # The shard cannot be read now; the append will tell.
        end = len(pending)
        while end > 0:
            # Lines carry unique event ids, so equal bytes are the same records.
            if end <= len(tail) and tail.endswith(pending[:end]):
                return end
            end = pending.rfind(b"\n", 0, end - 1) + 1
        return 0

    def _remove_delivered(self, delivered: bytes) -> None:
        with self.spool_lock:
            self.spool.remove_delivered(len(delivered))
        log.info("delivered %d spooled records to %s", delivered.count(b"\n"), self.shard)

    def _spool(self, line: bytes) -> None:
        try:
            with self.spool_lock:
                self.spool.add(line)
        except OSError as exc:
            raise StatsManagerError(
                f"The record was not stored: the shard {self.shard} cannot be written and the "
                f"local spool {self.spool.path} failed too ({exc}). Free space on the local disk "
                "or check its permissions, then record again."
            ) from exc

    def _try_append(self, data: bytes) -> bool:
        """Append to the shard with retries; return False if it should be spooled."""
        for attempt in range(1, self.max_retries + 1):
            try:
                self._append(data)
                return True
            except OSError as exc:
                retry = _platform.is_transient_error(exc) or not self.spool_enabled
                if retry and attempt < self.max_retries:
                    log.debug("writing %s failed (%s), attempt %d of %d", self.shard, exc, attempt, self.max_retries)
                    self._sleep(self.retry_delay * attempt)
                    continue
                if not self.spool_enabled:
                    raise StatsManagerError(
                        f"Failed to write {self.shard} after {attempt} attempts: {exc}"
                    ) from exc
                log.warning(
                    "cannot write %s (%s); keeping the record in the local spool %s",
                    self.shard, exc, self.spool.path,
                )
                return False
        return False

    def _append(self, data: bytes) -> None:
        self._known_size, known_size = None, self._known_size
        try:
            self._known_size = append_lines(self.shard, data, self.machine, known_size)
            return
        except (FileNotFoundError, NotADirectoryError):
            pass  # No shards folder yet, the base path is unreachable, or a file is in the way.
        blocking = self.layout.file_in_the_way()
        if blocking is not None:
            raise StatsFolderError(
                f"Cannot write {self.shard}: {blocking} is a file, not a folder. Move or rename "
                f"that file, or check the base path {self.layout.base_path}; nothing was written or spooled."
            )
        if not self.layout.base_path.is_dir():
            raise FileNotFoundError(2, "base path not found or unreachable", str(self.layout.base_path))
        self.layout.shards_dir.mkdir(parents=True, exist_ok=True)
        self._known_size = append_lines(self.shard, data, self.machine)

    # Spool -----------------------------------------------------------------

    def spool_only(self, line: bytes) -> None:
        """Store one encoded event in the local spool only (background mode).

        Only the spool lock is taken, so this never waits for a shard write.
        """
        self._spool(line)

    def flush(self) -> int:
        """Move spooled records to the shard; return how many were delivered.

        Transient errors are retried as in `write`.

        Raises:
            StatsManagerError: the shard still cannot be written; the records
                stay in the spool.
            WorkstationConflictError: another machine writes this shard.
        """
        with self.lock:
            pending = self._pending()
            if not pending:
                return 0
            delivered = pending.count(b"\n")
            for attempt in range(1, self.max_retries + 1):
                try:
                    self._append(pending)
                    break
                except OSError as exc:
                    if _platform.is_transient_error(exc) and attempt < self.max_retries:
                        self._sleep(self.retry_delay * attempt)
                        continue
                    raise StatsManagerError(
                        f"Could not deliver {delivered} spooled records to {self.shard}: {exc}. "
                        f"They stay in {self.spool.path}; run `ufstats flush` when the file "
                        "server is reachable."
                    ) from exc
            self._remove_delivered(pending)
            return delivered

    def close(self) -> None:
        self.lock.close()
        self.spool_lock.close()


class BackgroundDelivery:
    """A daemon thread that moves spooled records to the shard.

    It wakes up when a record is spooled, retries with growing delays while
    the server is unreachable, and gets one last bounded attempt at
    interpreter exit. Records still spooled after that stay on the local disk
    and are delivered by the next process that records or runs `ufstats flush`.
    """

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._idle = threading.Condition()
        # notify() counts requests; the thread records the last request
        # whose records it has delivered. Idle means both are equal.
        self._requested = 0
        self._delivered = 0
        # Set while the last delivery failed because another machine writes
        # the shard; retrying cannot fix that, so record calls raise it.
        self.conflict: WorkstationConflictError | None = None
        # Records this thread moved to the shard so far (for `flush()`).
        self.delivered_records = 0
        self._thread = threading.Thread(target=self._run, name="ufstats-delivery", daemon=True)
        self._thread.start()
        _exit_handlers.add(self)

    def notify(self) -> None:
        """Ask the thread to deliver what is spooled now (also cuts a retry delay short)."""
        with self._idle:
            self._requested += 1
        self._wake.set()

    def _run(self) -> None:
        delay = _BACKGROUND_FIRST_RETRY_SECONDS
        while not self._stop.is_set():
            self._wake.wait()
            self._wake.clear()
            if self._stop.is_set():
                return
            with self._idle:
                request = self._requested
            try:
                self.delivered_records += self.recorder.flush()
                self.conflict = None
            except (StatsManagerError, OSError) as exc:
                if isinstance(exc, WorkstationConflictError):
                    self.conflict = exc
                # OSError: the local spool could not be read; keep the thread alive.
                log.warning("background delivery failed, retrying in %.1f s: %s", delay, exc)
                # A notify() during the wait (a new record, flush, exit) retries at once.
                self._wake.wait(delay)
                delay = min(delay * 2, _BACKGROUND_RETRY_MAX_SECONDS)
                self._wake.set()
                continue
            delay = _BACKGROUND_FIRST_RETRY_SECONDS
            with self._idle:
                self._delivered = request
                self._idle.notify_all()

    def wait_idle(self, timeout: float | None) -> bool:
        """Wait until every record spooled before this call is delivered; return False on timeout."""
        with self._idle:
            target = self._requested
            return self._idle.wait_for(lambda: self._delivered >= target, timeout)

    def stop(self, timeout: float) -> None:
        """Make a last delivery attempt of at most `timeout` seconds, then end the thread."""
        if self._stop.is_set():
            return
        _exit_handlers.discard(self)
        if self._thread.is_alive():
            self.notify()
            if not self.wait_idle(timeout):
                log.warning(
                    "%d records stay in the local spool %s; the next process or `ufstats flush` delivers them",
                    self.recorder.spool.count(), self.recorder.spool.path,
                )
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=1.0)


_exit_handlers: weakref.WeakSet[BackgroundDelivery] = weakref.WeakSet()


@atexit.register
def _flush_at_exit() -> None:
    for delivery in list(_exit_handlers):
        delivery.stop(EXIT_FLUSH_SECONDS)

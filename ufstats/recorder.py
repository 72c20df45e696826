"""Delivering encoded events to the shard, through the spool when needed.

Error policy of a record call:

- retried: errors that clear within a second (sharing or lock violations,
  EBUSY, EAGAIN), up to `max_retries` attempts `retry_delay * attempt` apart;
- spooled: any other `OSError` on the file server (share offline, permission
  denied, disk full, I/O error), and transient errors that outlast the
  retries, when spooling is on (the default);
- raised: invalid arguments (before anything is written), lock timeouts
  (`FileLockError`), two machines on one shard (`WorkstationConflictError`),
  failures of the local spool itself, and with spooling off, every error
  after the retries, as `StatsManagerError` (the v1 behaviour).
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path

from . import _platform
from .errors import StatsManagerError
from .layout import Layout
from .shard_writer import LocalLock, append_lines
from .spool import Spool

log = logging.getLogger("ufstats")

# How long interpreter exit waits for background delivery, in seconds.
EXIT_FLUSH_SECONDS = 10.0
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
        self._sleep = sleep

    # Direct writes -----------------------------------------------------------

    def write(self, line: bytes) -> bool:
        """Store one encoded event; return True if it reached the shard, False if spooled."""
        with self.lock:
            if self.spool_enabled:
                pending = self.spool.pending()
                if pending:
                    if not self._try_append(pending):
                        self.spool.add(line)
                        return False
                    self.spool.clear()
                    log.info("delivered %d spooled records to %s", pending.count(b"\n"), self.shard)
            if self._try_append(line):
                return True
            self.spool.add(line)
            return False

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
        if not self.layout.base_path.is_dir():
            raise FileNotFoundError(2, "base path not found or unreachable", str(self.layout.base_path))
        self.layout.shards_dir.mkdir(parents=True, exist_ok=True)
        append_lines(self.shard, data, self.machine)

    # Spool -----------------------------------------------------------------

    def spool_only(self, line: bytes) -> None:
        """Store one encoded event in the local spool only (background mode)."""
        with self.lock:
            self.spool.add(line)

    def flush(self) -> int:
        """Move spooled records to the shard; return how many were delivered.

        Raises `StatsManagerError` if the shard still cannot be written.
        """
        with self.lock:
            pending = self.spool.pending()
            if not pending:
                return 0
            delivered = pending.count(b"\n")
            try:
                self._append(pending)
            except OSError as exc:
                raise StatsManagerError(
                    f"Could not deliver {delivered} spooled records to {self.shard}: {exc}"
                ) from exc
            self.spool.clear()
            log.info("delivered %d spooled records to %s", delivered, self.shard)
            return delivered

    def close(self) -> None:
        self.lock.close()


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
        self._busy = False
        self._thread = threading.Thread(target=self._run, name="ufstats-delivery", daemon=True)
        self._thread.start()
        _exit_handlers.add(self)

    def notify(self) -> None:
        with self._idle:
            self._busy = True
        self._wake.set()

    def _run(self) -> None:
        delay = 0.5
        while not self._stop.is_set():
            self._wake.wait()
            self._wake.clear()
            try:
                self.recorder.flush()
                delay = 0.5
                with self._idle:
                    self._busy = False
                    self._idle.notify_all()
            except StatsManagerError as exc:
                log.warning("background delivery failed, retrying in %.1f s: %s", delay, exc)
                self._stop.wait(delay)
                delay = min(delay * 2, _BACKGROUND_RETRY_MAX_SECONDS)
                self._wake.set()

    def wait_idle(self, timeout: float | None) -> bool:
        """Wait until the spool is empty; return False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: not self._busy, timeout)

    def stop(self, timeout: float) -> None:
        self.wait_idle(timeout)
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=1.0)


_exit_handlers: weakref.WeakSet[BackgroundDelivery] = weakref.WeakSet()


@atexit.register
def _flush_at_exit() -> None:
    for delivery in list(_exit_handlers):
        delivery.stop(EXIT_FLUSH_SECONDS)

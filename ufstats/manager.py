"""`StatsManager`: the drop-in replacement for the v1 class of the same name.

Terms used throughout ufstats:

- *base path*: the shared `0UFulfilment` folder; statistics live in `Stats/`;
- *workstation*: one PC (or process group) that records; its id names its shard;
- *event*: one record (analysis, packing, or a carried-over adjustment);
- *shard*: `Stats/shards/<workstation>.jsonl`, the append-only events of one workstation;
- *view*: `Stats/global_stats.json`, the v1 document that `merge` writes;
- *merge*: combining all shards (deduplicated by event id) into counters and history;
- *spool*: a local file holding records while the file server is unreachable.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any

from . import _platform, config
from .errors import InvalidArgumentError, StatsManagerError, ViewOwnershipError
from .events import FORMAT_VERSION, Event, decode_line, encode_line, new_event_id, now_timestamp
from .merge import run_merge
from .reader import StatsReader
from .recorder import BackgroundDelivery, Recorder
from .reset import reset
from .validation import check_count, check_encoded_size, check_id, check_metadata, encode_metadata

log = logging.getLogger("ufstats")

DEFAULT_LOCK_TIMEOUT = 5.0
# Upper bounds of the constructor's numbers: beyond them a failing write or a
# busy lock would block a desktop tool for hours.
MAX_RETRIES = 100
MAX_RETRY_DELAY = 60.0
MAX_LOCK_TIMEOUT = 3600.0


def resolve_workstation(workstation: str | None) -> str:
    """Return the workstation id: the argument, else `UFSTATS_HOST`, else the machine name."""
    for source, value in (("workstation", workstation), ("UFSTATS_HOST", os.environ.get("UFSTATS_HOST"))):
        if value is None or (source == "UFSTATS_HOST" and not value):
            continue
        problem = _platform.workstation_problem(value)
        if problem:
            raise InvalidArgumentError(f"Invalid {source}={value!r}: {problem}")
        return value
    return _platform.safe_workstation_name(_platform.machine_name())


def _check_number(name: str, value: object, minimum: float, maximum: float, integer: bool = False) -> None:
    valid_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    # NaN passes every comparison, so it is rejected by isfinite first.
    if (
        isinstance(value, bool)
        or not valid_type
        or (isinstance(value, float) and not math.isfinite(value))
        or not minimum <= value <= maximum  # type: ignore[operator]
    ):
        kind = "an integer" if integer else "a finite number of seconds"
        raise InvalidArgumentError(f"Invalid {name}={value!r}: must be {kind} from {minimum:g} to {maximum:g}")


def _check_flag(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise InvalidArgumentError(f"Invalid {name}={value!r}: must be True or False")


class StatsManager(StatsReader):
    """Record and read warehouse statistics shared by several PCs.

    Each PC appends events to its own shard under `<base_path>/Stats/shards/`;
    read methods combine all shards. The constructor and methods match v1, so
    callers change only their import line. The keyword-only arguments are new:

    Args:
        base_path: the shared `0UFulfilment` folder (a UNC path works).
        max_retries: attempts for a write that fails with a transient error
            (1 to 100).
        retry_delay: seconds (0 to 60); attempt N waits `retry_delay * N`
            before retrying.
        workstation: this PC's id, naming its shard; default `UFSTATS_HOST`,
            else the machine name made safe for file names.
        lock_timeout: seconds to wait for the local shard lock (0 to 3600).
        spool: keep records in a local spool while the server is unreachable
            (default). With False, such failures raise `StatsManagerError`
            as in v1.
        background: return from `record_*` as soon as the record is in the
            local spool, and deliver it from a background thread.
        spool_dir: folder of the local spool (default: per-user state folder).

    Without `workstation` or `spool_dir`, the values come from
    `UFSTATS_HOST` / `UFSTATS_SPOOL_DIR`, else from `ufstats.toml` in the
    base folder (spool_dir only) or the user's config folder (see
    `ufstats.config`). A problem in those files (invalid TOML, a key that is
    not allowed, an invalid value) is logged as a warning naming the file,
    key and value, and the default is used: a bad optional file never stops
    recording. With both `workstation` and `spool_dir` given, no file is read.
    The reading methods are those of `StatsReader`.

    Raises:
        InvalidArgumentError: an argument above, or a value in an
            environment variable, is invalid.
    """

    def __init__(
        self,
        base_path: str | os.PathLike[str],
        max_retries: int = 5,
        retry_delay: float = 0.1,
        *,
        workstation: str | None = None,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        spool: bool = True,
        background: bool = False,
        spool_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__(base_path)
        _check_number("max_retries", max_retries, 1, MAX_RETRIES, integer=True)
        _check_number("retry_delay", retry_delay, 0, MAX_RETRY_DELAY)
        _check_number("lock_timeout", lock_timeout, 0, MAX_LOCK_TIMEOUT)
        _check_flag("spool", spool)
        _check_flag("background", background)
        if background and not spool:
            raise InvalidArgumentError("Invalid background=True with spool=False: background delivery needs the spool")
        self.max_retries = max_retries
        self.retry_delay = retry_delay
        if workstation is None or spool_dir is None:
            # Optional ufstats.toml in the user and base folders: two small reads.
            configured = config.effective_settings(
                base_path=self.base_path, keys=("workstation", "spool_dir"), lenient=True
            )
            if workstation is None:
                workstation = configured["workstation"].value
            if spool_dir is None and configured["spool_dir"].source.startswith(("file", "environment")):
                spool_dir = configured["spool_dir"].value
        self.workstation = resolve_workstation(workstation)
        self.machine = _platform.machine_id()
        self._recorder = Recorder(
            self.layout,
            self.workstation,
            self.machine,
            lock_timeout=lock_timeout,
            max_retries=max_retries,
            retry_delay=retry_delay,
            spool=spool,
            spool_dir=Path(spool_dir) if spool_dir is not None else None,
        )
        self._closed = False
        self._delivery = BackgroundDelivery(self._recorder) if background else None
        if self._delivery is not None:
            self._delivery.notify()  # Deliver what an earlier process left spooled.
        try:
            if self.base_path.is_dir():
                self.layout.shards_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            log.debug("cannot create %s now: %s", self.layout.shards_dir, exc)

    # Recording ---------------------------------------------------------------

    def record_analysis(
        self,
        client_id: str,
        session_id: str,
        orders_count: int,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Record one completed order analysis (Shopify Fulfillment Tool).

        Raises:
            InvalidRecordError: an argument is invalid; nothing was written.
            FileLockError: the local shard lock was not acquired in time.
            WorkstationConflictError: another machine writes this shard.
            StatsManagerError: the record could not be stored.
        """
        check_id("client_id", client_id)
        check_id("session_id", session_id)
        check_count("orders_count", orders_count)
        converted = check_metadata(metadata)
        self._record(
            "analysis",
            client_id=client_id,
            session_id=session_id,
            orders_count=int(orders_count),
            metadata=encode_metadata(converted),
        )

    def record_packing(
        self,
        client_id: str,
        session_id: str,
        worker_id: str | None,
        orders_count: int,
        items_count: int,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Record one completed packing session (Packing Tool).

        `worker_id` may be None, as in v1. Raises as `record_analysis`.
        """
        check_id("client_id", client_id)
        check_id("session_id", session_id)
        check_id("worker_id", worker_id, optional=True)
        check_count("orders_count", orders_count)
        check_count("items_count", items_count)
        converted = check_metadata(metadata)
        self._record(
            "packing",
            client_id=client_id,
            session_id=session_id,
            worker_id=worker_id,
            orders_count=int(orders_count),
            items_count=int(items_count),
            metadata=encode_metadata(converted),
        )

    def _record(self, kind: str, **fields: Any) -> None:
        """Build an event of this workstation from checked fields and store it."""
        self._check_open()
        event = Event(
            format=FORMAT_VERSION,
            id=new_event_id(),
            type=kind,  # type: ignore[arg-type]
            workstation=self.workstation,
            machine=self.machine,
            timestamp=now_timestamp(),
            **fields,
        )
        line = encode_line(event)
        check_encoded_size(line)
        # Never write a line that readers would skip as damaged.
        decode_line(line)
        if self._delivery is not None:
            if self._delivery.conflict is not None:
                # As without background delivery: nothing is stored.
                raise self._delivery.conflict
            self._recorder.spool_only(line)
            self._delivery.notify()
        else:
            self._recorder.write(line)

    def flush(self, timeout: float | None = None) -> int:
        """Deliver records waiting in the local spool; return how many were delivered.

        In background mode this waits up to `timeout` seconds for the
        delivery thread and returns how many records it delivered meanwhile.
        Raises `StatsManagerError` if the shard still cannot be written.
        """
        self._check_open()
        if self._delivery is not None:
            delivered_before = self._delivery.delivered_records
            self._delivery.notify()
            if not self._delivery.wait_idle(timeout):
                if self._delivery.conflict is not None:
                    raise self._delivery.conflict
                raise StatsManagerError(
                    f"Spooled records were not delivered within {timeout} s; "
                    f"they stay in {self._recorder.spool.path}"
                )
            return self._delivery.delivered_records - delivered_before
        return self._recorder.flush()

    def pending_count(self) -> int:
        """Return how many records of this workstation wait in the local spool."""
        return self._recorder.spool.count()

    def close(self, timeout: float = 5.0) -> None:
        """Stop background delivery (after a last attempt of at most `timeout` seconds) and release the lock files.

        Records still spooled stay on the local disk for the next process or
        `ufstats flush`. Recording after `close()` raises `StatsManagerError`.
        """
        self._closed = True
        if self._delivery is not None:
            self._delivery.stop(timeout=timeout)
        self._recorder.close()

    def _check_open(self) -> None:
        if self._closed:
            raise StatsManagerError(
                f"This StatsManager for {self.base_path} was closed; create a new one to record."
            )

    # Maintenance -----------------------------------------------------------------

    def reset_stats(self) -> None:
        """Reset all statistics to zero; the old shards are archived, not deleted.

        Every reader on every PC reads zeros afterwards. `ufstats reset
        --restore ID` brings the archived numbers back.
        """
        result = reset(self.layout)
        log.info("statistics reset; shards archived in %s", result.archive)
        try:
            run_merge(self.layout)
        except ViewOwnershipError as exc:
            log.warning("view not rewritten after reset: %s", exc)

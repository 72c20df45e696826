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
import threading
from datetime import date
from pathlib import Path
from typing import Any

from . import _platform, breakdown, config
from .aggregate import HistoryItem
from .checkpoint import CHECKPOINT_HISTORY, load_checkpoint
from .errors import InvalidArgumentError, StatsFolderError, StatsManagerError, ViewOwnershipError
from .events import FORMAT_VERSION, Event, decode_line, encode_line, history_entry, new_event_id, now_timestamp
from .layout import Layout
from .merge import run_merge
from .recorder import BackgroundDelivery, Recorder
from .reset import reset
from .state import StatsState
from .validation import check_count, check_encoded_size, check_id, check_metadata, encode_metadata

log = logging.getLogger("ufstats")

DEFAULT_LOCK_TIMEOUT = 5.0


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


def _check_number(name: str, value: object, minimum: float, integer: bool = False) -> None:
    valid_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    # NaN passes every comparison, and threading rejects waits above TIMEOUT_MAX.
    if (
        isinstance(value, bool)
        or not valid_type
        or (isinstance(value, float) and not math.isfinite(value))
        or not minimum <= value <= threading.TIMEOUT_MAX  # type: ignore[operator]
    ):
        kind = "an integer" if integer else "a finite number"
        raise InvalidArgumentError(
            f"Invalid {name}={value!r}: must be {kind} from {minimum} to {threading.TIMEOUT_MAX:.0f}"
        )


class StatsManager:
    """Record and read warehouse statistics shared by several PCs.

    Each PC appends events to its own shard under `<base_path>/Stats/shards/`;
    read methods combine all shards. The constructor and methods match v1, so
    callers change only their import line. The keyword-only arguments are new:

    Args:
        base_path: the shared `0UFulfilment` folder (a UNC path works).
        max_retries: attempts for a write that fails with a transient error.
        retry_delay: seconds; attempt N waits `retry_delay * N` before retrying.
        workstation: this PC's id, naming its shard; default `UFSTATS_HOST`,
            else the machine name made safe for file names.
        lock_timeout: seconds to wait for the local shard lock.
        spool: keep records in a local spool while the server is unreachable
            (default). With False, such failures raise `StatsManagerError`
            as in v1.
        background: return from `record_*` as soon as the record is in the
            local spool, and deliver it from a background thread.
        spool_dir: folder of the local spool (default: per-user state folder).

    Without `workstation` or `spool_dir`, the values come from
    `UFSTATS_HOST` / `UFSTATS_SPOOL_DIR`, else from `ufstats.toml` in the
    base folder (spool_dir only) or the user's config folder (see
    `ufstats.config`); a file that cannot be read is ignored with a warning.

    Raises:
        InvalidArgumentError: an argument above, or a value in a ufstats.toml
            file or environment variable, is invalid.
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
        self.layout = Layout.for_base_path(base_path)
        _check_number("max_retries", max_retries, 1, integer=True)
        _check_number("retry_delay", retry_delay, 0)
        _check_number("lock_timeout", lock_timeout, 0)
        if background and not spool:
            raise InvalidArgumentError("Invalid background=True with spool=False: background delivery needs the spool")
        self.base_path = self.layout.base_path
        self.stats_file = self.layout.view_file
        self.max_retries = max_retries
        self.retry_delay = retry_delay
        if workstation is None or spool_dir is None:
            # Optional ufstats.toml in the user and base folders: two small reads.
            configured = config.effective_settings(
                base_path=self.base_path, unreadable_ok=True, keys=("workstation", "spool_dir")
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
        self._state: StatsState | None = None
        self._state_lock = threading.Lock()
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
            Event(
                format=FORMAT_VERSION,
                id=new_event_id(),
                type="analysis",
                workstation=self.workstation,
                machine=self.machine,
                timestamp=now_timestamp(),
                client_id=client_id,
                session_id=session_id,
                orders_count=int(orders_count),
                metadata=encode_metadata(converted),
            )
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
            Event(
                format=FORMAT_VERSION,
                id=new_event_id(),
                type="packing",
                workstation=self.workstation,
                machine=self.machine,
                timestamp=now_timestamp(),
                client_id=client_id,
                session_id=session_id,
                worker_id=worker_id,
                orders_count=int(orders_count),
                items_count=int(items_count),
                metadata=encode_metadata(converted),
            )
        )

    def _record(self, event: Event) -> None:
        line = encode_line(event)
        check_encoded_size(line)
        # Never write a line that readers would skip as damaged.
        decode_line(line)
        if self._delivery is not None:
            self._recorder.spool_only(line)
            self._delivery.notify()
        else:
            self._recorder.write(line)

    def flush(self, timeout: float | None = None) -> int:
        """Deliver records waiting in the local spool; return how many were delivered.

        In background mode this waits up to `timeout` seconds for the
        delivery thread and returns 0. Raises `StatsManagerError` if the
        shard still cannot be written.
        """
        if self._delivery is not None:
            self._delivery.notify()
            if not self._delivery.wait_idle(timeout):
                raise StatsManagerError(
                    f"Spooled records were not delivered within {timeout} s; "
                    f"they stay in {self._recorder.spool.path}"
                )
            return 0
        return self._recorder.flush()

    def pending_count(self) -> int:
        """Return how many records of this workstation wait in the local spool."""
        return self._recorder.spool.count()

    def close(self) -> None:
        """Stop background delivery (after a bounded last attempt) and release the lock file."""
        if self._delivery is not None:
            self._delivery.stop(timeout=5.0)
        self._recorder.close()

    # Reading -------------------------------------------------------------------

    def _current_state(self) -> StatsState:
        with self._state_lock:
            try:
                if self._state is None:
                    self.layout.require_base_path()
                    self._state = load_checkpoint(self.layout) or StatsState(self.layout, CHECKPOINT_HISTORY)
                self._state.refresh()
            except OSError as exc:
                self._state = None
                raise StatsFolderError(f"Cannot read statistics in {self.layout.stats_dir}: {exc}") from exc
            return self._state

    def get_global_stats(self) -> dict[str, Any]:
        """Return totals over all shards and the newest event's timestamp.

        Keys: `total_orders_analyzed`, `total_orders_packed`,
        `total_sessions`, `last_updated` (None when nothing was recorded).
        """
        return self._current_state().aggregate.global_stats()

    def get_client_stats(self, client_id: str) -> dict[str, int]:
        """Return `orders_analyzed`, `orders_packed` and `sessions` of one client (zeros if unknown)."""
        return self._current_state().aggregate.client_stats(client_id)

    def get_all_clients_stats(self) -> dict[str, dict[str, int]]:
        """Return the counters of every client, keyed by client id."""
        return self._current_state().aggregate.all_clients_stats()

    def get_worker_stats(self, worker_id: str | None) -> dict[str, Any]:
        """Return one worker's packing numbers; zeros for an unknown worker.

        Keys: `worker_id`, `orders`, `items`, `sessions`, `timed_sessions`,
        `timed_orders`, `timed_items`, `packing_seconds`, `orders_per_hour`,
        `items_per_hour`. Only sessions whose metadata has `duration_seconds`
        are timed; untimed sessions count in orders, items and sessions but
        not in the time or the hourly rates (None without timed time).
        `worker_id` None returns the sessions recorded without a worker.
        """
        return breakdown.worker_stats(self._current_state().aggregate, worker_id)

    def get_all_workers_stats(self) -> dict[str, dict[str, Any]]:
        """Return `get_worker_stats` of every worker, keyed by worker id.

        Sessions recorded without a worker are under the key "" (never a
        valid worker id), with `worker_id` None in their dict.
        """
        return breakdown.all_workers_stats(self._current_state().aggregate)

    def get_daily_stats(
        self,
        client_id: str | None = None,
        date_from: str | date | None = None,
        date_to: str | date | None = None,
    ) -> list[dict[str, Any]]:
        """Return orders analysed, orders packed and sessions per day and client.

        One dict per (day, client), oldest first, with keys `date`,
        `client_id`, `orders_analyzed`, `orders_packed`, `sessions`. The day
        is the record's own local date (its timestamp's first 10
        characters); `date_from` and `date_to` (YYYY-MM-DD or `date`) are
        inclusive. Counters that v1 files carried beyond their capped
        history have no date and are not included.

        Raises:
            InvalidArgumentError: a date is invalid or the range is reversed.
        """
        return breakdown.daily_stats(self._current_state().aggregate, client_id, date_from, date_to)

    def get_analysis_history(self, client_id: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Return analysis records, newest first; `limit` keeps the newest N (0 or None: all)."""
        return self._history("analysis", client_id, None, limit)

    def get_packing_history(
        self,
        client_id: str | None = None,
        worker_id: str | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Return packing records, newest first, filtered by client and worker; see `get_analysis_history`."""
        return self._history("packing", client_id, worker_id, limit)

    def _history(self, kind: str, client_id: str | None, worker_id: str | None, limit: int | None) -> list[dict[str, Any]]:
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
            raise InvalidArgumentError(f"Invalid limit={limit!r}: must be None, 0 (all) or a positive integer")

        def matches(item: HistoryItem) -> bool:
            event = item.event
            # As in v1, an empty filter value means no filter.
            return (not client_id or event.client_id == client_id) and (not worker_id or event.worker_id == worker_id)

        history = getattr(self._current_state().aggregate, kind)
        selected = [item for item in reversed(history.oldest_first()) if matches(item)]
        if not history.complete and not (limit and len(selected) >= limit):
            # The kept history is too short for this query: read all shards.
            full = StatsState.scan(self.layout, history_limit=None)
            selected = [item for item in reversed(getattr(full.aggregate, kind).oldest_first()) if matches(item)]
        if limit:
            selected = selected[:limit]
        return [history_entry(item.event) for item in selected]

    # Maintenance -----------------------------------------------------------------

    def reset_stats(self) -> None:
        """Reset all statistics to zero; the old shards are archived, not deleted.

        Every reader on every PC sees zeros afterwards. `ufstats reset
        --restore ID` brings the archived numbers back.
        """
        result = reset(self.layout)
        log.info("statistics reset; shards archived in %s", result.archive)
        try:
            run_merge(self.layout)
        except ViewOwnershipError as exc:
            log.warning("view not rewritten after reset: %s", exc)

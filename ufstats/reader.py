"""`StatsReader`: the reading methods of `StatsManager`, without recording.

A reader never creates, writes or locks anything: the `ufstats` reading
commands use it, so pointing them at the wrong folder leaves no `Stats`
folder behind. `StatsManager` inherits every method here.
"""

from __future__ import annotations

import os
import threading
from datetime import date
from typing import Any

from . import breakdown
from .aggregate import HistoryItem
from .checkpoint import CHECKPOINT_HISTORY, load_checkpoint
from .errors import InvalidArgumentError, StatsFolderError
from .events import history_entry
from .layout import Layout
from .state import StatsState


class StatsReader:
    """Read the statistics of one base path: totals, clients, workers, days and history.

    Args:
        base_path: the shared `0UFulfilment` folder (a UNC path works).

    Raises:
        InvalidArgumentError: `base_path` is not a str or path, or is empty.
    """

    def __init__(self, base_path: str | os.PathLike[str]) -> None:
        self.layout = Layout.for_base_path(base_path)
        self.base_path = self.layout.base_path
        self.stats_file = self.layout.view_file
        self._state: StatsState | None = None
        self._state_lock = threading.Lock()

    def has_stats_folder(self) -> bool:
        """Return True if the base folder contains a `Stats` folder (False also when unreachable)."""
        try:
            return self.layout.stats_dir.is_dir()
        except OSError:
            return False

    def carried_counts(self, client_id: str | None = None) -> list[int]:
        """Return orders analysed, orders packed and sessions that imported v1 files counted without records.

        v1 capped its history at 1000 entries per kind while its counters
        kept counting; these differences have no date, session or worker, so
        they are in the totals but in no per-day or per-worker number.
        `client_id` limits them to one client.
        """
        totals, by_client = self._current_state().aggregate.carried_counters()
        if client_id is None:
            return totals
        return by_client.get(client_id, [0, 0, 0])

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

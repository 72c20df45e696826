"""Aggregation of events into totals, per-client counters and history.

Counting rules are those of v1: ``orders_analyzed`` sums analysis events,
``orders_packed`` sums packing events, ``sessions`` counts packing events.
Adjustment events add their counter differences. History keeps the newest
events of each kind by their instant (UTC), ties broken by shard and line.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Any

import msgspec

from .events import Event, check_event, history_entry

ANALYSIS = 0
PACKED = 1
SESSIONS = 2


class _PackingMetadata(msgspec.Struct):
    duration_seconds: float | None = None


_packing_metadata_decoder = msgspec.json.Decoder(_PackingMetadata)


def _duration_seconds(event: Event) -> float | None:
    if not len(event.metadata):
        return None
    try:
        duration = _packing_metadata_decoder.decode(event.metadata).duration_seconds
    except msgspec.MsgspecError:
        return None
    if duration is None or duration != duration or duration < 0:
        return None
    return duration


@dataclass(order=True)
class HistoryItem:
    """A history candidate: sort key first, then the event itself."""

    epoch: float
    shard: str
    line: int
    event: Event = field(compare=False)


class History:
    """The newest `limit` events of one kind (all of them when limit is None)."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self._items: list[HistoryItem] = []
        self.total = 0

    def add(self, item: HistoryItem) -> None:
        self.total += 1
        if self.limit is None:
            self._items.append(item)
        elif len(self._items) < self.limit:
            heapq.heappush(self._items, item)
        elif self.limit and item > self._items[0]:
            heapq.heapreplace(self._items, item)

    def oldest_first(self) -> list[HistoryItem]:
        return sorted(self._items)

    @property
    def complete(self) -> bool:
        """True when every event of this kind is kept."""
        return len(self._items) == self.total


class Aggregate:
    """Counters and history built from a stream of events."""

    def __init__(self, history_limit: int | None = 1000) -> None:
        self.totals = [0, 0, 0]
        self.by_client: dict[str, list[int]] = {}
        self.workers: dict[str, list[float]] = {}
        self.daily: dict[tuple[str, str], list[int]] = {}
        self.analysis = History(history_limit)
        self.packing = History(history_limit)
        self.events = 0
        self.newest: tuple[float, str] | None = None
        self.imported_sources: set[str] = set()

    def add(self, event: Event, shard: str, line: int) -> None:
        """Count one event; raise `ValueError` if it cannot be counted."""
        instant = check_event(event)
        epoch = instant.timestamp()
        self.events += 1
        if self.newest is None or epoch > self.newest[0]:
            self.newest = (epoch, event.timestamp)
        if event.type == "adjustment":
            self._add_adjustment(event)
            return
        client = self.by_client.get(event.client_id)  # type: ignore[arg-type]
        if client is None:
            client = self.by_client[event.client_id] = [0, 0, 0]  # type: ignore[index]
        day_key = (event.timestamp[:10], event.client_id)
        day = self.daily.get(day_key)  # type: ignore[arg-type]
        if day is None:
            day = self.daily[day_key] = [0, 0, 0]  # type: ignore[index]
        item = HistoryItem(epoch, shard, line, event)
        if event.type == "analysis":
            self.totals[ANALYSIS] += event.orders_count
            client[ANALYSIS] += event.orders_count
            day[ANALYSIS] += event.orders_count
            self.analysis.add(item)
        else:
            self.totals[PACKED] += event.orders_count
            self.totals[SESSIONS] += 1
            client[PACKED] += event.orders_count
            client[SESSIONS] += 1
            day[PACKED] += event.orders_count
            day[SESSIONS] += 1
            self._add_worker(event)
            self.packing.add(item)

    def _add_adjustment(self, event: Event) -> None:
        for index, name in enumerate(("orders_analyzed", "orders_packed", "sessions")):
            self.totals[index] += (event.totals or {}).get(name, 0)
        for client_id, deltas in (event.by_client or {}).items():
            client = self.by_client.setdefault(client_id, [0, 0, 0])
            for index, name in enumerate(("orders_analyzed", "orders_packed", "sessions")):
                client[index] += deltas.get(name, 0)
        if event.source_sha256:
            self.imported_sources.add(event.source_sha256)

    def _add_worker(self, event: Event) -> None:
        key = event.worker_id if event.worker_id is not None else ""
        worker = self.workers.get(key)
        if worker is None:
            # orders, items, sessions, seconds timed, sessions timed
            worker = self.workers[key] = [0, 0, 0, 0.0, 0]
        worker[0] += event.orders_count
        worker[1] += event.items_count
        worker[2] += 1
        duration = _duration_seconds(event)
        if duration is not None:
            worker[3] += duration
            worker[4] += 1

    # Views of the aggregate -------------------------------------------------

    @property
    def last_updated(self) -> str | None:
        return self.newest[1] if self.newest else None

    def global_stats(self) -> dict[str, Any]:
        return {
            "total_orders_analyzed": self.totals[ANALYSIS],
            "total_orders_packed": self.totals[PACKED],
            "total_sessions": self.totals[SESSIONS],
            "last_updated": self.last_updated,
        }

    def client_stats(self, client_id: str) -> dict[str, int]:
        counters = self.by_client.get(client_id, (0, 0, 0))
        return {
            "orders_analyzed": counters[ANALYSIS],
            "orders_packed": counters[PACKED],
            "sessions": counters[SESSIONS],
        }

    def all_clients_stats(self) -> dict[str, dict[str, int]]:
        return {client_id: self.client_stats(client_id) for client_id in self.by_client}

    def view(self, version: str) -> dict[str, Any]:
        """Return the v1 `global_stats.json` document."""
        return {
            "total_orders_analyzed": self.totals[ANALYSIS],
            "total_orders_packed": self.totals[PACKED],
            "total_sessions": self.totals[SESSIONS],
            "by_client": self.all_clients_stats(),
            "analysis_history": [history_entry(i.event) for i in self.analysis.oldest_first()],
            "packing_history": [history_entry(i.event) for i in self.packing.oldest_first()],
            "last_updated": self.last_updated,
            "version": version,
        }

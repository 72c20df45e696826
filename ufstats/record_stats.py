"""Per-worker, per-day and per-client numbers computed from a list of records.

These functions take any iterable of analysis and packing events (for
example `Selection.records`) and return plain rows. The HTML report uses
them, and so should every other place that shows such numbers, so that all
of them agree. Adjustment events in the input are ignored: they carry no
date, worker or session.

Packing throughput follows one rule everywhere: orders (or items) of the
sessions whose metadata has a `duration_seconds` from 0 to
`MAX_DURATION_SECONDS` (7 days), divided by the hours those sessions took.
Sessions without such a duration count in the totals but not in the rates.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

import msgspec

from .events import Event

# Maximum plausible packing session: 7 days. A longer `duration_seconds`
# (a timestamp or milliseconds stored by mistake, 1e300) would swamp every
# rate and time total, so such a session is treated as untimed.
MAX_DURATION_SECONDS = 7 * 24 * 3600


def valid_duration(duration: float | None) -> bool:
    """Return True for a duration that counts as timed: a number from 0 to `MAX_DURATION_SECONDS`."""
    # NaN fails both comparisons.
    return duration is not None and 0 <= duration <= MAX_DURATION_SECONDS


class _PackingMetadata(msgspec.Struct):
    duration_seconds: float | None = None
    worker_name: str | None = None


_metadata_decoder = msgspec.json.Decoder(_PackingMetadata)


def packing_metadata(event: Event) -> tuple[float | None, str | None]:
    """Return a packing event's valid `duration_seconds` and its `worker_name`, or None for each."""
    if not len(event.metadata):
        return None, None
    try:
        metadata = _metadata_decoder.decode(event.metadata)
    except msgspec.MsgspecError:
        # Another type in either field: fall back to reading them one by one.
        document = msgspec.json.decode(event.metadata)
        duration = document.get("duration_seconds") if isinstance(document, dict) else None
        name = document.get("worker_name") if isinstance(document, dict) else None
        metadata = _PackingMetadata(
            duration if isinstance(duration, (int, float)) and not isinstance(duration, bool) else None,
            name if isinstance(name, str) else None,
        )
    duration = metadata.duration_seconds
    if not valid_duration(duration):
        duration = None
    return duration, metadata.worker_name


def per_hour(count: int, seconds: float) -> float | None:
    """Return `count` per hour of `seconds`, or None when no time was measured."""
    if seconds <= 0:
        return None
    return count * 3600.0 / seconds


@dataclass
class WorkerStats:
    """Packing numbers of one worker; `worker_id` is None for sessions without a worker."""

    worker_id: str | None
    # The `worker_name` of the worker's newest session that has one.
    worker_name: str | None = None
    sessions: int = 0
    orders: int = 0
    items: int = 0
    timed_sessions: int = 0
    timed_seconds: float = 0.0
    timed_orders: int = 0
    timed_items: int = 0

    @property
    def orders_per_hour(self) -> float | None:
        return per_hour(self.timed_orders, self.timed_seconds)

    @property
    def items_per_hour(self) -> float | None:
        return per_hour(self.timed_items, self.timed_seconds)


def summarize_workers(events: Iterable[Event]) -> list[WorkerStats]:
    """Sum packing events per worker; rows sorted by worker id, no worker last.

    Give the events oldest first so that `worker_name` is the newest one.
    """
    workers: dict[str | None, WorkerStats] = {}
    for event in events:
        if event.type != "packing":
            continue
        row = workers.get(event.worker_id)
        if row is None:
            row = workers[event.worker_id] = WorkerStats(event.worker_id)
        duration, name = packing_metadata(event)
        row.sessions += 1
        row.orders += event.orders_count
        row.items += event.items_count
        if name:
            row.worker_name = name
        if duration is not None:
            row.timed_sessions += 1
            row.timed_seconds += duration
            row.timed_orders += event.orders_count
            row.timed_items += event.items_count
    return sorted(workers.values(), key=lambda w: (w.worker_id is None, w.worker_id or ""))


@dataclass
class DayStats:
    """Counts of one day (the record's local date), of one client or of all (`client_id` None)."""

    date: str
    client_id: str | None = None
    orders_analyzed: int = 0
    orders_packed: int = 0
    sessions: int = 0
    items_packed: int = 0


def summarize_days(events: Iterable[Event], by_client: bool = False, fill_gaps: bool = False) -> list[DayStats]:
    """Sum events per local date (and per client if `by_client`), sorted by date then client.

    With `fill_gaps` (only without `by_client`), days between the first and
    the last date that have no records get a row of zeros, for charts.
    """
    days: dict[tuple[str, str | None], DayStats] = {}
    for event in events:
        if event.type == "adjustment":
            continue
        key = (event.timestamp[:10], event.client_id if by_client else None)
        row = days.get(key)
        if row is None:
            row = days[key] = DayStats(*key)
        if event.type == "analysis":
            row.orders_analyzed += event.orders_count
        else:
            row.orders_packed += event.orders_count
            row.sessions += 1
            row.items_packed += event.items_count
    rows = sorted(days.values(), key=lambda d: (d.date, d.client_id or ""))
    if fill_gaps and not by_client and rows:
        first, last = date.fromisoformat(rows[0].date), date.fromisoformat(rows[-1].date)
        known = {row.date: row for row in rows}
        rows = []
        for offset in range((last - first).days + 1):
            day = (first + timedelta(days=offset)).isoformat()
            rows.append(known.get(day) or DayStats(day))
    return rows


@dataclass
class ClientStats:
    """Counts of one client's records."""

    client_id: str
    orders_analyzed: int = 0
    orders_packed: int = 0
    sessions: int = 0
    items_packed: int = 0


def summarize_clients(events: Iterable[Event]) -> list[ClientStats]:
    """Sum events per client, sorted by client id."""
    clients: dict[str, ClientStats] = {}
    for event in events:
        if event.type == "adjustment" or event.client_id is None:
            continue
        row = clients.get(event.client_id)
        if row is None:
            row = clients[event.client_id] = ClientStats(event.client_id)
        if event.type == "analysis":
            row.orders_analyzed += event.orders_count
        else:
            row.orders_packed += event.orders_count
            row.sessions += 1
            row.items_packed += event.items_count
    return sorted(clients.values(), key=lambda c: c.client_id)

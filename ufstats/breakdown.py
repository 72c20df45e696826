"""Per-worker and per-day numbers read from an `Aggregate`'s counters.

`StatsManager.get_worker_stats`, `get_all_workers_stats` and
`get_daily_stats` return these. Hourly rates use `record_stats.per_hour`,
the rule the HTML report and the exports use as well.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from .aggregate import Aggregate
from .errors import InvalidArgumentError
from .record_stats import per_hour


def _worker_dict(worker_id: str | None, counters: list[float] | None) -> dict[str, Any]:
    # Counter order as kept by Aggregate: orders, items, sessions, seconds
    # timed, sessions timed, orders of timed sessions, items of timed sessions.
    values = list(counters or []) + [0] * (7 - len(counters or []))
    orders, items, sessions, seconds, timed_sessions, timed_orders, timed_items = values
    return {
        "worker_id": worker_id,
        "orders": int(orders),
        "items": int(items),
        "sessions": int(sessions),
        "timed_sessions": int(timed_sessions),
        "timed_orders": int(timed_orders),
        "timed_items": int(timed_items),
        "packing_seconds": float(seconds),
        "orders_per_hour": per_hour(int(timed_orders), float(seconds)),
        "items_per_hour": per_hour(int(timed_items), float(seconds)),
    }


def worker_stats(aggregate: Aggregate, worker_id: str | None) -> dict[str, Any]:
    """Return one worker's packing numbers (zeros for an unknown worker)."""
    key = worker_id if worker_id is not None else ""
    return _worker_dict(worker_id, aggregate.workers.get(key))


def all_workers_stats(aggregate: Aggregate) -> dict[str, dict[str, Any]]:
    """Return every worker's packing numbers keyed by worker id ("" for no worker)."""
    return {
        key: _worker_dict(key if key != "" else None, counters)
        for key, counters in sorted(aggregate.workers.items())
    }


def _as_day(value: str | date | None, argument: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str) and len(value) == 10:
        try:
            return date.fromisoformat(value).isoformat()
        except ValueError:
            pass
    raise InvalidArgumentError(f"Invalid {argument}={value!r}: expected a date as YYYY-MM-DD or a datetime.date")


def daily_stats(
    aggregate: Aggregate,
    client_id: str | None = None,
    date_from: str | date | None = None,
    date_to: str | date | None = None,
) -> list[dict[str, Any]]:
    """Return counters per (day, client), oldest first, within an inclusive date range.

    Raises:
        InvalidArgumentError: a date is invalid or `date_from` is after `date_to`.
    """
    start = _as_day(date_from, "date_from")
    end = _as_day(date_to, "date_to")
    if start and end and start > end:
        raise InvalidArgumentError(f"Invalid date range date_from={start} date_to={end}: date_from is after date_to")
    rows = []
    for (day, client), counters in sorted(aggregate.daily.items()):
        if client_id and client != client_id:
            continue
        if (start and day < start) or (end and day > end):
            continue
        rows.append(
            {
                "date": day,
                "client_id": client,
                "orders_analyzed": counters[0],
                "orders_packed": counters[1],
                "sessions": counters[2],
            }
        )
    return rows


"""`ufstats workers` and `ufstats daily`: per-worker and per-day numbers.

Both print the numbers that `StatsManager.get_all_workers_stats` and
`get_daily_stats` return (see `ufstats.breakdown` for the counting rules).
`ufstats.cli` registers the commands on its group.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .cli import (
    base_path_option, json_option, layout_for, print_json, print_table, reader_for, record_filter_options,
    warn_if_config_invalid, warn_if_no_stats,
)
from .record_stats import WorkerStats, summarize_workers

NO_WORKER_LABEL = "(no worker)"


def format_duration(seconds: float) -> str:
    """Return seconds as H:MM:SS, rounded to whole seconds."""
    whole = int(round(seconds))
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _carried_note(counts: dict[str, int], missing: str) -> str | None:
    """Return the note about counters of imported v1 files that a table leaves out, or None.

    `counts` maps a label ("orders packed") to its count; `missing` is what
    those counters lack ("date", "worker").
    """
    if not any(counts.values()):
        return None
    parts = [f"{count} {label}" for label, count in counts.items()]
    listed = ", ".join(parts[:-1]) + f" and {parts[-1]}" if len(parts) > 1 else parts[0]
    return (
        f"note: {listed} counted by imported v1 files have no {missing} and are not in this table "
        "(they are in `ufstats show`)"
    )


def _echo_note(note: str | None) -> None:
    if note:
        click.echo(note, err=True)


def _worker_dict(row: WorkerStats) -> dict[str, Any]:
    """Return a `summarize_workers` row with the keys of `StatsManager.get_worker_stats`."""
    return {
        "worker_id": row.worker_id,
        "orders": row.orders,
        "items": row.items,
        "sessions": row.sessions,
        "timed_sessions": row.timed_sessions,
        "timed_orders": row.timed_orders,
        "timed_items": row.timed_items,
        "packing_seconds": row.timed_seconds,
        "orders_per_hour": row.orders_per_hour,
        "items_per_hour": row.items_per_hour,
    }


@click.command()
@base_path_option
@record_filter_options
@json_option
def workers(base_path: Path, date_from: str | None, date_to: str | None, client_id: str | None, as_json: bool) -> None:
    """Show packing numbers per worker: sessions, orders, items, time, orders and items per hour.

    Rates count only sessions whose metadata has duration_seconds; other
    sessions count in the totals only. Sessions recorded without a worker
    are shown as "(no worker)" (in --json: key "", with "worker_id": null). With --client, --from or
    --to all shards are read instead of the merged counters.

    Example: ufstats workers --from 2026-04-01 --to 2026-04-30
    """
    if date_from is None and date_to is None and not client_id:
        reader = reader_for(base_path)
        stats = reader.get_all_workers_stats()
        carried = reader.carried_counts()
    else:
        from .selection import RecordFilter, select_records

        record_filter = RecordFilter.from_arguments(date_from, date_to, client_id)
        layout = layout_for(base_path)
        warn_if_no_stats(layout)
        warn_if_config_invalid(base_path)
        selection = select_records(layout, record_filter)
        stats = {row.worker_id or "": _worker_dict(row) for row in summarize_workers(selection.records)}
        carried = [a + b for a, b in zip(selection.carried, selection.carried_left_out)]
    if as_json:
        print_json(stats)
    else:
        _print_workers(stats)
    _echo_note(_carried_note({"orders packed": carried[1], "sessions": carried[2]}, "worker"))


def _print_workers(stats: dict[str, dict[str, Any]]) -> None:
    ordered = sorted(stats.items(), key=lambda pair: (pair[0] == "", pair[0]))
    rows = [
        [
            key or NO_WORKER_LABEL,
            s["sessions"],
            s["orders"],
            s["items"],
            s["timed_sessions"],
            format_duration(s["packing_seconds"]),
            _rate(s["orders_per_hour"]),
            _rate(s["items_per_hour"]),
        ]
        for key, s in ordered
    ]
    print_table(["worker", "sessions", "orders", "items", "timed", "packing time", "orders/h", "items/h"], rows)


@click.command()
@base_path_option
@record_filter_options
@json_option
def daily(base_path: Path, date_from: str | None, date_to: str | None, client_id: str | None, as_json: bool) -> None:
    """Show orders analysed, orders packed and sessions per day and client.

    The day is each record's own local date. Counters that imported v1
    files carried beyond their history have no date and are not shown.

    Example: ufstats daily --client M --from 2026-04-01
    """
    from .selection import RecordFilter

    # Checked here too, so that an error names --from/--to rather than the library's arguments.
    record_filter = RecordFilter.from_arguments(date_from, date_to, client_id)
    reader = reader_for(base_path)
    rows = reader.get_daily_stats(
        client_id=record_filter.client_id, date_from=record_filter.date_from, date_to=record_filter.date_to
    )
    analysed, packed, sessions = reader.carried_counts(record_filter.client_id)
    if as_json:
        print_json(rows)
    else:
        table = [[r["date"], r["client_id"], r["orders_analyzed"], r["orders_packed"], r["sessions"]] for r in rows]
        print_table(["date", "client", "orders analysed", "orders packed", "sessions"], table)
    _echo_note(_carried_note({"orders analysed": analysed, "orders packed": packed, "sessions": sessions}, "date"))

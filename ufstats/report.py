"""`ufstats report --html`: one self-contained HTML page of the statistics.

The page has inline CSS and inline SVG charts (see `charts`), no script and
no links to other files or servers. A Content-Security-Policy meta tag makes
the browser refuse to load anything else, so the page opens offline and
cannot leak a request. Every caller-provided string (client ids, worker ids
and names, session ids, the base path) goes through `html.escape`.
"""

from __future__ import annotations

import logging
from datetime import datetime
from html import escape
from pathlib import Path

from . import __version__
from .atomic import write_atomically
from .charts import Series, bar_chart, day_chart, format_number
from .errors import OutputFileError
from .events import Event
from .layout import Layout
from .output import output_target
from .record_stats import packing_metadata, summarize_clients, summarize_days, summarize_workers
from .selection import RecordFilter, Selection, select_records

log = logging.getLogger("ufstats")

ANALYSED_COLOR = "#4e79a7"
PACKED_COLOR = "#f28e2b"
ITEMS_COLOR = "#59a14f"
LATEST_SESSIONS = 25
MAX_CLIENT_BARS = 20

STYLE = """
body { font: 14px/1.45 system-ui, "Segoe UI", Roboto, Arial, sans-serif; color: #1f2933; margin: 0; background: #f5f7fa; }
main { max-width: 1000px; margin: 0 auto; padding: 24px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 32px 0 8px; }
.meta { color: #52606d; margin: 0; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(140px, 1fr)); gap: 12px; margin: 20px 0; }
.card { background: #fff; border-radius: 8px; padding: 12px 16px; box-shadow: 0 1px 2px rgba(0,0,0,.08); }
.card b { display: block; font-size: 24px; }
.card span { color: #52606d; }
section { background: #fff; border-radius: 8px; padding: 4px 16px 16px; margin-top: 16px; overflow-x: auto; box-shadow: 0 1px 2px rgba(0,0,0,.08); }
table { border-collapse: collapse; width: 100%; margin-top: 8px; }
th, td { padding: 4px 8px; border-bottom: 1px solid #e4e7eb; text-align: left; white-space: nowrap; }
th { white-space: normal; vertical-align: bottom; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
.note { color: #52606d; font-size: 13px; }
svg.chart text { font-size: 12px; fill: #323f4b; }
svg.chart text.axis { fill: #7b8794; font-size: 11px; }
svg.chart text.value { fill: #52606d; font-size: 11px; }
svg.chart line.grid { stroke: #e4e7eb; }
svg.chart line.axis-line { stroke: #9aa5b1; }
"""


def _cell(value: object, numeric: bool = False) -> str:
    if value is None:
        text = "\u2013"
    elif isinstance(value, float):
        text = format_number(value, 1)
    elif isinstance(value, int):
        text = format_number(value)
    else:
        text = str(value)
    css = ' class="n"' if numeric else ""
    return f"<td{css}>{escape(text)}</td>"


def _table(headers: list[str], rows: list[list[object]], numeric: set[int]) -> str:
    numeric_th = '<th class="n">'
    head = "".join(f"{numeric_th if i in numeric else '<th>'}{escape(h)}</th>" for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(_cell(v, i in numeric) for i, v in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M %Z").strip() if moment else "never"


def _headline(selection: Selection, workers: int) -> str:
    analysed, packed, sessions = selection.totals()
    items = sum(event.items_count for event in selection.packing)
    cards = [
        ("orders analysed", analysed),
        ("orders packed", packed),
        ("packing sessions", sessions),
        ("items packed", items),
        ("clients", len({e.client_id for e in selection.records} | set(selection.carried_by_client))),
        ("workers", workers),
    ]
    body = "".join(f'<div class="card"><b>{format_number(v)}</b><span>{escape(k)}</span></div>' for k, v in cards)
    notes = []
    if any(selection.carried):
        notes.append(
            f"The first three include {format_number(selection.carried[0])} orders analysed, "
            f"{format_number(selection.carried[1])} orders packed and {format_number(selection.carried[2])} "
            "sessions that imported v1 files counted without keeping the records. They have no date, worker or "
            "items, so items packed and the charts per day and per worker leave them out."
        )
    if any(selection.carried_left_out):
        notes.append(
            f"Not included because a date filter is set: {format_number(selection.carried_left_out[0])} orders "
            f"analysed, {format_number(selection.carried_left_out[1])} orders packed and "
            f"{format_number(selection.carried_left_out[2])} sessions counted by imported v1 files without dates."
        )
    note_html = "".join(f'<p class="note">{escape(n)}</p>' for n in notes)
    return f'<div class="cards">{body}</div>{note_html}'


def _daily_section(records: list[Event]) -> str:
    days = summarize_days(records, fill_gaps=True)
    if not days:
        return '<section><h2>Orders per day</h2><p class="note">No records in this range.</p></section>'
    chart = day_chart(
        "chart-daily",
        "Orders analysed and packed per day",
        [d.date for d in days],
        [
            Series("orders analysed", ANALYSED_COLOR, [d.orders_analyzed for d in days]),
            Series("orders packed", PACKED_COLOR, [d.orders_packed for d in days]),
        ],
    )
    return (
        f"<section><h2>Orders analysed and packed per day</h2>{chart}"
        f'<p class="note">{len(days)} days from {escape(days[0].date)} to {escape(days[-1].date)}, '
        "by each record's local date. Counters carried from v1 files have no date and are not shown here.</p></section>"
    )


def _client_section(selection: Selection) -> str:
    rows = {c.client_id: c for c in summarize_clients(selection.records)}
    clients = sorted(set(rows) | set(selection.carried_by_client))
    if not clients:
        return '<section><h2>Per client</h2><p class="note">No records in this range.</p></section>'
    table_rows, analysed, packed = [], [], []
    for client_id in clients:
        row = rows.get(client_id)
        carried = selection.carried_by_client.get(client_id, [0, 0, 0])
        counts = [
            (row.orders_analyzed if row else 0) + carried[0],
            (row.orders_packed if row else 0) + carried[1],
            (row.sessions if row else 0) + carried[2],
        ]
        analysed.append(counts[0])
        packed.append(counts[1])
        table_rows.append([client_id, *counts, row.items_packed if row else 0])
        if selection.carried_by_client:
            table_rows[-1].extend(carried[:2])
    order = sorted(range(len(clients)), key=lambda i: -(analysed[i] + packed[i]))[:MAX_CLIENT_BARS]
    chart = bar_chart(
        "chart-clients",
        "Orders analysed and packed per client",
        [clients[i] for i in order],
        [
            Series("orders analysed", ANALYSED_COLOR, [analysed[i] for i in order]),
            Series("orders packed", PACKED_COLOR, [packed[i] for i in order]),
        ],
    )
    shown = "" if len(clients) <= MAX_CLIENT_BARS else f" The chart shows the {MAX_CLIENT_BARS} largest of {len(clients)} clients."
    headers = ["client", "orders analysed", "orders packed", "sessions", "items packed"]
    if selection.carried_by_client:
        headers += ["analysed, from v1 counters", "packed, from v1 counters"]
    table = _table(headers, table_rows, set(range(1, len(headers))))
    return f'<section><h2>Per client</h2>{chart}{table}<p class="note">Sorted by client id.{shown}</p></section>'


def _worker_label(worker_id: str | None, name: str | None) -> str:
    label = worker_id if worker_id is not None else "(no worker)"
    return f"{label} {name}" if name else label


def _worker_section(records: list[Event]) -> tuple[str, int]:
    workers = summarize_workers(records)
    if not workers:
        return '<section><h2>Packing throughput per worker</h2><p class="note">No packing records in this range.</p></section>', 0
    timed = [w for w in workers if w.orders_per_hour is not None]
    chart = ""
    if timed:
        chart = bar_chart(
            "chart-workers",
            "Orders and items packed per hour per worker",
            [_worker_label(w.worker_id, w.worker_name) for w in timed],
            [
                Series("orders per hour", PACKED_COLOR, [w.orders_per_hour or 0.0 for w in timed]),
                Series("items per hour", ITEMS_COLOR, [w.items_per_hour or 0.0 for w in timed]),
            ],
            value_format=lambda v: format_number(v, 1),
        )
    rows = [
        [
            w.worker_id if w.worker_id is not None else "(no worker)",
            w.worker_name or "",
            w.sessions, w.orders, w.items,
            round(w.timed_seconds / 3600, 1),
            w.orders_per_hour, w.items_per_hour,
        ]
        for w in workers
    ]
    table = _table(
        ["worker", "name", "sessions", "orders", "items", "hours timed", "orders / hour", "items / hour"],
        rows,
        {2, 3, 4, 5, 6, 7},
    )
    note = (
        "Rates divide the orders and items of sessions whose metadata has duration_seconds by the hours those "
        "sessions took; sessions without it count in the totals only. Names are the newest worker_name seen."
    )
    return (
        f'<section><h2>Packing throughput per worker</h2>{chart}{table}<p class="note">{escape(note)}</p></section>',
        len(workers),
    )


def _latest_section(records: list[Event]) -> str:
    rows = []
    for event in reversed(records[-LATEST_SESSIONS:]):
        duration = packing_metadata(event)[0] if event.type == "packing" else None
        rows.append(
            [
                event.timestamp[:19].replace("T", " "),
                event.type,
                event.client_id,
                event.session_id,
                event.worker_id or "",
                event.orders_count,
                event.items_count if event.type == "packing" else None,
                round(duration / 60) if duration is not None else None,
            ]
        )
    if not rows:
        return '<section><h2>Latest sessions</h2><p class="note">No records in this range.</p></section>'
    table = _table(
        ["time (local)", "type", "client", "session", "worker", "orders", "items", "minutes"], rows, {5, 6, 7}
    )
    return f"<section><h2>Latest sessions</h2>{table}</section>"


def render_report(selection: Selection, base_path: str) -> str:
    """Build the HTML page for a selection of records."""
    records = selection.records
    worker_html, workers = _worker_section(records)
    if records:
        span = f"{records[0].timestamp[:10]} to {records[-1].timestamp[:10]}"
    else:
        span = "no records"
    record_filter = selection.record_filter
    meta = [
        f"Data: {span} ({format_number(len(records))} records; filter: {record_filter.describe()}).",
        f"Read from {selection.shards} shard{'' if selection.shards == 1 else 's'} at {_when(selection.read_at)}; "
        f"last ufstats merge: {_when(selection.merged_at)}.",
        f"Base path: {base_path}",
    ]
    if selection.damaged_lines:
        meta.append(f"{selection.damaged_lines} damaged shard lines were skipped; run `ufstats merge` to list them.")
    title = "Warehouse statistics" + (f": client {record_filter.client_id}" if record_filter.client_id else "")
    meta_html = "".join(f'<p class="meta">{escape(line)}</p>' for line in meta)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="generator" content="ufstats {escape(__version__)}">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head>\n"
        f"<body><main><h1>{escape(title)}</h1>{meta_html}"
        f"{_headline(selection, workers)}"
        f"{_daily_section(records)}{_client_section(selection)}{worker_html}{_latest_section(records)}"
        "</main></body></html>\n"
    )


def write_report(layout: Layout, output: Path, record_filter: RecordFilter | None = None) -> Selection:
    """Read the shards, render the report and write it to `output` atomically.

    Raises:
        StatsFolderError: the base path does not exist or cannot be reached.
        OutputFileError: `output` cannot be written, exists and is not a
            regular file (a link is followed to its target), or is "-".
    """
    target = output_target(output, "--html")
    selection = select_records(layout, record_filter)
    page = render_report(selection, str(layout.base_path))
    try:
        write_atomically(target, page.encode("utf-8"))
    except OSError as exc:
        raise OutputFileError(
            f"Cannot write the report to {output}: {exc.strerror or exc}. Check that the folder exists and is writable."
        ) from exc
    log.info("report of %d records written to %s", len(selection.records), output)
    return selection

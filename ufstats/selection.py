"""Records chosen by date and client, read straight from the shards.

The HTML report and the exports both start here. `select_records` scans
every shard (deduplicated by event id, like merge) and keeps the analysis and
packing events that pass a `RecordFilter`, oldest first.

Adjustment events, which carry the counter differences of an imported v1
file, are not records: they have no date, session or worker. Their
differences are returned separately as `Selection.carried`, so that
unfiltered totals still equal `ufstats show`. A date filter leaves them out,
because the v1 file did not keep the days on which those orders were counted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime

from .errors import InvalidArgumentError
from .events import Event
from .layout import Layout
from .state import StatsState

log = logging.getLogger("ufstats")


def parse_day(value: str | None, argument: str) -> str | None:
    """Check a YYYY-MM-DD date and return it unchanged (None stays None).

    Raises:
        InvalidArgumentError: the value is not a calendar date in that form.
    """
    if value is None or value == "":
        return None
    try:
        if len(value) != 10:
            raise ValueError("wrong length")
        date.fromisoformat(value)
    except ValueError:
        raise InvalidArgumentError(
            f"Invalid {argument}={value!r}: expected a date as YYYY-MM-DD, e.g. 2026-04-18"
        ) from None
    return value


@dataclass(frozen=True)
class RecordFilter:
    """A record filter: an inclusive date range and one client.

    Dates are compared with the record's own local date, which is the first
    10 characters of its timestamp, so a record made at 23:30 in Kyiv counts
    on that Kyiv day wherever the report is built.
    """

    date_from: str | None = None
    date_to: str | None = None
    client_id: str | None = None

    @classmethod
    def from_arguments(cls, date_from: str | None, date_to: str | None, client_id: str | None) -> RecordFilter:
        """Build a filter from command-line values.

        Raises:
            InvalidArgumentError: a date is not YYYY-MM-DD or the range is empty.
        """
        start = parse_day(date_from, "--from")
        end = parse_day(date_to, "--to")
        if start and end and start > end:
            raise InvalidArgumentError(f"Invalid date range --from {start} --to {end}: --from is after --to")
        # As in v1 history queries, an empty client id means no filter.
        return cls(start, end, client_id or None)

    @property
    def dated(self) -> bool:
        return self.date_from is not None or self.date_to is not None

    def matches(self, event: Event) -> bool:
        if self.client_id is not None and event.client_id != self.client_id:
            return False
        day = event.timestamp[:10]
        if self.date_from is not None and day < self.date_from:
            return False
        if self.date_to is not None and day > self.date_to:
            return False
        return True

    def describe(self) -> str:
        """Return the filter in words, e.g. "client M, 2026-04-01 to 2026-04-18"."""
        parts = []
        if self.client_id is not None:
            parts.append(f"client {self.client_id}")
        if self.dated:
            parts.append(f"{self.date_from or 'first record'} to {self.date_to or 'last record'}")
        return ", ".join(parts) or "all records"


@dataclass
class Selection:
    """The records that passed a filter, and what the shards carried besides."""

    record_filter: RecordFilter
    records: list[Event]
    # Counter differences of imported v1 files that apply under the filter:
    # orders analysed, orders packed, sessions; in total and per client.
    carried: list[int] = field(default_factory=lambda: [0, 0, 0])
    carried_by_client: dict[str, list[int]] = field(default_factory=dict)
    # Adjustments of v1 files left out because the filter has dates.
    carried_left_out: list[int] = field(default_factory=lambda: [0, 0, 0])
    shards: int = 0
    damaged_lines: int = 0
    duplicates: int = 0
    read_at: datetime = field(default_factory=lambda: datetime.now().astimezone())
    # When `ufstats merge` last wrote the checkpoint; None if it never ran.
    merged_at: datetime | None = None

    @property
    def analysis(self) -> list[Event]:
        return [event for event in self.records if event.type == "analysis"]

    @property
    def packing(self) -> list[Event]:
        return [event for event in self.records if event.type == "packing"]

    def totals(self) -> list[int]:
        """Return orders analysed, orders packed and sessions, carried counters included."""
        totals = list(self.carried)
        for event in self.records:
            if event.type == "analysis":
                totals[0] += event.orders_count
            else:
                totals[1] += event.orders_count
                totals[2] += 1
        return totals


def _apply_carried(selection: Selection, state: StatsState) -> None:
    totals, all_clients = state.aggregate.carried_counters()
    by_client = {client_id: counters for client_id, counters in all_clients.items() if any(counters)}
    record_filter = selection.record_filter
    if record_filter.dated:
        if record_filter.client_id is None:
            selection.carried_left_out = totals
        else:
            selection.carried_left_out = list(by_client.get(record_filter.client_id, [0, 0, 0]))
        return
    if record_filter.client_id is None:
        # The v1 file's own totals, which need not equal the sum of its clients.
        selection.carried = totals
        selection.carried_by_client = by_client
    elif record_filter.client_id in by_client:
        counters = by_client[record_filter.client_id]
        selection.carried = list(counters)
        selection.carried_by_client = {record_filter.client_id: list(counters)}


def select_records(layout: Layout, record_filter: RecordFilter | None = None) -> Selection:
    """Read every shard and return the records that pass the filter, oldest first.

    Records are ordered by their instant (UTC), ties by shard and line, and
    counted once per event id as in `ufstats merge`.

    Raises:
        StatsFolderError: the base path does not exist or cannot be reached.
        OSError: a shard cannot be read.
    """
    record_filter = record_filter or RecordFilter()
    layout.require_base_path()
    state = StatsState.scan(layout, history_limit=None)
    aggregate = state.aggregate
    items = sorted(aggregate.analysis.oldest_first() + aggregate.packing.oldest_first())
    selection = Selection(
        record_filter=record_filter,
        records=[item.event for item in items if record_filter.matches(item.event)],
        shards=len(state.shards),
        damaged_lines=len(state.damage),
        duplicates=state.duplicates,
    )
    _apply_carried(selection, state)
    try:
        selection.merged_at = datetime.fromtimestamp(layout.checkpoint_file.stat().st_mtime).astimezone()
    except FileNotFoundError:
        pass
    log.info(
        "selected %d of %d records (%s) from %d shards",
        len(selection.records), len(items), record_filter.describe(), selection.shards,
    )
    return selection

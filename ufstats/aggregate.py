"""Aggregation of events into totals, per-client counters and history.

Counting rules are those of v1: ``orders_analyzed`` sums analysis events,
``orders_packed`` sums packing events, ``sessions`` counts packing events.
Adjustment events add their counter differences. History keeps the newest
events of each kind by their instant (UTC), ties broken by shard and line.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from operator import attrgetter
from typing import Any

import msgspec

from .events import FORMAT_VERSION, Event, check_event, history_entry
from .history import History, HistoryItem
from .record_stats import MAX_DURATION_SECONDS

ANALYSIS = 0
PACKED = 1
SESSIONS = 2


class _PackingMetadata(msgspec.Struct):
    duration_seconds: float | None = None


_packing_metadata_decoder = msgspec.json.Decoder(_PackingMetadata)
_event_id = attrgetter("id")


def _add_counters(target: dict[Any, list[Any]], key: Any, counters: list[Any]) -> None:
    current = target.get(key)
    if current is None:
        target[key] = list(counters)
    else:
        for index, value in enumerate(counters):
            current[index] += value


class Aggregate:
    """Counters and history built from a stream of events."""

    def __init__(self, history_limit: int | None = 1000) -> None:
        self.totals = [0, 0, 0]
        self.by_client: dict[str, list[int]] = {}
        self.workers: dict[str, list[float]] = {}
        # Counters per (day, client); read them through `daily`.
        self._daily: dict[tuple[str, str], list[int]] = {}
        # Returns day counters kept elsewhere (a checkpoint) that add to these.
        # It is called once, when `daily` is first read, so readers that never
        # need them never load them.
        self.daily_loader: Callable[[], dict[tuple[str, str], list[int]]] | None = None
        self.analysis = History(history_limit)
        self.packing = History(history_limit)
        self.events = 0
        self.newest: tuple[float, str] | None = None
        self.imported_sources: set[str] = set()

    def add(self, event: Event, shard: str, line: int) -> None:
        """Count one event; raise `ValueError` if it cannot be counted."""
        _, rejected = self.add_block([event], shard, line, set(), [])
        if rejected:
            raise ValueError(rejected[0][1])

    def add_block(
        self, events: list[Event], shard: str, first_line: int, seen: set[str], counted: list[str]
    ) -> tuple[int, list[tuple[int, str]]]:
        """Count events read from consecutive lines, skipping ids in `seen`.

        `events[i]` is line `first_line + i` of `shard`. The id of each counted
        event is added to `seen` and appended to `counted`. Returns the number
        of events skipped as already seen, and (line, reason) for each event
        that cannot be counted.

        This loop runs once per event of every merge, so everything it uses
        is a local name and a valid record costs no call but the parsing of
        its timestamp and, for packing, of its metadata.
        """
        rejected: list[tuple[int, str]] = []
        duplicates = 0
        # Usually no id of the block was seen before and none repeats in it.
        # Then one C-level set update replaces a lookup and an insert per event,
        # which miss the CPU caches once the set is large, and the id of a
        # rejected event is taken out again. Otherwise the loop checks each id.
        ids = list(map(_event_id, events))
        seen_before = len(seen)
        check_each = not seen.isdisjoint(ids)
        if not check_each:
            seen.update(ids)
            if len(seen) != seen_before + len(ids):
                seen.difference_update(ids)  # None was there before the update.
                check_each = True
        counted_events = 0
        counted_analysis = 0
        counted_packing = 0
        orders_analyzed = 0
        orders_packed = 0
        by_client = self.by_client
        daily = self._daily
        workers = self.workers
        totals = self.totals
        analysis = self.analysis
        analysis_items = analysis.items
        analysis_floor = analysis.floor
        analysis_room = analysis.capacity - len(analysis_items)
        packing = self.packing
        packing_items = packing.items
        packing_floor = packing.floor
        packing_room = packing.capacity - len(packing_items)
        parse = datetime.fromisoformat
        decode_packing_metadata = _packing_metadata_decoder.decode
        newest_epoch = self.newest[0] if self.newest is not None else float("-inf")
        # Counters of one day by client. Lines of a shard are mostly in time
        # order, so the day rarely changes from one line to the next, and a
        # lookup by client id (whose hash Python caches) replaces one by a
        # new (day, client) tuple.
        current_day = ""
        day_by_client: dict[str, list[int]] = {}
        # The day and UTC offset ("+03:00") of the last canonical timestamp, and
        # the epoch seconds of that day's midnight: `moment.timestamp()` costs
        # more than adding the time of day to it.
        zone_day = ""
        zone = ""
        midnight = 0
        line = first_line - 1
        for event in events:
            line += 1
            event_id = event.id
            if check_each and event_id in seen:
                duplicates += 1
                continue
            kind = event.type
            client_id = event.client_id
            orders = event.orders_count
            timestamp = event.timestamp
            moment = None
            # A valid record with an offset-aware timestamp is checked here;
            # anything else goes through `check_event`, which also words the reason.
            if (
                event.format == FORMAT_VERSION
                and event_id
                and kind != "adjustment"
                and client_id
                and event.session_id is not None
                and orders >= 0
                and event.items_count >= 0
            ):
                try:
                    moment = parse(timestamp)
                except ValueError:
                    moment = None
                if moment is not None and moment.tzinfo is None:
                    moment = None
            day_text = timestamp[:10]
            if moment is None:
                try:
                    moment = check_event(event)
                except ValueError as exc:
                    rejected.append((line, str(exc)))
                    if not check_each:
                        seen.discard(event_id)
                    continue
                epoch = moment.timestamp()
            elif day_text == zone_day and timestamp[-6:] == zone:
                # Integer microseconds, then one division: the same float as `timestamp()`.
                seconds = midnight + moment.hour * 3600 + moment.minute * 60 + moment.second
                epoch = (seconds * 1_000_000 + moment.microsecond) / 1_000_000
            else:
                epoch = moment.timestamp()
                if timestamp[-6] in "+-" and timestamp[-3] == ":":
                    zone_day = day_text
                    zone = timestamp[-6:]
                    midnight = int(moment.replace(hour=0, minute=0, second=0, microsecond=0).timestamp())
            if check_each:
                seen.add(event_id)
                counted.append(event_id)
            counted_events += 1
            if epoch > newest_epoch:
                newest_epoch = epoch
                self.newest = (epoch, timestamp)
            if kind == "adjustment":
                self._add_adjustment(event)
                continue
            client = by_client.get(client_id)  # type: ignore[arg-type]
            if client is None:
                client = by_client[client_id] = [0, 0, 0]  # type: ignore[index]
            if day_text != current_day:
                current_day = day_text
                day_by_client = {}
            day = day_by_client.get(client_id)  # type: ignore[arg-type]
            if day is None:
                day = daily.get((day_text, client_id))  # type: ignore[arg-type]
                if day is None:
                    day = daily[(day_text, client_id)] = [0, 0, 0]  # type: ignore[index]
                day_by_client[client_id] = day  # type: ignore[index]
            item = (epoch, shard, line, event)
            if kind == "analysis":
                orders_analyzed += orders
                client[ANALYSIS] += orders
                day[ANALYSIS] += orders
                counted_analysis += 1
                if item > analysis_floor:
                    analysis_items.append(item)
                    analysis_room -= 1
                    if analysis_room <= 0:
                        analysis.prune()
                        analysis_floor = analysis.floor
                        analysis_room = analysis.capacity - len(analysis_items)
                continue
            orders_packed += orders
            client[PACKED] += orders
            client[SESSIONS] += 1
            day[PACKED] += orders
            day[SESSIONS] += 1
            counted_packing += 1
            if item > packing_floor:
                packing_items.append(item)
                packing_room -= 1
                if packing_room <= 0:
                    packing.prune()
                    packing_floor = packing.floor
                    packing_room = packing.capacity - len(packing_items)
            worker_id = event.worker_id
            worker = workers.get(worker_id if worker_id is not None else "")
            if worker is None:
                # orders, items, sessions, seconds timed, sessions timed,
                # orders of timed sessions, items of timed sessions
                worker = workers[worker_id if worker_id is not None else ""] = [0, 0, 0, 0.0, 0, 0, 0]
            items = event.items_count
            worker[0] += orders
            worker[1] += items
            worker[2] += 1
            metadata = event.metadata
            if len(metadata):
                # Only sessions with a duration from 0 to MAX_DURATION_SECONDS are timed
                # (the rule of `record_stats.valid_duration`; NaN fails both comparisons).
                try:
                    duration = decode_packing_metadata(metadata).duration_seconds
                except msgspec.MsgspecError:
                    duration = None
                if duration is not None and 0 <= duration <= MAX_DURATION_SECONDS:
                    worker[3] += duration
                    worker[4] += 1
                    worker[5] += orders
                    worker[6] += items
        if not check_each:
            if rejected:
                rejected_lines = {line for line, _ in rejected}
                ids = [event_id for index, event_id in enumerate(ids) if first_line + index not in rejected_lines]
            counted.extend(ids)
        self.events += counted_events
        totals[ANALYSIS] += orders_analyzed
        totals[PACKED] += orders_packed
        totals[SESSIONS] += counted_packing
        analysis.total += counted_analysis
        packing.total += counted_packing
        return duplicates, rejected

    def absorb(self, other: Aggregate) -> None:
        """Add the counts of an aggregate built from other events, read after this one's.

        Counters add up exactly; session durations are floats, so their sums
        can differ from one pass over all events in the last bits.
        """
        for index in range(3):
            self.totals[index] += other.totals[index]
        for key, counters in other.by_client.items():
            _add_counters(self.by_client, key, counters)
        for key, counters in other.workers.items():
            _add_counters(self.workers, key, counters)
        for key, counters in other.daily.items():
            _add_counters(self._daily, key, counters)
        self.analysis.absorb(other.analysis)
        self.packing.absorb(other.packing)
        self.events += other.events
        # On equal instants the earlier event stays the newest, as in one pass.
        if other.newest is not None and (self.newest is None or other.newest[0] > self.newest[0]):
            self.newest = other.newest
        self.imported_sources.update(other.imported_sources)

    def _add_adjustment(self, event: Event) -> None:
        for index, name in enumerate(("orders_analyzed", "orders_packed", "sessions")):
            self.totals[index] += (event.totals or {}).get(name, 0)
        for client_id, deltas in (event.by_client or {}).items():
            client = self.by_client.setdefault(client_id, [0, 0, 0])
            for index, name in enumerate(("orders_analyzed", "orders_packed", "sessions")):
                client[index] += deltas.get(name, 0)
        if event.source_sha256:
            self.imported_sources.add(event.source_sha256)

    # Views of the aggregate -------------------------------------------------

    @property
    def daily(self) -> dict[tuple[str, str], list[int]]:
        """Orders analysed, orders packed and sessions per (day, client)."""
        if self.daily_loader is not None:
            loader, self.daily_loader = self.daily_loader, None
            for key, counters in loader().items():
                _add_counters(self._daily, key, counters)
        return self._daily

    @daily.setter
    def daily(self, value: dict[tuple[str, str], list[int]]) -> None:
        self._daily = value
        self.daily_loader = None

    def carried_counters(self) -> tuple[list[int], dict[str, list[int]]]:
        """Return the counters that adjustment events added, in total and per client.

        Every analysis or packing record adds to its (day, client) counters
        and an adjustment does not, so the counters minus the day sums are
        what imported v1 files carried without records.
        """
        totals = list(self.totals)
        by_client = {client_id: list(counters) for client_id, counters in self.by_client.items()}
        for (_, client_id), day in self.daily.items():
            client = by_client[client_id]
            for index in range(3):
                totals[index] -= day[index]
                client[index] -= day[index]
        return totals, by_client

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

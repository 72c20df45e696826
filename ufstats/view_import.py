"""Recovering records that a v1 tool wrote into the view that merge made.

During a rollout, a PC still running v1 reads `Stats/global_stats.json`
(written by `ufstats merge`), appends its record to the history, adds it to
the counters and writes the file back. Those records exist nowhere else. The
import keeps only the history entries that the shards do not already hold;
the file's counters are not carried, because every other record in them is
already counted from the shards, and each kept entry counts itself.
"""

from __future__ import annotations

import json

from .events import FORMAT_VERSION, Event, history_entry
from .layout import Layout
from .state import StatsState


def _entry_key(event: Event) -> str:
    entry = history_entry(event)
    return json.dumps([event.type, entry], sort_keys=True, ensure_ascii=False, default=str)


def entries_in_shards(layout: Layout) -> set[str]:
    """Return a key for every analysis and packing entry that the shards hold."""
    aggregate = StatsState.scan(layout, history_limit=None).aggregate
    keys = set()
    for history in (aggregate.analysis, aggregate.packing):
        for item in history.oldest_first():
            keys.add(_entry_key(item.event))
    return keys


def keep_new_entries(layout: Layout, events: list[Event], source_sha256: str) -> list[Event]:
    """Return the events of entries the shards lack, behind an adjustment that changes nothing.

    `events` come from `build_events` on the changed view: an adjustment
    first, then one event per history entry. The new adjustment carries no
    counter differences, only `source_sha256`, so that merge may replace
    the changed view afterwards.
    """
    known = entries_in_shards(layout)
    adjustment = events[0]
    marker = Event(
        format=FORMAT_VERSION,
        id=f"view-{source_sha256[:29]}",
        type="adjustment",
        workstation=adjustment.workstation,
        timestamp=adjustment.timestamp,
        assumed_utc_offset=adjustment.assumed_utc_offset,
        totals={},
        by_client={},
        source=adjustment.source,
        source_sha256=source_sha256,
    )
    return [marker, *(event for event in events[1:] if _entry_key(event) not in known)]

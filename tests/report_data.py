"""Shard files with chosen timestamps, for report and export tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ufstats.events import FORMAT_VERSION, Event, encode_line, new_event_id
from ufstats.layout import Layout
from ufstats.validation import encode_metadata

LEGACY_FILE = Path(__file__).parent / "data" / "global_stats.json"


def record(kind: str, timestamp: str, client: str, orders: int, items: int = 0, worker: str | None = None,
           metadata: dict[str, Any] | None = None, session: str = "s1") -> Event:
    return Event(
        format=FORMAT_VERSION,
        id=new_event_id(),
        type=kind,  # type: ignore[arg-type]
        workstation="pc1",
        timestamp=timestamp,
        client_id=client,
        session_id=session,
        worker_id=worker,
        orders_count=orders,
        items_count=items,
        metadata=encode_metadata(metadata),
    )


def write_shard(base_path: Path, events: list[Event], workstation: str = "pc1") -> None:
    shards = Layout(base_path).shards_dir
    shards.mkdir(parents=True, exist_ok=True)
    with open(shards / f"{workstation}.jsonl", "ab") as handle:
        for event in events:
            handle.write(encode_line(event))


def sample_events() -> list[Event]:
    """Two days around midnight in Kyiv, two clients, a Cyrillic worker name and nested metadata."""
    return [
        record("analysis", "2026-04-17T09:00:00+03:00", "M", 100, metadata={"items_count": 250}),
        record("analysis", "2026-04-17T23:30:00+03:00", "K", 20),
        record("packing", "2026-04-17T23:50:00+03:00", "M", 60, 150, "001",
               {"duration_seconds": 1800.5, "worker_name": "Олена", "courier": {"name": "Нова пошта", "parcels": 3}}),
        # 2026-04-17 21:10 UTC, but the 18th on the clock where it was recorded.
        record("packing", "2026-04-18T00:10:00+03:00", "M", 40, 90, "002", {"worker_name": "Петро", "tags": ["a", "b"]}),
        record("packing", "2026-04-18T10:00:00+03:00", "K", 20, 35, None, {"duration_seconds": 900}),
    ]

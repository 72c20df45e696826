"""The single-file statistics design that ufstats replaces, for comparison.

Written for the benchmark from the design's description, not from its code:
every PC records into one `Stats/global_stats.json` on the file server.
A record takes one global lock, an OS lock on a lock file beside the JSON
file, so it covers every process on every PC. Under it, the record reads and
parses the whole file, adds the entry to the history and the counters, and
rewrites the whole file as indented JSON, as the v1 file is. The rewrite
goes to a temporary file that is flushed to disk and renamed over the old
one, and the lock is released after the rename. A crash never leaves half a
file, and the flush gives it the same durability as an ufstats record, which
also flushes each line to disk.

History is uncapped by default, so the comparison is at the same history
size; `history_cap` restores the design's cap of 1000 entries per kind.
"""

from __future__ import annotations

import json
import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import portalocker

LOCK_TIMEOUT_SECONDS = 30.0


def empty_document() -> dict[str, Any]:
    """Return the document of a folder where nothing was recorded yet."""
    return {
        "total_orders_analyzed": 0,
        "total_orders_packed": 0,
        "total_sessions": 0,
        "by_client": {},
        "analysis_history": [],
        "packing_history": [],
        "last_updated": None,
        "version": "1.0",
    }


class SingleFileStats:
    """Records into one JSON file under one global lock, rewriting it each time."""

    def __init__(self, base_path: Path, history_cap: int | None = None) -> None:
        self.stats_dir = Path(base_path) / "Stats"
        self.path = self.stats_dir / "global_stats.json"
        self.lock_path = self.stats_dir / "global_stats.json.lock"
        self.history_cap = history_cap
        self.stats_dir.mkdir(parents=True, exist_ok=True)

    def record_analysis(self, client_id: str, session_id: str, orders_count: int, metadata: dict | None = None) -> None:
        """Add one analysis entry and its counters."""
        entry = {"timestamp": _now(), "client_id": client_id, "session_id": session_id, "orders_count": orders_count}
        if metadata is not None:
            entry["metadata"] = metadata
        self._update("analysis_history", entry, client_id, analyzed=orders_count)

    def record_packing(
        self,
        client_id: str,
        session_id: str,
        worker_id: str | None,
        orders_count: int,
        items_count: int,
        metadata: dict | None = None,
    ) -> None:
        """Add one packing entry and its counters."""
        entry = {
            "timestamp": _now(),
            "client_id": client_id,
            "session_id": session_id,
            "worker_id": worker_id,
            "orders_count": orders_count,
            "items_count": items_count,
        }
        if metadata is not None:
            entry["metadata"] = metadata
        self._update("packing_history", entry, client_id, packed=orders_count, sessions=1)

    def _update(self, history_key: str, entry: dict, client_id: str, analyzed: int = 0, packed: int = 0, sessions: int = 0) -> None:
        with portalocker.Lock(self.lock_path, mode="a", timeout=LOCK_TIMEOUT_SECONDS, check_interval=0.005):
            document = self.load()
            document["total_orders_analyzed"] += analyzed
            document["total_orders_packed"] += packed
            document["total_sessions"] += sessions
            client = document["by_client"].setdefault(
                client_id, {"orders_analyzed": 0, "orders_packed": 0, "sessions": 0}
            )
            client["orders_analyzed"] += analyzed
            client["orders_packed"] += packed
            client["sessions"] += sessions
            history = document[history_key]
            history.append(entry)
            if self.history_cap is not None and len(history) > self.history_cap:
                del history[: len(history) - self.history_cap]
            document["last_updated"] = entry["timestamp"]
            self.save(document)

    def load(self) -> dict[str, Any]:
        """Read and parse the whole file (an empty document if there is none)."""
        try:
            with open(self.path, encoding="utf-8") as handle:
                return json.load(handle)
        except FileNotFoundError:
            return empty_document()

    def save(self, document: dict[str, Any]) -> None:
        """Rewrite the whole file: temporary file, flush to disk, rename over."""
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(document, handle, indent=2, ensure_ascii=False)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.path)

    def get_global_stats(self) -> dict[str, Any]:
        """Return the totals; a read parses the whole file too."""
        document = self.load()
        return {
            "total_orders_analyzed": document["total_orders_analyzed"],
            "total_orders_packed": document["total_orders_packed"],
            "total_sessions": document["total_sessions"],
            "last_updated": document["last_updated"],
        }


def _now() -> str:
    return datetime.now().astimezone().isoformat()


def write_history(base_path: Path, entries: int) -> int:
    """Write a single-file document with `entries` history entries, half of each kind.

    Returns the file size in bytes. Entries look like the ones ufstats
    benchmarks generate: 20 clients, 30 workers, small metadata.
    """
    stats = SingleFileStats(base_path)
    document = empty_document()
    started = time.time() - entries * 900
    for number in range(entries):
        client = f"CL{number % 20 + 1:03d}"
        orders = number % 80 + 1
        stamp = datetime.fromtimestamp(started + number * 900).astimezone().isoformat()
        counters = document["by_client"].setdefault(client, {"orders_analyzed": 0, "orders_packed": 0, "sessions": 0})
        if number % 2:
            document["packing_history"].append(
                {
                    "timestamp": stamp,
                    "client_id": client,
                    "session_id": f"{client}-{number}",
                    "worker_id": f"worker-{number % 30 + 1:02d}",
                    "orders_count": orders,
                    "items_count": orders * 3,
                    "metadata": {"duration_seconds": 600.5, "packing_list": f"PL-{number}"},
                }
            )
            document["total_orders_packed"] += orders
            document["total_sessions"] += 1
            counters["orders_packed"] += orders
            counters["sessions"] += 1
        else:
            document["analysis_history"].append(
                {
                    "timestamp": stamp,
                    "client_id": client,
                    "session_id": f"{client}-{number}",
                    "orders_count": orders,
                    "metadata": {"fulfillable_orders": orders, "courier": "DHL"},
                }
            )
            document["total_orders_analyzed"] += orders
            counters["orders_analyzed"] += orders
        document["last_updated"] = stamp
    stats.save(document)
    return stats.path.stat().st_size

"""Import of a v1 `global_stats.json` into a shard of its own.

Each v1 history entry becomes one event with its fields and timestamp string
unchanged. v1 capped each history at 1000 entries while its counters kept
counting, so one adjustment event carries the difference between the file's
counters and the sums of its history; after import the totals and every
`by_client` entry equal the file's exactly.

Event ids are derived from the file's content, so importing the same file
twice (even re-saved with another encoding) counts nothing twice. The shard
is written to a temporary file and renamed into place, so an import is
complete or absent, never half done. The source file is only read.

v1 tools on Windows wrote files with or without a UTF-8 byte-order mark,
with bare NaN/Infinity tokens (Python's `json`), and sometimes numbers where
ids were expected; all of these are accepted. Naive timestamps (the Shopify
tool wrote local time without offset) are ordered using the UTC offset of
the given time zone at that moment, by default this computer's local zone.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone, tzinfo
from pathlib import Path
from typing import Any

import msgspec

from .atomic import write_atomically
from .errors import LegacyImportError
from .events import COUNTER_NAMES, FORMAT_VERSION, Event, decode_line, encode_line
from .checkpoint import read_checkpoint_view_sha
from .layout import Layout
from .merge import VIEW_VERSION
from .validation import INT64_MAX, MAX_COUNT, InvalidRecordError, encode_metadata, to_json_value
from .view_import import keep_new_entries

V1_KEYS = {"total_orders_analyzed", "total_orders_packed", "total_sessions", "by_client"}
DEVENV_KEYS = {"total_analyses", "clients"}
# History entries converted between two progress calls.
PROGRESS_STEP = 500


@dataclass
class ImportResult:
    shard: Path
    analysis_events: int
    packing_events: int
    already_imported: bool
    schema: str
    notes: list[str]


def _fail(source: Path, where: str, problem: str) -> LegacyImportError:
    return LegacyImportError(f"{source}: {where}: {problem}. Nothing was imported.")


def parse_legacy_file(source: Path) -> tuple[dict[str, Any], bytes]:
    """Read and parse a v1 file; raise `LegacyImportError` with the position of a problem."""
    try:
        raw = source.read_bytes()
    except FileNotFoundError:
        raise LegacyImportError(f"{source}: file not found. Give the path of a v1 global_stats.json.") from None
    except OSError as exc:
        raise LegacyImportError(f"{source}: cannot be read: {exc}") from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _fail(source, f"byte {exc.start}", "not UTF-8 text") from None
    if not text.strip():
        raise _fail(source, "line 1", "the file is empty")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _fail(
            source,
            f"line {exc.lineno} column {exc.colno} (character {exc.pos})",
            f"invalid JSON ({exc.msg}); the file is truncated or damaged",
        ) from None
    if not isinstance(document, dict):
        raise _fail(source, "top level", f"expected a JSON object, found {type(document).__name__}")
    return document, raw


def _as_id(value: Any, where: str, source: Path, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or value is None:
        raise _fail(source, where, f"expected a string id, found {value!r}")
    if isinstance(value, (int, float)) and not (isinstance(value, float) and not math.isfinite(value)):
        return str(int(value)) if float(value).is_integer() else str(value)
    if isinstance(value, str) and value:
        return value
    raise _fail(source, where, f"expected a non-empty string id, found {value!r}")


def _as_count(value: Any, where: str, source: Path, maximum: int = INT64_MAX) -> int:
    """Return a v1 counter or count as int: a whole number from 0 to `maximum`.

    History counts are bounded like recorded ones (`MAX_COUNT`); counters
    sum many sessions, so they only have to fit in a signed 64-bit integer.
    """
    count: int | None = None
    if isinstance(value, bool):
        count = None
    elif isinstance(value, int):
        count = value
    elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
        count = int(value)
    elif isinstance(value, str) and value.strip().lstrip("-").isdigit():
        count = int(value)
    if count is None:
        raise _fail(source, where, f"expected a whole number, found {value!r}")
    if count < 0:
        raise _fail(source, where, f"expected a count of 0 or more, found {value!r}")
    if count > maximum:
        raise _fail(source, where, f"expected a count of at most {maximum:,}, found {value!r}")
    return count


def _offset_text(moment: datetime) -> str:
    offset = moment.utcoffset()
    assert offset is not None
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _assumed_offset(timestamp: str, zone: tzinfo | None) -> str | None:
    moment = datetime.fromisoformat(timestamp)
    if moment.tzinfo is not None:
        return None
    located = moment.replace(tzinfo=zone) if zone is not None else moment.astimezone()
    return _offset_text(located)


def _event_id(kind: str, entry: Any, occurrence: int) -> str:
    canonical = json.dumps([kind, entry, occurrence], sort_keys=True, ensure_ascii=False, default=str)
    return "v1-" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:29]


class _Converter:
    """Turns the entries of one v1 document into events."""

    def __init__(self, source: Path, workstation: str, zone: tzinfo | None) -> None:
        self.source = source
        self.workstation = workstation
        self.zone = zone
        self.occurrences: Counter[str] = Counter()

    def timestamp(self, value: Any, where: str) -> tuple[str, str | None]:
        if not isinstance(value, str):
            raise _fail(self.source, where, f"expected an ISO 8601 timestamp, found {value!r}")
        try:
            return value, _assumed_offset(value, self.zone)
        except ValueError:
            raise _fail(self.source, where, f"invalid timestamp {value!r}") from None

    def history_event(self, kind: str, index: int, entry: Any) -> Event:
        where = f"{kind}_history[{index}]"
        if not isinstance(entry, dict):
            raise _fail(self.source, where, f"expected an object, found {type(entry).__name__}")
        timestamp, offset = self.timestamp(entry.get("timestamp"), f"{where}.timestamp")
        key = json.dumps([kind, entry], sort_keys=True, ensure_ascii=False, default=str)
        occurrence = self.occurrences[key]
        self.occurrences[key] += 1
        metadata = entry.get("metadata")
        if "metadata" in entry and not isinstance(metadata, dict):
            raise _fail(self.source, f"{where}.metadata", f"expected an object, found {metadata!r}")
        try:
            converted = to_json_value(metadata) if "metadata" in entry else None
        except InvalidRecordError as exc:
            raise _fail(self.source, f"{where}.metadata", str(exc)) from None
        event = Event(
            format=FORMAT_VERSION,
            id=_event_id(kind, entry, occurrence),
            type=kind,  # type: ignore[arg-type]
            workstation=self.workstation,
            timestamp=timestamp,
            assumed_utc_offset=offset,
            client_id=_as_id(entry.get("client_id"), f"{where}.client_id", self.source),
            session_id=_as_id(entry.get("session_id"), f"{where}.session_id", self.source),
            orders_count=_as_count(entry.get("orders_count", 0), f"{where}.orders_count", self.source, MAX_COUNT),
            metadata=encode_metadata(converted),
        )
        if kind == "packing":
            event.worker_id = _as_id(entry.get("worker_id"), f"{where}.worker_id", self.source, optional=True)
            event.items_count = _as_count(entry.get("items_count", 0), f"{where}.items_count", self.source, MAX_COUNT)
        return event


def _sums(events: list[Event]) -> tuple[list[int], dict[str, list[int]]]:
    totals = [0, 0, 0]
    by_client: dict[str, list[int]] = {}
    for event in events:
        client = by_client.setdefault(event.client_id or "", [0, 0, 0])
        if event.type == "analysis":
            totals[0] += event.orders_count
            client[0] += event.orders_count
        else:
            totals[1] += event.orders_count
            totals[2] += 1
            client[1] += event.orders_count
            client[2] += 1
    return totals, by_client


def _document_counters(document: dict[str, Any], source: Path) -> tuple[list[int], dict[str, list[int]]]:
    totals = [
        _as_count(document.get(f"total_{name}", 0), f"total_{name}", source) for name in COUNTER_NAMES
    ]
    by_client_raw = document.get("by_client", {})
    if not isinstance(by_client_raw, dict):
        raise _fail(source, "by_client", f"expected an object, found {type(by_client_raw).__name__}")
    by_client = {}
    for client_id, counters in by_client_raw.items():
        if not isinstance(counters, dict):
            raise _fail(source, f"by_client[{client_id!r}]", "expected an object")
        by_client[client_id] = [
            _as_count(counters.get(name, 0), f"by_client[{client_id!r}].{name}", source)
            for name in COUNTER_NAMES
        ]
    return totals, by_client


def _devenv_as_v1(document: dict[str, Any], source: Path, notes: list[str]) -> dict[str, Any]:
    """Map the developer set-up schema (total_analyses, clients) onto v1 keys."""
    clients = document.get("clients", {})
    if not isinstance(clients, dict):
        raise _fail(source, "clients", f"expected an object, found {type(clients).__name__}")
    by_client = {}
    for client_id, counters in clients.items():
        if not isinstance(counters, dict):
            raise _fail(source, f"clients[{client_id!r}]", "expected an object")
        by_client[client_id] = {name: counters.get(name, 0) for name in COUNTER_NAMES}
    for name in ("total_analyses", "total_items_analyzed"):
        if _as_count(document.get(name, 0), name, source):
            notes.append(f"{name}={document[name]} has no place in the v1 view and was not carried over")
    return {
        "total_orders_analyzed": document.get("total_orders_analyzed", 0),
        "by_client": by_client,
        "last_updated": document.get("last_updated"),
    }


def build_events(
    document: dict[str, Any],
    source: Path,
    workstation: str,
    source_sha256: str,
    zone: tzinfo | None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[Event], str, list[str]]:
    """Convert a parsed v1 document into events; return (events, schema name, notes).

    `progress`, if given, is called with (entries converted, entries in total)
    every `PROGRESS_STEP` history entries and at the end.
    """
    notes: list[str] = []
    keys = set(document)
    if keys & DEVENV_KEYS and not keys & {"by_client", "analysis_history", "packing_history"}:
        schema = "devenv"
        document = _devenv_as_v1(document, source, notes)
    elif keys & V1_KEYS or "analysis_history" in keys or "packing_history" in keys:
        schema = "v1"
    else:
        raise _fail(
            source,
            "top level",
            "not a v1 statistics file: expected keys such as "
            f"{', '.join(sorted(V1_KEYS))}, found {', '.join(sorted(keys)) or 'none'}",
        )
    converter = _Converter(source, workstation, zone)
    events: list[Event] = []
    histories = {kind: document.get(f"{kind}_history", []) for kind in ("analysis", "packing")}
    for kind, entries in histories.items():
        if not isinstance(entries, list):
            raise _fail(source, f"{kind}_history", f"expected a list, found {type(entries).__name__}")
    total = sum(len(entries) for entries in histories.values())
    for kind, entries in histories.items():
        for i, entry in enumerate(entries):
            events.append(converter.history_event(kind, i, entry))
            if progress is not None and len(events) % PROGRESS_STEP == 0:
                progress(len(events), total)
    if progress is not None:
        progress(total, total)
    totals, by_client = _document_counters(document, source)
    history_totals, history_by_client = _sums(events)
    delta_totals = {name: totals[i] - history_totals[i] for i, name in enumerate(COUNTER_NAMES)}
    delta_clients = {}
    for client_id in list(by_client) + [c for c in history_by_client if c not in by_client]:
        wanted = by_client.get(client_id)
        if wanted is None:
            notes.append(f"client {client_id!r} has history but no by_client entry; its history still counts")
            continue
        have = history_by_client.get(client_id, [0, 0, 0])
        delta_clients[client_id] = {name: wanted[i] - have[i] for i, name in enumerate(COUNTER_NAMES)}
    last_updated = document.get("last_updated")
    if isinstance(last_updated, str):
        stamp, offset = converter.timestamp(last_updated, "last_updated")
    elif events:
        newest = max(events, key=lambda e: (datetime.fromisoformat(e.timestamp).replace(tzinfo=None)))
        stamp, offset = newest.timestamp, newest.assumed_utc_offset
    else:
        stamp, offset = datetime.now(timezone.utc).isoformat(), None
    adjustment = Event(
        format=FORMAT_VERSION,
        # Derived from the file's counters, not its bytes: the same file saved
        # again (another encoding, a byte-order mark) gets the same id.
        id=_event_id("adjustment", [totals, by_client, delta_totals, delta_clients], 0),
        type="adjustment",
        workstation=workstation,
        timestamp=stamp,
        assumed_utc_offset=offset,
        totals=delta_totals,
        by_client=delta_clients,
        source=source.name,
        source_sha256=source_sha256,
    )
    # The adjustment goes first so that clients keep the file's order.
    return [adjustment, *events], schema, notes


def resolve_zone(name: str | None) -> tzinfo | None:
    """Return the time zone for naive timestamps (None: this computer's local zone)."""
    if name is None:
        return None
    try:
        from zoneinfo import ZoneInfo
        return ZoneInfo(name)
    except Exception as exc:  # noqa: BLE001 - zoneinfo raises several unrelated types
        raise LegacyImportError(
            f"Unknown time zone {name!r} ({exc}); use an IANA name such as Europe/Kyiv"
        ) from None


def earlier_import_zone(layout: Layout) -> str | None:
    """Return the --timezone that an earlier import of a v1 file used, if any."""
    for name in layout.shard_names():
        if not name.startswith("legacy-"):
            continue
        try:
            with open(layout.shards_dir / f"{name}.jsonl", "rb") as handle:
                first_line = handle.readline()
            adjustment = decode_line(first_line.rstrip(b"\n"))
        except (OSError, msgspec.MsgspecError, ValueError):
            continue
        if adjustment.type == "adjustment" and adjustment.timezone:
            return adjustment.timezone
    return None


def import_legacy(
    layout: Layout,
    source: Path,
    zone_name: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ImportResult:
    """Import a v1 statistics file into `Stats/shards/legacy-<hash>.jsonl`.

    `progress` is passed to `build_events`.
    """
    layout.require_base_path()
    document, raw = parse_legacy_file(source)
    digest = hashlib.sha256(raw).hexdigest()
    if digest == read_checkpoint_view_sha(layout):
        raise LegacyImportError(
            f"{source} is the view that `ufstats merge` wrote last: its records are already in "
            "the shards, and importing it would count them twice. Nothing was imported."
        )
    changed_view = document.get("version") == VIEW_VERSION
    earlier_zone = earlier_import_zone(layout) if changed_view and zone_name is None else None
    zone = resolve_zone(zone_name or earlier_zone)
    workstation = f"legacy-{digest[:12]}"
    events, schema, notes = build_events(document, source, workstation, digest, zone, progress)
    events[0].timezone = zone_name or earlier_zone
    if earlier_zone is not None:
        notes.append(f"naive timestamps were read in {earlier_zone}, the --timezone of the earlier import")
    if changed_view:
        # A view that merge wrote and something changed since: a v1 tool
        # still running on some PC adds its records to it.
        events = keep_new_entries(layout, events, digest)
        schema = "changed view"
        notes.append(
            f"{source} was written by `ufstats merge` and changed since, probably by a v1 tool "
            f"that still runs on some PC; imported only the {len(events) - 1} history entries "
            "that the shards lack. Update that PC to ufstats."
        )
    data = b"".join(encode_line(event) for event in events)
    shard = layout.shard_path(workstation)
    counts = Counter(event.type for event in events)
    result = ImportResult(shard, counts["analysis"], counts["packing"], False, schema, notes)
    if shard.exists():
        # The shard is named by the file's SHA-256, so these exact bytes were
        # imported before, perhaps from another file name.
        existing = shard.read_bytes()
        first_line = existing.split(b"\n", 1)[0]
        try:
            events[0].source = decode_line(first_line).source
        except (msgspec.MsgspecError, ValueError):
            pass
        if existing == b"".join(encode_line(event) for event in events):
            result.already_imported = True
            return result
        raise LegacyImportError(
            f"{source} was already imported into {shard} with other settings "
            "(for example another --timezone). Nothing was imported."
        )
    layout.shards_dir.mkdir(parents=True, exist_ok=True)
    write_atomically(shard, data)
    return result

"""Events: the records stored one per line in a shard, and their JSON format.

An *event* is one JSON object on one line of a shard file. Three types exist:

- ``analysis``: one `record_analysis` call (Shopify Fulfillment Tool);
- ``packing``: one `record_packing` call (Packing Tool);
- ``adjustment``: counter differences carried over from a v1 file whose
  counters kept counting after its history was capped at 1000 entries.

See the README ("Shard line format") for the field list.
"""

from __future__ import annotations

import os
import time
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

import msgspec

FORMAT_VERSION = 1

EventType = Literal["analysis", "packing", "adjustment"]
COUNTER_NAMES = ("orders_analyzed", "orders_packed", "sessions")


# The "no metadata" value. msgspec leaves a field out of the line only when it
# is this very object, so every event without metadata must share it.
NO_METADATA = msgspec.Raw()


# gc=False: the garbage collector does not track events, which saves time
# when merge decodes millions. An event holds only strings, numbers and dicts
# of those, so it can never be part of a reference cycle.
class Event(msgspec.Struct, omit_defaults=True, kw_only=True, gc=False):
    """One line of a shard."""

    format: int
    id: str
    type: EventType
    workstation: str
    timestamp: str
    machine: str | None = None
    client_id: str | None = None
    session_id: str | None = None
    worker_id: str | None = None
    orders_count: int = 0
    items_count: int = 0
    # Free-form caller data, kept undecoded until a history entry needs it.
    # An empty Raw means "no metadata" and is left out of the line.
    metadata: msgspec.Raw = NO_METADATA
    # Only imported v1 events whose timestamp has no UTC offset carry this:
    # the offset ("+02:00") used to order them against offset-aware events.
    assumed_utc_offset: str | None = None
    # Only adjustment events: counter differences, in total and per client.
    totals: dict[str, int] | None = None
    by_client: dict[str, dict[str, int]] | None = None
    source: str | None = None
    source_sha256: str | None = None
    # Only adjustment events of an import: the --timezone given for naive
    # timestamps (None: the importing computer's local zone).
    timezone: str | None = None


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Event)


# Bits that make 128 random bits a version 4 UUID (RFC 4122): the variant
# bits (10) at bits 62-63 and the version (0100) at bits 76-79.
_UUID4_CLEARED = ~((0xC000 << 48) | (0xF000 << 64)) & ((1 << 128) - 1)
_UUID4_SET = (0x8000 << 48) | (4 << 76)
# Local UTC offsets in seconds, and their tzinfo, so that a timestamp creates none.
_local_zones: dict[int, timezone] = {}


def new_event_id() -> str:
    """Return a fresh random event id: a version 4 UUID as 32 hex digits.

    This is the value of `uuid.uuid4().hex`, made without a `uuid.UUID`
    object, because every record makes one.
    """
    value = int.from_bytes(os.urandom(16), "big")
    return f"{(value & _UUID4_CLEARED) | _UUID4_SET:032x}"


def now_timestamp() -> str:
    """Return the current local time as offset-aware ISO 8601.

    Equal to `datetime.now().astimezone().isoformat()`, with the offset of
    the local zone at this instant, but the tzinfo object is reused.
    """
    seconds = time.time()
    offset = time.localtime(seconds).tm_gmtoff
    zone = _local_zones.get(offset)
    if zone is None:
        zone = _local_zones.setdefault(offset, timezone(timedelta(seconds=offset)))
    return datetime.fromtimestamp(seconds, zone).isoformat()


def encode_line(event: Event) -> bytes:
    """Encode an event as one shard line, newline included."""
    if event.metadata is not NO_METADATA and not len(event.metadata):
        # Another empty Raw (made by a caller, or by unpickling) would be
        # written as `"metadata":` with no value, a line readers reject.
        event.metadata = NO_METADATA
    return _encoder.encode(event) + b"\n"


def decode_line(line: bytes) -> Event:
    """Decode one shard line; raise `msgspec.DecodeError` or `ValueError` if invalid."""
    event = _decoder.decode(line)
    check_event(event)
    return event


def decode_lines(chunk: bytes) -> list[Event]:
    """Decode many complete lines at once (fast path, no per-event checks)."""
    return _decoder.decode_lines(chunk)


def check_event(event: Event) -> datetime:
    """Return the event's instant, or raise `ValueError` if it cannot be counted."""
    if event.format != FORMAT_VERSION:
        raise ValueError(f"unsupported format version {event.format}")
    if not event.id:
        raise ValueError("empty event id")
    if event.type != "adjustment":
        if not event.client_id or event.session_id is None:
            raise ValueError(f"{event.type} event without client_id or session_id")
        if event.orders_count < 0 or event.items_count < 0:
            raise ValueError("negative count")
    try:
        return event_instant(event)
    except ValueError as exc:
        raise ValueError(f"invalid timestamp {event.timestamp!r}: {exc}") from None


def parse_offset(text: str) -> timezone:
    """Parse a UTC offset written as "+HH:MM" or "-HH:MM"."""
    if len(text) != 6 or text[0] not in "+-" or text[3] != ":":
        raise ValueError(f"invalid UTC offset {text!r}, expected +HH:MM")
    sign = 1 if text[0] == "+" else -1
    minutes = int(text[1:3]) * 60 + int(text[4:6])
    return timezone(sign * timedelta(minutes=minutes))


def event_instant(event: Event) -> datetime:
    """Return the event's timestamp as an offset-aware datetime."""
    moment = datetime.fromisoformat(event.timestamp)
    if moment.tzinfo is None:
        if event.assumed_utc_offset is None:
            raise ValueError("timestamp has no UTC offset and no assumed_utc_offset")
        moment = moment.replace(tzinfo=parse_offset(event.assumed_utc_offset))
    return moment


def decode_metadata(raw: msgspec.Raw) -> dict[str, Any] | None:
    """Decode an event's metadata into Python values; None if the event has none."""
    if not len(raw):
        return None
    return msgspec.json.decode(raw)


def history_entry(event: Event) -> dict[str, Any]:
    """Build the v1 history entry (analysis or packing) for an event."""
    entry: dict[str, Any] = {
        "timestamp": event.timestamp,
        "client_id": event.client_id,
        "session_id": event.session_id,
    }
    if event.type == "packing":
        entry["worker_id"] = event.worker_id
        entry["orders_count"] = event.orders_count
        entry["items_count"] = event.items_count
    else:
        entry["orders_count"] = event.orders_count
    metadata = decode_metadata(event.metadata)
    if metadata is not None:
        entry["metadata"] = metadata
    return entry

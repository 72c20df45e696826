"""The merge checkpoint: a saved `StatsState`, so readers skip old bytes.

`ufstats merge` writes `Stats/checkpoint.json` after the view. A process that
opens the statistics loads it and reads only what was appended to each shard
since, instead of scanning years of shards over the network. A checkpoint is
used only if the reset epoch is the same. The first `refresh()` of the loaded
state then checks each shard it lists: at least as long, with the same first
bytes and the same bytes before its saved position. If one differs, the state
falls back to a full scan.

The file is JSON Lines. Line 1 (the core) contains what every reader needs: read
positions, totals, per-client and per-worker counters. The next lines hold the
recent event ids of each shard, the newest history items and the day counters;
a reader loads each of them only when it first needs it (appended events to
deduplicate, a history query, day statistics), so opening the statistics
costs the same with a year of history as with a day. Each of those lines
repeats the core's random token. If a merge replaced the file in between, the
token differs, and the part is rebuilt by reading the shards up to the
positions in the core instead.
"""

from __future__ import annotations

import logging
import secrets
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

import msgspec

from .atomic import write_atomically
from .events import Event
from .history import ItemTuple
from .layout import Layout
from .shard_reader import Damage, line_start
from .state import RECENT_IDS_PER_SHARD, ShardProgress, StatsState, read_epoch

log = logging.getLogger("ufstats")

# Format 2: each worker counter list also contains the orders and items of timed sessions.
# Format 3: JSON Lines, a core line and lazily loaded parts.
# Format 4: worker counters leave out durations over 7 days (untimed).
CHECKPOINT_FORMAT = 4
# History entries of each kind kept in a checkpoint; history queries with a
# larger limit read the shards.
CHECKPOINT_HISTORY = 1000
# The core is read in blocks of this size until its line ends.
CORE_READ_BYTES = 64 * 1024

T = TypeVar("T")


class _Shard(msgspec.Struct, array_like=True):
    start: int
    position: int
    line: int
    head: str
    head_length: int
    end_bytes: bytes
    size: int
    mtime_ns: int


class _Part(msgspec.Struct, array_like=True):
    """Position of a lazily loaded part: offset from the end of the core line, length in bytes."""

    offset: int
    length: int


class _Core(msgspec.Struct, kw_only=True):
    format: int
    token: str
    epoch: str | None
    view_sha256: str | None
    shards: dict[str, _Shard]
    totals: list[int]
    by_client: dict[str, list[int]]
    workers: dict[str, list[float]]
    events: int
    newest: tuple[float, str] | None
    imported_sources: list[str]
    analysis_total: int
    packing_total: int
    duplicates: int
    damage: list[tuple[str, int, int, str, str]]
    parts: dict[str, _Part]


class _Format(msgspec.Struct):
    """The fields that every checkpoint format has."""

    format: int = 0
    view_sha256: str | None = None


class _History(msgspec.Struct, array_like=True):
    # Items as [epoch, shard, line, event] arrays, oldest first.
    analysis: list[tuple[float, str, int, Event]]
    packing: list[tuple[float, str, int, Event]]


_PART_TYPES: dict[str, Any] = {
    "recent_ids": dict[str, list[str]],
    "history": _History,
    "daily": list[tuple[str, str, int, int, int]],
}


def encode_checkpoint(state: StatsState, view_sha256: str | None) -> bytes:
    """Encode a state as checkpoint file contents (core line, then its parts)."""
    state.load_recent_ids()
    aggregate = state.aggregate
    token = secrets.token_hex(8)
    payloads = {
        "recent_ids": {name: list(p.recent_ids) for name, p in state.shards.items()},
        "history": _History(
            aggregate.analysis.kept_items()[-CHECKPOINT_HISTORY:],
            aggregate.packing.kept_items()[-CHECKPOINT_HISTORY:],
        ),
        "daily": [(day, client, *counters) for (day, client), counters in aggregate.daily.items()],
    }
    lines = {name: msgspec.json.encode((token, payload)) + b"\n" for name, payload in payloads.items()}
    parts = {}
    offset = 0
    for name, line in lines.items():
        parts[name] = _Part(offset, len(line))
        offset += len(line)
    core = _Core(
        format=CHECKPOINT_FORMAT,
        token=token,
        epoch=state.epoch_id,
        view_sha256=view_sha256,
        shards={
            name: _Shard(p.start, p.position, p.line, p.head, p.head_length, p.end_bytes, p.size, p.mtime_ns)
            for name, p in state.shards.items()
        },
        totals=aggregate.totals,
        by_client=aggregate.by_client,
        workers=aggregate.workers,
        events=aggregate.events,
        newest=aggregate.newest,
        imported_sources=sorted(aggregate.imported_sources),
        analysis_total=aggregate.analysis.total,
        packing_total=aggregate.packing.total,
        duplicates=state.duplicates,
        damage=[(d.shard, d.line, d.offset, d.reason, d.excerpt) for d in state.damage],
        parts=parts,
    )
    return msgspec.json.encode(core) + b"\n" + b"".join(lines.values())


def save_checkpoint(state: StatsState, view_sha256: str | None) -> None:
    write_atomically(state.layout.checkpoint_file, encode_checkpoint(state, view_sha256))


def read_checkpoint_view_sha(layout: Layout) -> str | None:
    """Return the SHA-256 of the view that the last merge wrote, if known.

    Checkpoints of earlier formats count too, so the first merge after an
    upgrade still recognizes the view it wrote.
    """
    line = _read_first_line(layout)
    try:
        return msgspec.json.decode(line, type=_Format).view_sha256 if line is not None else None
    except msgspec.MsgspecError:
        return None


def _read_first_line(layout: Layout) -> bytes | None:
    try:
        with open(layout.checkpoint_file, "rb") as handle:
            data = b""
            while b"\n" not in data:
                block = handle.read(CORE_READ_BYTES)
                if not block:
                    break
                data += block
    except FileNotFoundError:
        return None
    return data.split(b"\n", 1)[0]


def _read_core(layout: Layout) -> tuple[_Core, int] | None:
    """Return the core and the length of its line, or None without a usable checkpoint."""
    path = layout.checkpoint_file
    line = _read_first_line(layout)
    if line is None:
        return None
    try:
        if msgspec.json.decode(line, type=_Format).format != CHECKPOINT_FORMAT:
            log.info("ignoring checkpoint %s of another format; the next merge replaces it", path)
            return None
        return msgspec.json.decode(line, type=_Core), len(line) + 1
    except msgspec.MsgspecError as exc:
        log.warning("ignoring damaged checkpoint %s: %s", path, exc)
        return None


def _read_part(layout: Layout, core: _Core, core_length: int, name: str) -> Any | None:
    """Return one part of the checkpoint, or None if the file no longer contains this core's part."""
    part = core.parts[name]
    try:
        with open(layout.checkpoint_file, "rb") as handle:
            handle.seek(core_length + part.offset)
            data = handle.read(part.length)
        token, payload = msgspec.json.decode(data, type=tuple[str, _PART_TYPES[name]])
    except (OSError, msgspec.MsgspecError) as exc:
        log.info("checkpoint part %s not readable (%s); reading the shards instead", name, exc)
        return None
    if token != core.token:
        log.info("checkpoint was replaced since it was opened; reading the shards for its %s", name)
        return None
    return payload


def _rescan(layout: Layout, core: _Core) -> StatsState:
    """Read every shard of the core from its start to its saved position, as the merge did."""
    state = StatsState(layout, CHECKPOINT_HISTORY)
    for name in sorted(core.shards):
        saved = core.shards[name]
        path = layout.shards_dir / f"{name}.jsonl"
        start, line = line_start(path, saved.start)
        progress = ShardProgress(start=start, position=start, line=line, head="")
        state.shards[name] = progress
        state.read_shard_until(name, path, progress, saved.position)
    return state


def _part_loader(layout: Layout, core: _Core, core_length: int) -> Callable[[str, Callable[[StatsState], T], Callable[[Any], T]], Callable[[], T]]:
    """Return a factory of loaders that read a part, or fall back to one shared rescan."""
    rescanned: list[StatsState] = []
    payloads: dict[str, Any] = {}  # Both history loaders share one read of their part.

    def factory(name: str, from_state: Callable[[StatsState], T], from_part: Callable[[Any], T]) -> Callable[[], T]:
        def load() -> T:
            if name not in payloads:
                payloads[name] = _read_part(layout, core, core_length, name)
            if payloads[name] is not None:
                return from_part(payloads[name])
            if not rescanned:
                rescanned.append(_rescan(layout, core))
            return from_state(rescanned[0])

        return load

    return factory


def load_checkpoint(layout: Layout) -> StatsState | None:
    """Return the state saved by the last merge, or None if it cannot be used.

    Call `refresh()` on the result before reading it: that checks each shard
    against the checkpoint (rebuilding from a full scan if one changed) and
    reads what was appended since. Recent ids, history and day counters are
    loaded when first needed.
    """
    found = _read_core(layout)
    if found is None:
        return None
    core, core_length = found
    epoch = read_epoch(layout)
    if (epoch.reset_id if epoch else None) != core.epoch:
        return None
    state = StatsState(layout, CHECKPOINT_HISTORY)
    state.epoch_id = core.epoch
    aggregate = state.aggregate
    aggregate.totals = core.totals
    aggregate.by_client = core.by_client
    aggregate.workers = core.workers
    aggregate.events = core.events
    aggregate.newest = core.newest
    aggregate.imported_sources = set(core.imported_sources)
    aggregate.analysis.total = core.analysis_total
    aggregate.packing.total = core.packing_total
    for name, shard in core.shards.items():
        state.shards[name] = ShardProgress(
            start=shard.start,
            position=shard.position,
            line=shard.line,
            head=shard.head,
            head_length=shard.head_length,
            recent_ids=deque(maxlen=RECENT_IDS_PER_SHARD),
            end_bytes=shard.end_bytes,
            size=shard.size,
            mtime_ns=shard.mtime_ns,
        )
    state.duplicates = core.duplicates
    state.damage = [Damage(*fields) for fields in core.damage]

    loader = _part_loader(layout, core, core_length)
    state.recent_ids_loader = loader(
        "recent_ids",
        lambda scanned: {name: list(p.recent_ids) for name, p in scanned.shards.items()},
        lambda ids: ids,
    )
    aggregate.analysis.loader = loader(
        "history",
        lambda scanned: scanned.aggregate.analysis.kept_items()[-CHECKPOINT_HISTORY:],
        lambda history: history.analysis,
    )
    aggregate.packing.loader = loader(
        "history",
        lambda scanned: scanned.aggregate.packing.kept_items()[-CHECKPOINT_HISTORY:],
        lambda history: history.packing,
    )
    aggregate.daily_loader = loader(
        "daily",
        lambda scanned: scanned.aggregate.daily,
        lambda rows: {(day, client): [analyzed, packed, sessions] for day, client, analyzed, packed, sessions in rows},
    )
    return state

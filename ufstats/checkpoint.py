"""The merge checkpoint: a saved `StatsState`, so readers skip old bytes.

`ufstats merge` writes `Stats/checkpoint.json` after the view. A process that
opens the statistics loads it and reads only what was appended to each shard
since, instead of scanning years of shards over the network. A checkpoint is
used only if the reset epoch is the same; the first `refresh()` of the loaded
state then checks that every shard it lists is at least as long and still has
the same first bytes and the same bytes before its saved position, and falls
back to a full scan otherwise.
"""

from __future__ import annotations

import logging
from collections import deque

import msgspec

from .aggregate import Aggregate, History
from .atomic import write_atomically
from .events import Event
from .layout import Layout
from .shard_reader import Damage
from .history import ItemTuple
from .state import RECENT_IDS_PER_SHARD, ShardProgress, StatsState, read_epoch

log = logging.getLogger("ufstats")

# Format 2: each worker counter list also holds the orders and items of timed sessions.
CHECKPOINT_FORMAT = 2
# History entries of each kind kept in a checkpoint; history queries with a
# larger limit read the shards.
CHECKPOINT_HISTORY = 1000


class _Shard(msgspec.Struct):
    start: int
    position: int
    line: int
    head: str
    head_length: int
    recent_ids: list[str]
    # Added without a format change: older checkpoints decode with the defaults.
    end_bytes: bytes = b""
    size: int = 0
    mtime_ns: int = 0


class _Checkpoint(msgspec.Struct, kw_only=True):
    format: int
    epoch: str | None
    view_sha256: str | None
    shards: dict[str, _Shard]
    totals: list[int]
    by_client: dict[str, list[int]]
    workers: dict[str, list[float]]
    daily: list[tuple[str, str, int, int, int]]
    events: int
    newest: tuple[float, str] | None
    imported_sources: list[str]
    # Items as [epoch, shard, line, event] arrays, oldest first.
    analysis: list[tuple[float, str, int, Event]]
    analysis_total: int
    packing: list[tuple[float, str, int, Event]]
    packing_total: int
    duplicates: int
    damage: list[tuple[str, int, int, str, str]]


def _items(history: History) -> list[ItemTuple]:
    return history.kept_items()[-CHECKPOINT_HISTORY:]


def encode_checkpoint(state: StatsState, view_sha256: str | None) -> bytes:
    aggregate = state.aggregate
    checkpoint = _Checkpoint(
        format=CHECKPOINT_FORMAT,
        epoch=state.epoch_id,
        view_sha256=view_sha256,
        shards={
            name: _Shard(
                p.start, p.position, p.line, p.head, p.head_length, list(p.recent_ids), p.end_bytes, p.size, p.mtime_ns
            )
            for name, p in state.shards.items()
        },
        totals=aggregate.totals,
        by_client=aggregate.by_client,
        workers=aggregate.workers,
        daily=[(day, client, *counts) for (day, client), counts in aggregate.daily.items()],
        events=aggregate.events,
        newest=aggregate.newest,
        imported_sources=sorted(aggregate.imported_sources),
        analysis=_items(aggregate.analysis),
        analysis_total=aggregate.analysis.total,
        packing=_items(aggregate.packing),
        packing_total=aggregate.packing.total,
        duplicates=state.duplicates,
        damage=[(d.shard, d.line, d.offset, d.reason, d.excerpt) for d in state.damage],
    )
    return msgspec.json.encode(checkpoint)


def save_checkpoint(state: StatsState, view_sha256: str | None) -> None:
    write_atomically(state.layout.checkpoint_file, encode_checkpoint(state, view_sha256))


def read_checkpoint_view_sha(layout: Layout) -> str | None:
    """Return the SHA-256 of the view that the last merge wrote, if known."""
    checkpoint = _read(layout)
    return checkpoint.view_sha256 if checkpoint else None


def _read(layout: Layout) -> _Checkpoint | None:
    try:
        data = layout.checkpoint_file.read_bytes()
    except FileNotFoundError:
        return None
    try:
        checkpoint = msgspec.json.decode(data, type=_Checkpoint)
    except msgspec.MsgspecError as exc:
        log.warning("ignoring damaged checkpoint %s: %s", layout.checkpoint_file, exc)
        return None
    if checkpoint.format != CHECKPOINT_FORMAT:
        return None
    return checkpoint


def _restore_history(history: History, items: list[ItemTuple], total: int) -> None:
    for item in items:
        history.offer(item)
    history.total = total


def load_checkpoint(layout: Layout) -> StatsState | None:
    """Return the state saved by the last merge, or None if it cannot be used.

    Call `refresh()` on the result before reading it: that checks each shard
    against the checkpoint (rebuilding from a full scan if one changed) and
    reads what was appended since.
    """
    checkpoint = _read(layout)
    if checkpoint is None:
        return None
    epoch = read_epoch(layout)
    if (epoch.reset_id if epoch else None) != checkpoint.epoch:
        return None
    state = StatsState(layout, CHECKPOINT_HISTORY)
    state.epoch_id = checkpoint.epoch
    aggregate: Aggregate = state.aggregate
    aggregate.totals = checkpoint.totals
    aggregate.by_client = checkpoint.by_client
    aggregate.workers = checkpoint.workers
    aggregate.daily = {(day, client): [a, p, s] for day, client, a, p, s in checkpoint.daily}
    aggregate.events = checkpoint.events
    aggregate.newest = checkpoint.newest
    aggregate.imported_sources = set(checkpoint.imported_sources)
    _restore_history(aggregate.analysis, checkpoint.analysis, checkpoint.analysis_total)
    _restore_history(aggregate.packing, checkpoint.packing, checkpoint.packing_total)
    for name, shard in checkpoint.shards.items():
        recent = deque(shard.recent_ids, maxlen=RECENT_IDS_PER_SHARD)
        state.shards[name] = ShardProgress(
            start=shard.start,
            position=shard.position,
            line=shard.line,
            head=shard.head,
            head_length=shard.head_length,
            recent_ids=recent,
            end_bytes=shard.end_bytes,
            size=shard.size,
            mtime_ns=shard.mtime_ns,
        )
        state.seen_ids.update(recent)
    state.duplicates = checkpoint.duplicates
    state.damage = [Damage(*fields) for fields in checkpoint.damage]
    return state

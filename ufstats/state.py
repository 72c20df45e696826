"""The merge reader: what all shards add up to, kept current incrementally.

`StatsState` combines every shard into one `Aggregate`, deduplicating events
by id. It remembers how far it has read each shard, so a later `refresh()`
reads only appended bytes. A shard that shrank or whose first bytes changed
(replaced or truncated) makes it rebuild from scratch, and so does a reset
(a new epoch file) or a shard that disappeared.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections import deque
from dataclasses import dataclass, field

import msgspec

from .aggregate import Aggregate
from .layout import Layout
from .shard_reader import Damage, ShardScan, line_start

log = logging.getLogger("ufstats")

HEAD_BYTES = 1024
# Event ids remembered per shard when a state is saved as a checkpoint. A
# redelivered spool lands within a few lines of its first copy, so a reader
# that starts from a checkpoint still drops it.
RECENT_IDS_PER_SHARD = 1000


class Epoch(msgspec.Struct, kw_only=True):
    """Contents of `Stats/epoch.json`: where counting starts after a reset."""

    reset_id: str
    reset_at: str
    start_offsets: dict[str, int]
    previous: str | None = None


def read_epoch(layout: Layout) -> Epoch | None:
    try:
        data = layout.epoch_file.read_bytes()
    except FileNotFoundError:
        return None
    return msgspec.json.decode(data, type=Epoch)


def head_digest(path: os.PathLike[str] | str, length: int) -> str:
    """Return the SHA-256 of a shard's first `length` bytes."""
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read(length)).hexdigest()


@dataclass
class ShardProgress:
    """How far a shard has been read."""

    start: int
    position: int
    line: int
    head: str
    head_length: int = 0
    recent_ids: deque[str] = field(default_factory=lambda: deque(maxlen=RECENT_IDS_PER_SHARD))
    incomplete_tail: bool = False


class Rebuild(Exception):
    """A shard changed under the state in a way that needs a full re-read."""


class StatsState:
    """Aggregate of all shards of one base path, with read positions."""

    def __init__(self, layout: Layout, history_limit: int | None = 1000) -> None:
        self.layout = layout
        self.history_limit = history_limit
        self.aggregate = Aggregate(history_limit)
        self.shards: dict[str, ShardProgress] = {}
        self.seen_ids: set[str] = set()
        self.duplicates = 0
        self.damage: list[Damage] = []
        self.epoch_id: str | None = None
        self.bytes_read = 0

    @classmethod
    def scan(cls, layout: Layout, history_limit: int | None = 1000) -> StatsState:
        """Build a state by reading every shard from its start."""
        state = cls(layout, history_limit)
        state.refresh()
        return state

    def refresh(self) -> None:
        """Read what was appended since the last refresh, rebuilding if needed."""
        try:
            self._refresh_once()
        except Rebuild as reason:
            log.info("re-reading all shards of %s: %s", self.layout.stats_dir, reason)
            self.__init__(self.layout, self.history_limit)  # type: ignore[misc]
            self._refresh_once()

    def _refresh_once(self) -> None:
        epoch = read_epoch(self.layout)
        epoch_id = epoch.reset_id if epoch else None
        if epoch_id != self.epoch_id:
            if self.shards or self.aggregate.events:
                raise Rebuild(f"statistics were reset (epoch {epoch_id})")
            self.epoch_id = epoch_id
        names = self.layout.shard_names()
        missing = set(self.shards) - set(names)
        if missing:
            raise Rebuild(f"shard {sorted(missing)[0]} disappeared")
        for name in names:
            start = epoch.start_offsets.get(name, 0) if epoch else 0
            self._read_shard(name, start)

    def _read_shard(self, name: str, epoch_start: int) -> None:
        path = self.layout.shards_dir / f"{name}.jsonl"
        try:
            size = os.stat(path).st_size
        except FileNotFoundError:
            if name in self.shards:
                raise Rebuild(f"shard {name} disappeared") from None
            return
        progress = self.shards.get(name)
        if progress is not None:
            if size == progress.position and not progress.incomplete_tail:
                return
            if size < progress.position:
                raise Rebuild(f"shard {name} shrank from {progress.position} to {size} bytes")
            if progress.head_length and head_digest(path, progress.head_length) != progress.head:
                raise Rebuild(f"shard {name} was replaced")
        else:
            start, line = line_start(path, min(epoch_start, size))
            progress = ShardProgress(start=start, position=start, line=line, head="")
            self.shards[name] = progress
        self._read_from(name, path, progress)

    def _read_from(self, name: str, path: os.PathLike[str], progress: ShardProgress) -> None:
        scan = ShardScan(path, name, position=progress.position, line=progress.line)
        aggregate = self.aggregate
        seen = self.seen_ids
        recent = progress.recent_ids
        for line_number, event in scan.events():
            if event.id in seen:
                self.duplicates += 1
                continue
            try:
                aggregate.add(event, name, line_number)
            except ValueError as exc:
                scan.record_damage(line_number, str(exc))
                continue
            seen.add(event.id)
            recent.append(event.id)
        progress.position = scan.position
        progress.line = scan.line
        progress.incomplete_tail = scan.incomplete_tail
        if progress.head_length < min(progress.position, HEAD_BYTES):
            progress.head_length = min(progress.position, HEAD_BYTES)
            progress.head = head_digest(path, progress.head_length)
        self.damage.extend(scan.damage)
        self.bytes_read += scan.bytes_read

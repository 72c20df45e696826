"""The merge reader: what all shards add up to, kept current incrementally.

`StatsState` combines every shard into one `Aggregate`, deduplicating events
by id. It remembers how far it has read each shard, so a later `refresh()`
reads only appended bytes. A shard that shrank, or whose first bytes or last
read bytes changed (replaced or truncated), makes it rebuild from scratch,
and so does a reset (a new epoch file) or a shard that disappeared. A shard
whose size and modification time are unchanged is not opened at all.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from .aggregate import Aggregate
from .errors import StatsFolderError
from .layout import Layout
from .shard_reader import END_BYTES, Damage, ShardScan, line_start, shard_size

log = logging.getLogger("ufstats")

HEAD_BYTES = 1024
# Event ids remembered per shard when a state is saved as a checkpoint. Spool
# delivery skips lines that the shard already ends with, so a copy can only
# follow its first one closely, and a reader that starts from a checkpoint
# still drops it.
RECENT_IDS_PER_SHARD = 1000
# NOTE: a copy more than this many lines after its first one, whose first one
# lies before a checkpoint, is counted twice by readers that start from that
# checkpoint, until the next merge, which scans every shard from the start.


class Epoch(msgspec.Struct, kw_only=True):
    """Contents of a file in `Stats/epochs/`: where counting starts after a reset."""

    reset_id: str
    reset_at: str
    start_offsets: dict[str, int]
    previous: str | None = None


def current_epoch_file(layout: Layout) -> Path | None:
    """Return the file of the current epoch (the greatest id), or None if there is none.

    Each reset or restore adds a new file and never replaces one. Replacing
    a file over SMB can be a delete followed by a rename, and a reader in
    between would count data from before the reset.
    """
    try:
        names = [name for name in os.listdir(layout.epochs_dir) if name.endswith(".json")]
    except (FileNotFoundError, NotADirectoryError):
        return None
    return layout.epochs_dir / max(names) if names else None


def read_epoch(layout: Layout) -> Epoch | None:
    """Return the current reset epoch, or None if statistics were never reset.

    Raises:
        StatsFolderError: the current epoch file is damaged.
    """
    path = current_epoch_file(layout)
    if path is None:
        return None
    try:
        return msgspec.json.decode(path.read_bytes(), type=Epoch)
    except msgspec.DecodeError as exc:
        raise StatsFolderError(
            f"{path} is damaged ({exc}), so readers cannot tell where counting "
            "starts after the last reset. Write a new epoch with `ufstats reset --restore ID` "
            "(ids: `ufstats reset --list`); nothing in the shards was changed."
        ) from exc


def bytes_to_read(layout: Layout, epoch: Epoch | None) -> list[tuple[str, int]]:
    """Return (shard name, bytes from its epoch start to its end) for every shard, in name order."""
    offsets = epoch.start_offsets if epoch else {}
    return [
        (name, max(0, shard_size(layout.shards_dir / f"{name}.jsonl") - offsets.get(name, 0)))
        for name in layout.shard_names()
    ]


def head_digest(path: os.PathLike[str] | str, length: int) -> str:
    """Return the SHA-256 of a shard's first `length` bytes."""
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read(length)).hexdigest()


def shard_changed(path: os.PathLike[str] | str, progress: ShardProgress) -> str | None:
    """Return why a shard no longer matches what was read of it, or None if it still does.

    Compares the digest of its first bytes and the bytes just before the read
    position with the remembered ones, in one open.
    """
    with open(path, "rb") as handle:
        if progress.head_length and hashlib.sha256(handle.read(progress.head_length)).hexdigest() != progress.head:
            return "its first bytes changed"
        if progress.end_bytes:
            handle.seek(progress.position - len(progress.end_bytes))
            if handle.read(len(progress.end_bytes)) != progress.end_bytes:
                return f"the bytes before position {progress.position} changed"
    return None


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
    # The last bytes before `position` (at most `END_BYTES`).
    end_bytes: bytes = b""
    # Size and modification time (ns) when last checked; 0 forces a check.
    size: int = 0
    mtime_ns: int = 0


class Rebuild(Exception):
    """A shard changed under the state in a way that needs a full re-read."""


class StatsState:
    """Aggregate of all shards of one base path, with read positions."""

    # A class attribute, so a rebuild (which re-runs __init__) keeps it.
    on_chunk: Callable[[int], None] | None = None

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
        # Returns the recent event ids of each shard kept elsewhere (a
        # checkpoint); called before the first appended event is counted.
        self.recent_ids_loader: Callable[[], dict[str, list[str]]] | None = None

    def __getstate__(self) -> dict[str, object]:
        # Merge processes pickle states (`parallel_scan`). One string of ids,
        # one per line, pickles and unpickles in about half the time of a set
        # of half a million strings. An id that contains a newline (only a
        # hand-edited shard has one) makes the count differ, so then the set is kept.
        fields = self.__dict__.copy()
        ids = "\n".join(self.seen_ids)
        if ids.count("\n") == len(self.seen_ids) - 1:
            fields["seen_ids"] = ids
        return fields

    def __setstate__(self, fields: dict[str, object]) -> None:
        ids = fields["seen_ids"]
        if isinstance(ids, str):
            fields["seen_ids"] = set(ids.split("\n")) if ids else set()
        self.__dict__.update(fields)

    def load_recent_ids(self) -> None:
        """Add the ids from `recent_ids_loader` to the shards' recent ids and the seen ids."""
        if self.recent_ids_loader is None:
            return
        loader, self.recent_ids_loader = self.recent_ids_loader, None
        for name, ids in loader().items():
            progress = self.shards.get(name)
            if progress is None:
                continue
            # The loaded ids were read before any id already in the deque.
            progress.recent_ids = deque([*ids, *progress.recent_ids], maxlen=RECENT_IDS_PER_SHARD)
            self.seen_ids.update(ids)

    @classmethod
    def scan(
        cls, layout: Layout, history_limit: int | None = 1000, on_chunk: Callable[[int], None] | None = None
    ) -> StatsState:
        """Build a state by reading every shard from its start; `on_chunk` gets each block's size in bytes."""
        state = cls(layout, history_limit)
        state.on_chunk = on_chunk
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
        self.read_shards(names, epoch.start_offsets if epoch else {})

    def read_shards(self, names: list[str], start_offsets: dict[str, int]) -> None:
        """Read the given shards in order, each from its epoch start offset (default 0)."""
        for name in names:
            self._read_shard(name, start_offsets.get(name, 0))

    def absorb(self, other: StatsState) -> bool:
        """Add a state that read other shards, as if they were read after this state's shards.

        Returns False, and changes nothing, if an event id was counted in
        both states. Only reading the other's shards into this state counts
        such an id once.
        """
        if not self.seen_ids.isdisjoint(other.seen_ids):
            return False
        self.aggregate.absorb(other.aggregate)
        self.shards.update(other.shards)
        self.seen_ids.update(other.seen_ids)
        self.duplicates += other.duplicates
        self.damage.extend(other.damage)
        self.bytes_read += other.bytes_read
        return True

    def _read_shard(self, name: str, epoch_start: int) -> None:
        path = self.layout.shards_dir / f"{name}.jsonl"
        try:
            status = os.stat(path)
        except FileNotFoundError:
            if name in self.shards:
                raise Rebuild(f"shard {name} disappeared") from None
            return
        size = status.st_size
        progress = self.shards.get(name)
        if progress is not None:
            if size == progress.size and status.st_mtime_ns == progress.mtime_ns:
                return
            if size < progress.position:
                raise Rebuild(f"shard {name} shrank from {progress.position} to {size} bytes")
            reason = shard_changed(path, progress)
            if reason is not None:
                raise Rebuild(f"shard {name} was replaced: {reason}")
            progress.size = size
            progress.mtime_ns = status.st_mtime_ns
            if size == progress.position:
                return
        else:
            start, line = line_start(path, min(epoch_start, size))
            progress = ShardProgress(start=start, position=start, line=line, head="")
            self.shards[name] = progress
            progress.size = size
            progress.mtime_ns = status.st_mtime_ns
        self._read_from(name, path, progress)

    def read_shard_until(self, name: str, path: os.PathLike[str], progress: ShardProgress, end: int) -> None:
        """Count the lines of a shard from `progress` up to byte `end`."""
        self._read_from(name, path, progress, end)

    def _read_from(self, name: str, path: os.PathLike[str], progress: ShardProgress, end: int | None = None) -> None:
        self.load_recent_ids()
        scan = ShardScan(path, name, position=progress.position, line=progress.line, on_chunk=self.on_chunk, end=end)
        aggregate = self.aggregate
        seen = self.seen_ids
        counted: list[str] = []
        for first_line, events in scan.blocks():
            duplicates, rejected = aggregate.add_block(events, name, first_line, seen, counted)
            self.duplicates += duplicates
            for line_number, reason in rejected:
                scan.record_damage(line_number, reason)
            del counted[:-RECENT_IDS_PER_SHARD]
        progress.recent_ids.extend(counted)
        if scan.position != progress.position:
            progress.end_bytes = (progress.end_bytes + scan.end_bytes)[-END_BYTES:]
        progress.position = scan.position
        progress.line = scan.line
        progress.incomplete_tail = scan.incomplete_tail
        if progress.head_length < min(progress.position, HEAD_BYTES):
            progress.head_length = min(progress.position, HEAD_BYTES)
            try:
                progress.head = head_digest(path, progress.head_length)
            except FileNotFoundError:
                raise Rebuild(f"shard {name} disappeared while it was read") from None
        self.damage.extend(scan.damage)
        self.bytes_read += scan.bytes_read

"""The newest N events of one kind, kept while millions stream past.

Items are ordered by (instant as UTC epoch seconds, shard, line). A scan over
shards in time order offers almost every event as a new newest one, so a heap
would sift on each of them. `History` instead appends candidates to a buffer
and, when the buffer contains twice the limit, sorts it and drops all but the
newest `limit`. The buffer is sorted mostly in order already, which Python's
sort handles in about linear time, so each event costs a tuple and an append.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .events import Event

# (epoch, shard, line, event): plain tuples compare in C, a dataclass in Python.
# Two items never share (shard, line), so a comparison never reaches the event.
ItemTuple = tuple[float, str, int, Event]

# Floors that every item is newer than, or none is.
_KEEP_ALL = (float("-inf"),)
_KEEP_NONE = (float("inf"),)


@dataclass(order=True)
class HistoryItem:
    """A history candidate: sort key first, then the event itself."""

    epoch: float
    shard: str
    line: int
    event: Event = field(compare=False)


class History:
    """The newest `limit` events of one kind (all of them when limit is None)."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        # Returns items kept elsewhere (a checkpoint) that belong to this
        # history; called once, when the items are first needed.
        self.loader: Callable[[], list[ItemTuple]] | None = None
        # Events of this kind offered so far, kept or not.
        self.total = 0
        # Unsorted buffer; `Aggregate.add_block` appends to it directly and
        # calls `prune()` when it reaches `capacity` items.
        self.items: list[ItemTuple] = []
        # Offers older than the floor are not among the newest `limit`.
        self.floor: tuple[float, ...] = _KEEP_ALL if limit != 0 else _KEEP_NONE
        self.capacity = 2 * limit if limit else float("inf")

    def add(self, item: HistoryItem) -> None:
        """Offer one item; it is kept if it is among the newest `limit`."""
        self.offer((item.epoch, item.shard, item.line, item.event))

    def offer(self, item: ItemTuple) -> None:
        """Offer one (epoch, shard, line, event) tuple."""
        self.total += 1
        if item > self.floor:
            self.items.append(item)
            if len(self.items) >= self.capacity:
                self.prune()

    def prune(self) -> None:
        """Sort the buffer and keep only the newest `limit` items."""
        self.items.sort()
        if self.limit is not None and len(self.items) > self.limit:
            del self.items[: len(self.items) - self.limit]
            self.floor = self.items[0]

    def absorb(self, other: History) -> None:
        """Add the items and count of a history of the same limit built from other events."""
        self.total += other.total
        self.items.extend(other.kept_items())
        self.prune()

    def kept_items(self) -> list[ItemTuple]:
        """Return the kept items as tuples, oldest first."""
        if self.loader is not None:
            # Items offered meanwhile are newer lines, never the same (shard, line).
            loader, self.loader = self.loader, None
            self.items.extend(loader())
        self.prune()
        return list(self.items)

    def oldest_first(self) -> list[HistoryItem]:
        """Return the kept items, oldest first."""
        return [HistoryItem(*item) for item in self.kept_items()]

    @property
    def complete(self) -> bool:
        """True when every event of this kind is kept."""
        return self.limit is None or self.total <= self.limit

"""Reading events from shard files, skipping and reporting damaged lines.

A reader never changes a shard. A line that is not valid JSON, or not a valid
event, is reported as `Damage` (shard, line number, reason) and skipped; the
rest of the shard still counts. Bytes after the last newline are left for a
later read: a writer may still be appending them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from .events import Event, decode_line, decode_lines

# Bytes read and decoded at a time. The events of 1 MiB stay in the CPU
# caches while they are counted: a full scan of 1,000,000 events took 2.8 s
# with 1 MiB blocks and 3.2 s with 8 MiB blocks (tools/bench.py machine,
# docs/benchmarks.md). It is also a common maximum read size of SMB clients.
CHUNK_BYTES = 1024 * 1024
# Bytes before a read position that a reader remembers, to notice a shard
# that was replaced or truncated and then grew past that position.
END_BYTES = 64
# A line (after the first) that does not start with "{".
_LINE_NOT_OBJECT = re.compile(rb"\n[^{]")


@dataclass(frozen=True)
class Damage:
    """A line that readers skip: where it is and why."""

    shard: str
    line: int
    offset: int
    reason: str
    excerpt: str

    def describe(self) -> str:
        return f"{self.shard} line {self.line} (byte {self.offset}): {self.reason}"


def _excerpt(line: bytes) -> str:
    text = line[:60].decode("utf-8", errors="replace")
    return text + ("..." if len(line) > 60 else "")


def line_start(path: Path, position: int) -> tuple[int, int]:
    """Return (start of the line containing `position`, number of lines before it)."""
    if position <= 0:
        return 0, 0
    with open(path, "rb") as handle:
        head = handle.read(position)
    start = head.rfind(b"\n") + 1
    return start, head.count(b"\n", 0, start)


@dataclass
class ShardScan:
    """One pass over a shard from `position` to its last complete line.

    Iterate `blocks()` or `events()`; afterwards `position` and `line` point after the
    last complete line read, `damage` lists skipped lines and
    `incomplete_tail` is True when bytes after the last newline remain.
    """

    path: Path
    name: str
    position: int = 0
    line: int = 0
    damage: list[Damage] = field(default_factory=list)
    incomplete_tail: bool = False
    bytes_read: int = 0
    # The last `END_BYTES` bytes before `position`, once something was read.
    end_bytes: bytes = b""
    # Called with the size of each block of complete lines read (progress display).
    on_chunk: Callable[[int], None] | None = None
    # Stop at this byte offset instead of the end of the file.
    end: int | None = None

    def events(self) -> Iterator[tuple[int, Event]]:
        """Yield (line number, event) for each valid line, 1-based line numbers."""
        for first_line, events in self.blocks():
            for index, event in enumerate(events):
                yield first_line + index, event

    def blocks(self) -> Iterator[tuple[int, list[Event]]]:
        """Yield (line number of the first, events) for each run of valid consecutive lines.

        Runs are up to `CHUNK_BYTES` long; a damaged line ends a run.
        """
        try:
            handle = open(self.path, "rb")  # noqa: SIM115 - closed in finally
        except FileNotFoundError:
            return
        try:
            handle.seek(self.position)
            pending = b""
            remaining = None if self.end is None else max(0, self.end - self.position)
            while remaining is None or remaining > 0:
                chunk = handle.read(CHUNK_BYTES if remaining is None else min(CHUNK_BYTES, remaining))
                if not chunk:
                    break
                if remaining is not None:
                    remaining -= len(chunk)
                data = pending + chunk
                cut = data.rfind(b"\n") + 1
                pending = data[cut:]
                if cut:
                    yield from self._decode_block(data, cut)
            self.incomplete_tail = bool(pending)
        finally:
            handle.close()

    def _decode_block(self, data: bytes, cut: int) -> Iterator[tuple[int, list[Event]]]:
        """Decode the complete lines `data[:cut]`, without copying them out of `data`."""
        first_line = self.line + 1
        count = data.count(b"\n", 0, cut)
        try:
            events = decode_lines(memoryview(data)[:cut])
        except (msgspec.MsgspecError, ValueError):
            events = None
        # decode_lines skips blank lines and accepts two values on one line, so
        # equal counts prove one event per line only when no line is blank.
        # Every line starting with "{" rules that out. The pattern for a line
        # that does not begins with a literal newline, which `re` finds with a
        # fast scan (about 3 ms per 8 MiB on the benchmark machine, a third of
        # the time that `bytes.count(b"\n{")` takes).
        if (
            events is not None
            and len(events) == count
            and data.startswith(b"{")
            and _LINE_NOT_OBJECT.search(data, 0, cut) is None
        ):
            yield first_line, events
        else:
            yield from self._decode_one_by_one(data[:cut], first_line)
        self.position += cut
        self.bytes_read += cut
        self.end_bytes = (self.end_bytes + data[max(0, cut - END_BYTES) : cut])[-END_BYTES:]
        if self.on_chunk is not None:
            self.on_chunk(cut)
        self.line += count

    def _decode_one_by_one(self, block: bytes, first_line: int) -> Iterator[tuple[int, list[Event]]]:
        offset = self.position
        run: list[Event] = []
        run_start = first_line
        for index, line in enumerate(block.split(b"\n")[:-1]):
            try:
                run.append(decode_line(line))
            except (msgspec.MsgspecError, ValueError) as exc:
                reason = "empty line" if not line.strip() else str(exc)
                # The run before this line goes first, so damage stays in line order.
                if run:
                    yield run_start, run
                self.damage.append(Damage(self.name, first_line + index, offset, reason, _excerpt(line)))
                run = []
                run_start = first_line + index + 1
            offset += len(line) + 1
        if run:
            yield run_start, run

    def record_damage(self, line_number: int, reason: str) -> None:
        """Report an event that decoded but cannot be counted."""
        self.damage.append(Damage(self.name, line_number, -1, reason, ""))


def shard_size(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0

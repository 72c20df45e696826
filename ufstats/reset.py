"""Resetting statistics to zero without destroying any data.

A reset copies every shard into `Stats/archive/<reset-id>/`, then adds an
epoch file `Stats/epochs/<reset-id>.json`, which makes readers start
counting each shard at its length at reset time. Shards are never truncated or moved, so a PC that
appends during the reset keeps its record: it lands after the recorded
length and counts in the new epoch. `restore` returns to the epoch before a
given reset.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import msgspec

from .atomic import write_atomically
from .errors import InvalidArgumentError, StatsFolderError
from .events import now_timestamp
from .layout import SHARD_SUFFIX, Layout
from .state import Epoch, current_epoch_file, read_epoch

log = logging.getLogger("ufstats")


@dataclass
class ResetResult:
    reset_id: str
    archive: Path
    shards: int


def _copy_prefix(source: Path, target: Path, length: int) -> None:
    with open(source, "rb") as reader, open(target, "wb") as writer:
        remaining = length
        while remaining:
            block = reader.read(min(remaining, 1 << 20))
            if not block:
                break
            writer.write(block)
            remaining -= len(block)
        writer.flush()
        os.fsync(writer.fileno())


def _new_epoch_id(layout: Layout) -> str:
    """Return an id greater than every existing epoch's, so it becomes current.

    The id starts with a sequence number, so a PC whose clock is behind still
    makes the newest epoch; the time and a random part follow for people.
    """
    current = current_epoch_file(layout)
    sequence = int(current.name.split("-", 1)[0]) + 1 if current is not None else 1
    stamp = datetime.now().strftime("%Y%m%dT%H%M%S.%f")[:-3]
    return f"{sequence:06d}-{stamp}-{secrets.token_hex(2)}"


def _add_epoch(layout: Layout, epoch: Epoch) -> None:
    layout.epochs_dir.mkdir(parents=True, exist_ok=True)
    target = layout.epochs_dir / f"{epoch.reset_id}.json"
    # A new name every time: nothing is ever replaced (see current_epoch_file).
    write_atomically(target, msgspec.json.format(msgspec.json.encode(epoch), indent=2))


def reset(layout: Layout) -> ResetResult:
    """Start a new epoch in which every reader sees zeros.

    Raises:
        StatsFolderError: the base folder or its `Stats/shards` folder is
            missing or unreachable; nothing is created then.
    """
    layout.require_base_path()
    layout.require_shards_folder("reset")
    reset_id = _new_epoch_id(layout)
    archive = layout.archive_dir / reset_id
    archive.mkdir(parents=True)
    offsets = {}
    for name in layout.shard_names():
        path = layout.shards_dir / f"{name}.jsonl"
        length = os.stat(path).st_size
        _copy_prefix(path, archive / path.name, length)
        offsets[name] = length
    previous_file = current_epoch_file(layout)
    previous = read_epoch(layout)
    if previous_file is not None:
        shutil.copyfile(previous_file, archive / "epoch-before.json")
    _add_epoch(
        layout,
        Epoch(
            reset_id=reset_id,
            reset_at=now_timestamp(),
            start_offsets=offsets,
            previous=previous.reset_id if previous else None,
        ),
    )
    return ResetResult(reset_id, archive, len(offsets))


def list_resets(layout: Layout) -> list[str]:
    try:
        return sorted(p.name for p in layout.archive_dir.iterdir() if p.is_dir())
    except FileNotFoundError:
        return []


@dataclass
class ResetInfo:
    """One earlier reset, as `ufstats reset --list` shows it."""

    reset_id: str
    reset_at: str | None
    shards: int
    restored_by: list[str]


def _read_epochs(layout: Layout) -> list[Epoch]:
    """Return every readable epoch file, oldest id first; damaged ones are skipped with a warning."""
    try:
        names = sorted(name for name in os.listdir(layout.epochs_dir) if name.endswith(".json"))
    except (FileNotFoundError, NotADirectoryError):
        return []
    epochs = []
    for name in names:
        path = layout.epochs_dir / name
        try:
            epochs.append(msgspec.json.decode(path.read_bytes(), type=Epoch))
        except (OSError, msgspec.DecodeError) as exc:
            log.warning("skipping epoch file %s: %s", path, exc)
    return epochs


def restores_of(layout: Layout, reset_id: str) -> list[str]:
    """Return the ids of the restores that undid `reset_id`, oldest first."""
    resets = set(list_resets(layout))
    # A reset's own epoch refers to the epoch before it in `previous` too; only
    # a restore has no archive folder.
    return [
        epoch.reset_id
        for epoch in _read_epochs(layout)
        if epoch.previous == reset_id and epoch.reset_id not in resets
    ]


def describe_resets(layout: Layout) -> list[ResetInfo]:
    """Return every reset in the archive, oldest first, with its time, shard count and restores.

    The time is `reset_at` of the reset's epoch file, or the archive
    folder's modification time when that file is missing or damaged.
    """
    reset_ids = list_resets(layout)
    epochs = _read_epochs(layout)
    times = {epoch.reset_id: epoch.reset_at for epoch in epochs}
    infos = []
    for reset_id in reset_ids:
        archive = layout.archive_dir / reset_id
        reset_at = times.get(reset_id)
        try:
            shards = sum(1 for name in os.listdir(archive) if name.endswith(SHARD_SUFFIX))
            if reset_at is None:
                reset_at = datetime.fromtimestamp(archive.stat().st_mtime).astimezone().isoformat(timespec="seconds")
        except OSError:
            shards = 0
        restored_by = [
            epoch.reset_id for epoch in epochs if epoch.previous == reset_id and epoch.reset_id not in reset_ids
        ]
        infos.append(ResetInfo(reset_id, reset_at, shards, restored_by))
    return infos


class AlreadyRestored(Exception):
    """The reset to undo is undone already; `epoch` is the epoch in effect."""

    def __init__(self, epoch: Epoch) -> None:
        super().__init__(epoch.reset_id)
        self.epoch = epoch


def restore(layout: Layout, reset_id: str) -> Epoch:
    """Undo a reset: count again from where the epoch before `reset_id` started.

    Records made after the reset stay counted. The restore is itself a new
    epoch, so a later reset or restore works as usual. Only a reset that is
    in effect can be undone: restoring an older one would silently undo
    every reset made after it too.

    Raises:
        InvalidArgumentError: `reset_id` is unknown, or a later reset is in
            effect (undo that one first).
        AlreadyRestored: `reset_id` is undone already; nothing was written.
    """
    archive = layout.archive_dir / reset_id
    if not reset_id or Path(reset_id).name != reset_id or not archive.is_dir():
        known = ", ".join(list_resets(layout)) or "none"
        raise InvalidArgumentError(f"Unknown reset id {reset_id!r}; known resets: {known}")
    before_file = archive / "epoch-before.json"
    if before_file.exists():
        before = msgspec.json.decode(before_file.read_bytes(), type=Epoch)
        offsets = before.start_offsets
    else:
        offsets = {}
    try:
        current = read_epoch(layout)
    except StatsFolderError:
        # The current epoch file is damaged: a restore is the documented way
        # to write a readable one, so it goes ahead unchecked.
        current, damaged = None, True
    else:
        damaged = False
    current_offsets = current.start_offsets if current is not None else {}
    if current is not None and current_offsets == offsets and current.reset_id != reset_id:
        raise AlreadyRestored(current)
    reset_file = layout.epochs_dir / f"{reset_id}.json"
    try:
        reset_offsets = msgspec.json.decode(reset_file.read_bytes(), type=Epoch).start_offsets
    except (OSError, msgspec.DecodeError):
        reset_offsets = None
    if not damaged and reset_offsets is not None and current_offsets != reset_offsets:
        later = [info.reset_id for info in describe_resets(layout) if info.reset_id > reset_id]
        raise InvalidArgumentError(
            f"Reset {reset_id} is not in effect: a later reset ({', '.join(later) or 'unknown'}) "
            "changed where counting starts, and restoring this one would undo that too. "
            "Undo the later resets first, newest first (see `ufstats reset --list`)."
        )
    epoch = Epoch(
        reset_id=_new_epoch_id(layout),
        reset_at=now_timestamp(),
        start_offsets=offsets,
        previous=reset_id,
    )
    _add_epoch(layout, epoch)
    return epoch

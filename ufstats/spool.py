"""The local spool: records kept on the PC while the file server is unreachable.

A spool is a JSON Lines file in the per-user local state folder, one per base
path and workstation. Records are appended to it, with fsync, when the shard
cannot be written, and moved to the shard, in order, by the next successful
write or by `ufstats flush`. Delivered lines are removed from the spool only
after the shard write was flushed; if the process dies in between, the
records are delivered again and readers drop the second copy by event id.
Every spool access happens under the spool's own local lock (see `Recorder`).
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from . import _platform
from .atomic import write_atomically
from .shard_writer import append_lines

log = logging.getLogger("ufstats")

SPOOL_SUFFIX = ".spool.jsonl"


def spool_dir() -> Path:
    return _platform.local_state_dir() / "spool"


@dataclass(frozen=True)
class Spool:
    """The spool file of one (base path, workstation) pair."""

    path: Path
    base_path: Path
    workstation: str

    @classmethod
    def for_target(cls, base_path: Path, workstation: str, folder: Path | None = None) -> Spool:
        digest = hashlib.sha256(os.path.abspath(base_path).encode("utf-8")).hexdigest()[:12]
        folder = folder or spool_dir()
        return cls(folder / f"{workstation}-{digest}{SPOOL_SUFFIX}", Path(base_path), workstation)

    @property
    def target_file(self) -> Path:
        """A small text file beside the spool naming its base path, for `ufstats flush`."""
        return self.path.with_name(self.path.name[: -len(SPOOL_SUFFIX)] + ".target")

    def add(self, data: bytes) -> None:
        """Append complete lines to the spool and flush them to the local disk."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.target_file.exists():
            self.target_file.write_text(f"{self.base_path}\n{self.workstation}\n", encoding="utf-8")
        append_lines(self.path, data, machine=None)

    def pending(self) -> bytes:
        """Return the complete lines waiting in the spool (empty if none).

        An incomplete last line (the process died while spooling it, so the
        call never returned) is moved to a `.damaged` file beside the spool.
        """
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return b""
        cut = data.rfind(b"\n") + 1
        if cut < len(data):
            damaged = self.path.with_suffix(".damaged")
            with open(damaged, "ab") as handle:
                handle.write(data[cut:] + b"\n")
            log.warning("spool %s ended in an incomplete line; kept it in %s", self.path, damaged)
            with open(self.path, "r+b") as handle:
                handle.truncate(cut)
        return data[:cut]

    def remove_delivered(self, length: int) -> None:
        """Remove the first `length` bytes, which were written to the shard.

        Lines added after `pending()` was read (background mode spools while
        a delivery runs) stay. The rest is written to a new file and renamed
        over the spool, so a crash leaves either the old or the new spool.
        """
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return
        rest = data[length:]
        if not rest:
            os.unlink(self.path)
            return
        write_atomically(self.path, rest)

    def count(self) -> int:
        try:
            return self.path.read_bytes().count(b"\n")
        except FileNotFoundError:
            return 0


def find_spools(folder: Path | None = None) -> list[Spool]:
    """Return every spool in the local spool folder that has a target file."""
    folder = folder or spool_dir()
    spools = []
    for path in sorted(folder.glob(f"*{SPOOL_SUFFIX}")):
        target = path.with_name(path.name[: -len(SPOOL_SUFFIX)] + ".target")
        try:
            base_path, workstation = target.read_text(encoding="utf-8").splitlines()[:2]
        except (OSError, ValueError):
            log.warning("spool %s has no readable target file; skipped", path)
            continue
        spools.append(Spool(path, Path(base_path), workstation))
    return spools

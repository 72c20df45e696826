"""Where ufstats keeps its files inside `<base>/Stats`.

    Stats/
        global_stats.json      the view, in the v1 structure (written by merge)
        checkpoint.json        merge checkpoint: shard positions and aggregates
        epochs/<id>.json       where each shard starts counting after a reset;
                               the greatest id is current, files are never replaced
        shards/<ws>.jsonl      one append-only shard per workstation
        archive/<reset-id>/    copies of the shards taken by each reset
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ._platform import workstation_problem
from .errors import InvalidArgumentError, StatsFolderError

SHARD_SUFFIX = ".jsonl"


@dataclass(frozen=True)
class Layout:
    """Paths of the statistics files under one base path."""

    base_path: Path

    @classmethod
    def for_base_path(cls, base_path: str | os.PathLike[str]) -> Layout:
        if isinstance(base_path, bytes) or not isinstance(base_path, (str, os.PathLike)):
            raise InvalidArgumentError(
                f"Invalid base_path={base_path!r}: must be a folder path as str or Path"
            )
        if not os.fspath(base_path).strip():
            raise InvalidArgumentError("Invalid base_path='': give the 0UFulfilment folder")
        return cls(Path(base_path))

    @property
    def stats_dir(self) -> Path:
        return self.base_path / "Stats"

    @property
    def shards_dir(self) -> Path:
        return self.stats_dir / "shards"

    @property
    def view_file(self) -> Path:
        return self.stats_dir / "global_stats.json"

    @property
    def checkpoint_file(self) -> Path:
        return self.stats_dir / "checkpoint.json"

    @property
    def epochs_dir(self) -> Path:
        return self.stats_dir / "epochs"

    @property
    def archive_dir(self) -> Path:
        return self.stats_dir / "archive"

    def shard_path(self, workstation: str) -> Path:
        """Return the shard file of a workstation; the id is checked first."""
        problem = workstation_problem(workstation)
        if problem:
            raise InvalidArgumentError(f"Invalid workstation id {workstation!r}: {problem}")
        return self.shards_dir / f"{workstation}{SHARD_SUFFIX}"

    def shard_names(self) -> list[str]:
        """Return the workstation ids of all shard files, sorted.

        Entries in the shards folder that are not files with valid shard
        names (a folder called `x.jsonl`, say) are ignored here and listed
        by `ufstats check`.
        """
        try:
            entries = list(os.scandir(self.shards_dir))
        except (FileNotFoundError, NotADirectoryError):
            return []
        names = []
        for entry in entries:
            if entry.name.endswith(SHARD_SUFFIX) and entry.is_file():
                name = entry.name[: -len(SHARD_SUFFIX)]
                if workstation_problem(name) is None:
                    names.append(name)
        return sorted(names)

    def file_in_the_way(self) -> Path | None:
        """Return the first of the base path, `Stats` and `Stats/shards` that exists but is not a folder.

        Such a file is a setup mistake that waiting will not fix, unlike a
        missing or unreachable folder. Returns None when there is none (also
        when a path cannot be checked).
        """
        for path in (self.base_path, self.stats_dir, self.shards_dir):
            try:
                if path.is_dir():
                    continue
                return path if path.exists() else None
            except OSError:
                return None
        return None

    def require_base_path(self) -> None:
        """Raise `StatsFolderError` unless the base folder exists and is a folder."""
        try:
            if self.base_path.is_dir():
                return
            exists = self.base_path.exists()
        except OSError as exc:
            raise StatsFolderError(
                f"Base path {self.base_path} cannot be reached: {exc}. "
                "Check that the file server is online and the path is right."
            ) from exc
        if exists:
            raise StatsFolderError(f"Base path {self.base_path} is a file, not a folder.")
        raise StatsFolderError(
            f"Base path {self.base_path} does not exist or cannot be reached. "
            "Check that the file server is online and the path is right "
            "(--base-path or UFSTATS_BASE_PATH)."
        )

    def require_shards_folder(self, action: str) -> None:
        """Raise `StatsFolderError` unless `Stats/shards` exists and is a folder.

        `action` names what the caller is about to do ("merge"), for the
        message. A missing shards folder usually means a wrong base path,
        because the first record of any PC creates it.
        """
        try:
            if self.shards_dir.is_dir():
                return
            exists = self.shards_dir.exists()
        except OSError as exc:
            raise StatsFolderError(
                f"{self.shards_dir} cannot be reached: {exc}. Check that the file server is online, "
                f"then {action} again."
            ) from exc
        if exists:
            raise StatsFolderError(
                f"{self.shards_dir} is a file, not a folder, so there is nothing to {action}. "
                "Move or rename that file."
            )
        raise StatsFolderError(
            f"No statistics in {self.base_path} yet: there is no Stats/shards folder, so there is "
            f"nothing to {action}. If this is the right folder, no PC has recorded yet (the first "
            "record creates Stats/shards); otherwise check the base path (--base-path or "
            "UFSTATS_BASE_PATH)."
        )

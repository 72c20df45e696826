"""`ufstats merge`: write the v1 `global_stats.json` view from all shards.

The view is rebuilt from a full scan every time, because the shards hold the
truth; a damaged view is simply replaced. Merge refuses to replace a view it
did not write (for example one that v1 tools still update during a rollout)
unless that file was imported with `ufstats import-legacy` or `force` is
set; a replaced foreign or unreadable view is first copied aside.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import msgspec

from .atomic import read_bytes_retrying, write_atomically
from .checkpoint import CHECKPOINT_HISTORY, read_checkpoint_view_sha, save_checkpoint
from .errors import InvalidArgumentError, ViewOwnershipError
from .layout import Layout
from .parallel_scan import default_processes, scan_shards
from .shard_reader import Damage
from .state import StatsState, bytes_to_read, read_epoch

log = logging.getLogger("ufstats")

VIEW_VERSION = "2.0"
DEFAULT_HISTORY_LIMIT = 1000


@dataclass
class MergeResult:
    """Counts and outcome of one merge run."""

    events: int
    shards: int
    duplicates: int
    damage: list[Damage]
    seconds: float
    bytes_read: int
    view_written: bool
    backup: str | None = None

    def summary(self) -> str:
        return (
            f"merged {self.events} events from {self.shards} shard{'' if self.shards == 1 else 's'} "
            f"in {self.seconds:.2f} s "
            f"({len(self.damage)} damaged lines, {self.duplicates} duplicates)"
        )


def encode_view(state: StatsState, history_limit: int) -> bytes:
    view = state.aggregate.view(VIEW_VERSION)
    if history_limit:
        view["analysis_history"] = view["analysis_history"][-history_limit:]
        view["packing_history"] = view["packing_history"][-history_limit:]
    # Indented like v1 wrote it, so people can read the file too.
    return msgspec.json.format(msgspec.json.encode(view), indent=4) + b"\n"


def _check_ownership(layout: Layout, state: StatsState, force: bool) -> str | None:
    """Decide whether the current view may be replaced; return a backup name if kept aside."""
    try:
        # A view that another PC is renaming into place can be missing for a moment.
        current = read_bytes_retrying(layout.view_file)
    except FileNotFoundError:
        return None
    digest = hashlib.sha256(current).hexdigest()
    merged_sha = read_checkpoint_view_sha(layout)
    if digest == merged_sha or digest in state.aggregate.imported_sources:
        return None
    try:
        document = msgspec.json.decode(current)
        readable = isinstance(document, dict)
    except msgspec.DecodeError:
        readable = False
    # Without a readable checkpoint, the view's version shows that merge wrote
    # it, because v1 files contain "1.0" or no version.
    merged = readable and merged_sha is None and document.get("version") == VIEW_VERSION
    if readable and not force and not merged and document.get("version") == VIEW_VERSION:
        raise ViewOwnershipError(
            f"{layout.view_file} was written by ufstats merge and changed since, probably by a "
            "v1 tool that still runs on some PC; the records it added exist only there. Bring "
            f"them in with `ufstats import-legacy \"{layout.view_file}\" --base-path "
            f"\"{layout.base_path}\"`, adding the --timezone of the first import (merge then "
            "replaces the file), and update that PC to ufstats."
        )
    if readable and not force and not merged:
        raise ViewOwnershipError(
            f"{layout.view_file} was not written by ufstats merge; it may be a v1 statistics "
            "file that v1 tools still update. Import it first with "
            f"`ufstats import-legacy \"{layout.view_file}\"` (merge then replaces it), or "
            "run merge with --force to replace it anyway (a copy is kept)."
        )
    reason = "replaced" if readable else "damaged"
    stamp = datetime.now().strftime("%Y%m%dT%H%M%S")
    # The digest keeps two different views copied within one second apart.
    backup = layout.view_file.with_name(f"global_stats.{reason}-{stamp}-{digest[:8]}.json")
    write_atomically(backup, current)
    log.warning("kept a copy of the %s view %s as %s", reason, layout.view_file, backup.name)
    return backup.name


def _byte_counter(layout: Layout, progress: Callable[[int, int], None]) -> Callable[[int], None]:
    """Turn per-block sizes into `progress(bytes read, bytes to read)` calls."""
    total = sum(size for _, size in bytes_to_read(layout, read_epoch(layout)))
    done = 0
    progress(0, total)

    def on_chunk(size: int) -> None:
        nonlocal done
        done += size
        # Shards may grow while they are read, so bytes read can pass the total.
        progress(done, max(total, done))

    return on_chunk


def run_merge(
    layout: Layout,
    history_limit: int = DEFAULT_HISTORY_LIMIT,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
    processes: int | None = 1,
) -> MergeResult:
    """Scan every shard, then replace the view and the checkpoint atomically.

    `progress`, if given, is called with (bytes read, bytes to read) before
    reading and after each block of complete lines read (about 1 MiB each).
    With `processes` above 1, or None for one per CPU (at most 4), shards
    are read in up to that many processes when there is enough to read (see
    `parallel_scan`).

    Raises:
        StatsFolderError: the base folder or its `Stats/shards` folder is
            missing or unreachable; nothing is created then.
        ViewOwnershipError: the view was not written by merge (see `force`).
        InvalidArgumentError: `history_limit` or `processes` is invalid.
    """
    if history_limit < 0:
        raise InvalidArgumentError(f"Invalid history_limit={history_limit}: must be 0 (all) or positive")
    if processes is None:
        processes = default_processes()
    if isinstance(processes, bool) or not isinstance(processes, int) or processes < 1:
        raise InvalidArgumentError(
            f"Invalid processes={processes!r}: give a whole number of 1 or more, or None for "
            "one per CPU (at most 4)"
        )
    layout.require_base_path()
    # Merge would otherwise create Stats and an empty view in a mistyped folder.
    layout.require_shards_folder("merge")
    started = time.perf_counter()
    kept = 0 if history_limit == 0 else max(history_limit, CHECKPOINT_HISTORY)
    on_chunk = _byte_counter(layout, progress) if progress is not None else None
    if processes > 1:
        state = scan_shards(layout, kept or None, processes, on_chunk)
    else:
        state = StatsState.scan(layout, history_limit=kept or None, on_chunk=on_chunk)
    view = encode_view(state, history_limit)
    layout.stats_dir.mkdir(exist_ok=True)
    backup = _check_ownership(layout, state, force)
    write_atomically(layout.view_file, view)
    save_checkpoint(state, hashlib.sha256(view).hexdigest())
    result = MergeResult(
        events=state.aggregate.events,
        shards=len(state.shards),
        duplicates=state.duplicates,
        damage=list(state.damage),
        seconds=time.perf_counter() - started,
        bytes_read=state.bytes_read,
        view_written=True,
        backup=backup,
    )
    log.info("%s", result.summary())
    for damage in result.damage:
        log.info("damaged line skipped: %s", damage.describe())
    return result

"""Reading all shards in several processes, so that merge uses more than one core.

The shards, in name order, are cut into consecutive runs of about equal size.
Each run is read into its own `StatsState`: the first by this process, the
others by child processes. Their states are then added to the first in
order, which gives what one pass over the shards in name order gives, with
two exceptions. Session durations are float sums added in another order, so
they can differ in the last bits. An event id read in two runs (a shard
copied under another name) cannot be counted once this way, so then all
shards are read again in this process.

Child processes are started with the "spawn" method on every platform: it is
the only one Windows has, and it never copies locks or threads of the parent.
A program that calls this must therefore be importable without side effects
(the usual `if __name__ == "__main__":` guard), and it is never used in a
frozen application, where spawning would start that application again.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import sys
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from .layout import Layout
from .shard_reader import shard_size
from .state import StatsState, read_epoch

log = logging.getLogger("ufstats")

# Below this many bytes per process, starting a process costs more than it
# saves. On the benchmark machine (docs/benchmarks.md) a child process
# started reading about 0.2 s after the merge began, and one process read
# 32 MiB of shards in about 0.3 s.
MIN_BYTES_PER_PROCESS = 32 * 1024 * 1024
# Processes used when the caller asks for as many as there are CPUs.
MAX_DEFAULT_PROCESSES = 4
# How often the parent reports the children's progress while it waits.
_PROGRESS_SECONDS = 0.1

# In a child process: the shared count of bytes read, for the parent's progress display.
_bytes_read_counter = None


def default_processes() -> int:
    """Return the number of processes merge uses when the caller sets none."""
    if getattr(sys, "frozen", False):
        return 1
    return max(1, min(os.cpu_count() or 1, MAX_DEFAULT_PROCESSES))


def split_into_runs(sizes: list[tuple[str, int]], processes: int) -> list[list[str]]:
    """Cut (name, bytes) pairs into at most `processes` consecutive runs of about equal bytes.

    There are at most total bytes / `MIN_BYTES_PER_PROCESS` runs, so small
    folders stay in one run.
    """
    total = sum(size for _, size in sizes)
    count = max(1, min(processes, len(sizes), total // MIN_BYTES_PER_PROCESS))
    runs: list[list[str]] = [[]]
    done = 0
    for name, size in sizes:
        # Start the next run where the cut falls closest to this run's share of the bytes.
        if runs[-1] and len(runs) < count and done + size / 2 > total * len(runs) / count:
            runs.append([])
        runs[-1].append(name)
        done += size
    return runs


def scan_shards(
    layout: Layout,
    history_limit: int | None,
    processes: int,
    on_chunk: Callable[[int], None] | None = None,
) -> StatsState:
    """Read every shard from its epoch start, in up to `processes` processes.

    Equals `StatsState.scan(layout, history_limit, on_chunk)` except for the
    last bits of float duration sums. `on_chunk` gets the sizes of the
    blocks that all processes read, in this process.
    """
    epoch = read_epoch(layout)
    offsets = epoch.start_offsets if epoch else {}
    names = layout.shard_names()
    sizes = [
        (name, max(0, shard_size(layout.shards_dir / f"{name}.jsonl") - offsets.get(name, 0))) for name in names
    ]
    runs = split_into_runs(sizes, processes)
    if len(runs) < 2:
        return StatsState.scan(layout, history_limit, on_chunk)
    state = _scan_in_processes(layout, history_limit, epoch.reset_id if epoch else None, offsets, runs, on_chunk)
    if state is None:
        return StatsState.scan(layout, history_limit, on_chunk)
    return state


def _scan_in_processes(
    layout: Layout,
    history_limit: int | None,
    epoch_id: str | None,
    offsets: dict[str, int],
    runs: list[list[str]],
    on_chunk: Callable[[int], None] | None,
) -> StatsState | None:
    """Read the first run here and the others in child processes; None if they cannot be combined."""
    context = multiprocessing.get_context("spawn")
    try:
        counter = context.Value("q", 0)
        pool = ProcessPoolExecutor(
            max_workers=len(runs) - 1, mp_context=context, initializer=_start_child, initargs=(counter,)
        )
    except OSError as exc:
        # For example a system without shared memory for semaphores (/dev/shm).
        log.warning("cannot start merge processes (%s); reading all shards in one process", exc)
        return None
    reported = 0

    def report_children() -> None:
        nonlocal reported
        if on_chunk is None:
            return
        done = counter.value
        if done > reported:
            on_chunk(done - reported)
            reported = done

    def on_own_chunk(size: int) -> None:
        if on_chunk is not None:
            on_chunk(size)
            report_children()

    with pool:
        try:
            # Submitting starts the processes, which fails with OSError if the system refuses.
            futures = [
                pool.submit(_scan_run, layout.base_path, run, offsets, epoch_id, history_limit) for run in runs[1:]
            ]
        except (OSError, BrokenProcessPool) as exc:
            log.warning("cannot start merge processes (%s); reading all shards in one process", exc)
            return None
        state = StatsState(layout, history_limit)
        state.epoch_id = epoch_id
        state.on_chunk = on_own_chunk
        state.read_shards(runs[0], offsets)
        state.on_chunk = None
        try:
            _wait_reporting(futures, report_children)
            parts = [future.result() for future in futures]
        except BrokenProcessPool as exc:
            log.warning("a merge process stopped unexpectedly (%s); reading all shards in one process", exc)
            return None
    report_children()
    for part in parts:
        if not state.absorb(part):
            log.info("an event id occurs in shards that different processes read; reading all shards in one process")
            return None
    return state


def _wait_reporting(futures: list[Future[StatsState]], report: Callable[[], None]) -> None:
    pending = set(futures)
    while pending:
        _, pending = wait(pending, timeout=_PROGRESS_SECONDS, return_when=FIRST_COMPLETED)
        report()


def _start_child(counter: object) -> None:
    global _bytes_read_counter
    _bytes_read_counter = counter


def _count_bytes(size: int) -> None:
    counter = _bytes_read_counter
    if counter is not None:
        with counter.get_lock():  # type: ignore[attr-defined]
            counter.value += size  # type: ignore[attr-defined]


def _scan_run(
    base_path: Path, names: list[str], offsets: dict[str, int], epoch_id: str | None, history_limit: int | None
) -> StatsState:
    """Read one run of shards in a child process."""
    state = StatsState(Layout(base_path), history_limit)
    state.epoch_id = epoch_id
    state.on_chunk = _count_bytes
    state.read_shards(names, offsets)
    state.on_chunk = None
    return state

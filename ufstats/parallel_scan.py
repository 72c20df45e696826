"""Reading all shards in several processes, so that merge uses more than one core.

The shards, in name order, are cut into consecutive runs of about equal size.
Each run is read into its own `StatsState`: the first by this process, the
others by child processes. Their states are then added to the first in
order, which gives what one pass over the shards in name order gives. The
one exception is session durations: they are float sums added in another
order, so they can differ in the last bits.

An event id read by two processes (a shard copied under another name) cannot
be counted once by adding states. From the first run where that happens,
this process reads the remaining runs itself, and does the same when a child
process fails. Either way the result equals one pass.

A child is a new interpreter (`sys.executable -c _CHILD_CODE`) that reads
its job from stdin, including this process's `sys.path` so that it imports
the same ufstats, and writes progress and its pickled state to stdout. It
never imports the caller's main module, so callers need no `if __name__ ==
"__main__":` guard. In a frozen application `sys.executable` is the
application itself, so no child is started there.
"""

from __future__ import annotations

import logging
import os
import pickle
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from .layout import Layout
from .state import Rebuild, StatsState, bytes_to_read, read_epoch

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
# A child writes to stdout the job's random marker, then frames: a tag byte
# and an 8-byte big-endian number. Bytes before the marker (a site hook that
# prints at start-up, say) are skipped.
_PROGRESS_FRAME = b"P"  # the number is the size of a block just read
_RESULT_FRAME = b"R"  # the number is the length of the pickled state that follows
_READ_BYTES = 64 * 1024
# Code that a child process runs, with -I so that nothing from the working
# folder or PYTHON* variables is imported. It ignores SIGINT and SIGTERM, which
# a terminal or service manager sends to the whole process group: the parent
# stops its children itself. It unpickles the job before it imports
# ufstats, so the job holds only built-in types.
_CHILD_CODE = (
    "import signal; signal.signal(signal.SIGINT, signal.SIG_IGN); signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "import pickle, sys; job = pickle.load(sys.stdin.buffer); sys.path[:] = job['path']; "
    "from ufstats.parallel_scan import run_child; run_child(job)"
)


def default_processes() -> int:
    """Return the number of processes merge uses when the caller sets none."""
    if not can_start_processes():
        return 1
    return max(1, min(os.cpu_count() or 1, MAX_DEFAULT_PROCESSES))


def can_start_processes() -> bool:
    """Return False where `sys.executable` cannot run this module (a frozen or embedded Python).

    An application that embeds Python sets `sys.executable` to itself, so
    only an executable named like a Python interpreter is started.
    """
    if getattr(sys, "frozen", False) or not sys.executable:
        return False
    return os.path.basename(sys.executable).lower().startswith(("python", "pypy"))


def split_into_runs(sizes: list[tuple[str, int]], processes: int) -> list[list[str]]:
    """Cut (name, bytes) pairs into at most `processes` consecutive runs of about equal bytes.

    There are at most total bytes / `MIN_BYTES_PER_PROCESS` runs, so small
    folders stay in one run. A shard is never split, so one large shard is
    read by one process.
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
    if processes > 1 and not can_start_processes():
        log.info("merge reads in one process: this Python (%s) cannot start child processes", sys.executable)
        processes = 1
    epoch = read_epoch(layout)
    offsets = epoch.start_offsets if epoch else {}
    runs = split_into_runs(bytes_to_read(layout, epoch), processes)
    if len(runs) < 2:
        return StatsState.scan(layout, history_limit, on_chunk)
    state = StatsState(layout, history_limit)
    state.epoch_id = epoch.reset_id if epoch else None
    children = [_ChildScan(layout, run, offsets, state.epoch_id, history_limit) for run in runs[1:]]
    try:
        _read_runs(state, runs, offsets, children, on_chunk)
    except Rebuild as reason:
        rebuild = reason
    else:
        return state
    finally:
        # Also before the scan below, so that no child reads on meanwhile.
        for child in children:
            child.stop()
    # A shard disappeared while it was read; a full scan lists the shards again.
    log.info("reading all shards of %s again in one process: %s", layout.stats_dir, rebuild)
    return StatsState.scan(layout, history_limit, on_chunk)


def _read_runs(
    state: StatsState,
    runs: list[list[str]],
    offsets: dict[str, int],
    children: list[_ChildScan],
    on_chunk: Callable[[int], None] | None,
) -> None:
    """Read the first run into `state`, then add the children's runs in order."""
    reported = 0

    def report_children() -> None:
        nonlocal reported
        done = sum(child.bytes_read for child in children)
        if on_chunk is not None and done > reported:
            on_chunk(done - reported)
            reported = done

    def on_own_chunk(size: int) -> None:
        if on_chunk is not None:
            on_chunk(size)
            report_children()

    state.on_chunk = on_own_chunk
    state.read_shards(runs[0], offsets)
    for index, child in enumerate(children):
        while not child.wait(_PROGRESS_SECONDS):
            report_children()
        report_children()
        part = child.result()
        if part is None:
            log.warning(
                "merge process for shards %s to %s failed (%s); reading shards from %s on in this process",
                runs[index + 1][0], runs[index + 1][-1], child.failure, runs[index + 1][0],
            )
        elif not state.absorb(part):
            shared = min(state.seen_ids & part.seen_ids)
            log.warning(
                "event id %s occurs in shards that different merge processes read (a shard copied under "
                "another name?); reading shards from %s on in this process. `ufstats check` lists "
                "duplicate ids.", shared, runs[index + 1][0],
            )
        else:
            continue
        for child_left in children[index:]:
            child_left.stop()
        for run in runs[index + 1 :]:
            state.read_shards(run, offsets)
        break
    state.on_chunk = None


class _ChildScan:
    """A child process that reads one run of shards, and a thread that collects its output."""

    def __init__(
        self, layout: Layout, names: list[str], offsets: dict[str, int], epoch_id: str | None, history_limit: int | None
    ) -> None:
        self.bytes_read = 0
        self.failure: str | None = None
        self._result: bytes | None = None
        self._marker = os.urandom(16)
        self._protocol_error: str | None = None
        self._errors = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        self._process: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None

        job = {
            "path": list(sys.path),
            "base_path": str(layout.base_path),
            "names": names,
            "offsets": offsets,
            "epoch_id": epoch_id,
            "history_limit": history_limit,
            "marker": self._marker,
        }
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-I", "-c", _CHILD_CODE],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._errors,
            )
        except OSError as exc:
            self.failure = f"cannot start it: {exc}"
            return

        assert self._process.stdin is not None and self._process.stdout is not None
        try:
            self._process.stdin.write(pickle.dumps(job))
            self._process.stdin.close()
        except OSError:
            pass  # The child ended before reading its job; `result` reports its exit status.

        self._reader = threading.Thread(target=self._collect, args=(self._process.stdout,), daemon=True)
        self._reader.start()

    def _collect(self, stream: BinaryIO) -> None:
        """Read the child's output to its end (runs in the reader thread).

        Everything is read, so the child never blocks on a full pipe, even
        when its output is not what this process expects.
        """
        buffer = b""
        while self._marker not in buffer:
            chunk = stream.read1(_READ_BYTES)  # type: ignore[attr-defined]
            if not chunk:
                return
            # Keep only what may hold the start of the marker.
            buffer = buffer[-(len(self._marker) - 1) :] + chunk
        buffer = buffer[buffer.index(self._marker) + len(self._marker) :]
        while True:
            while len(buffer) < 9:
                chunk = stream.read1(_READ_BYTES)  # type: ignore[attr-defined]
                if not chunk:
                    return
                buffer += chunk
            tag, number, buffer = buffer[:1], int.from_bytes(buffer[1:9], "big"), buffer[9:]
            if tag == _PROGRESS_FRAME:
                self.bytes_read += number
            elif tag == _RESULT_FRAME:
                if len(buffer) < number:
                    buffer += stream.read(number - len(buffer))
                if len(buffer) < number:
                    self._protocol_error = f"its result was cut short at {len(buffer)} of {number} bytes"
                    return
                self._result, buffer = buffer[:number], buffer[number:]
                break
            else:
                self._protocol_error = f"unexpected output {tag!r} after its start marker"
                break
        # Anything after the result is drained, and makes the result invalid.
        if buffer or stream.read(1):
            if self._protocol_error is None:
                self._protocol_error = "unexpected output after its result"
            while stream.read1(_READ_BYTES):  # type: ignore[attr-defined]
                pass

    def wait(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for the child's output to end; return True once it has."""
        if self._reader is None:
            return True
        self._reader.join(timeout)
        return not self._reader.is_alive()

    def result(self) -> StatsState | None:
        """Return the child's state, or None (with `failure` set) if it failed."""
        if self._process is None:
            return None
        code = self._process.wait()
        if code == 0 and self._protocol_error is None and self._result is not None:
            return pickle.loads(self._result)
        self._errors.seek(0)
        lines = self._errors.read().decode("utf-8", errors="replace").strip().splitlines()
        if code != 0:
            self.failure = f"exit status {code}" + (f": {lines[-1]}" if lines else "")
        else:
            self.failure = self._protocol_error or "it ended without sending its result"
        return None

    def stop(self) -> None:
        """End the child if it still runs, and release its pipes and files."""
        if self._process is not None:
            if self._process.poll() is None:
                self._process.kill()
            self._process.wait()
            assert self._process.stdout is not None
            self._process.stdout.close()
        if self._reader is not None:
            self._reader.join()
        self._errors.close()


def run_child(job: dict[str, Any]) -> None:
    """Read the run of shards that `job` names; write progress and the state to stdout.

    This runs in a child process started by `scan_shards`.
    """
    output = sys.stdout.buffer
    output.write(job["marker"])

    def report(size: int) -> None:
        output.write(_PROGRESS_FRAME + size.to_bytes(8, "big"))
        output.flush()

    state = StatsState(Layout(Path(job["base_path"])), job["history_limit"])
    state.epoch_id = job["epoch_id"]
    state.on_chunk = report
    state.read_shards(job["names"], job["offsets"])
    state.on_chunk = None
    data = pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
    output.write(_RESULT_FRAME + len(data).to_bytes(8, "big"))
    output.write(data)
    output.flush()

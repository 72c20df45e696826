"""Benchmark ufstats against the single-file design and check its performance targets.

Usage:
    python tools/bench.py            # full mode: 1,000,000 events in 10 shards
    python tools/bench.py --quick    # reduced sizes, for CI (well under a minute)

Both designs run side by side on the same machine in one run. Targets are
ratios, because absolute times drift on shared machines; the table shows
each measured value, its target and pass or fail. Histories are generated
in bulk (`bench_history.py`), and the single-file design is re-implemented
in `singlefile_baseline.py`. Exit status is 0 even when a target fails, so
a caller can read the table; `--strict` makes a failed target exit with 1.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

TOOLS = Path(__file__).resolve().parent
sys.path.insert(0, str(TOOLS))

from bench_history import generate_history, shard_name  # noqa: E402
from singlefile_baseline import SingleFileStats, write_history  # noqa: E402

from ufstats import StatsManager  # noqa: E402
from ufstats.events import FORMAT_VERSION, Event, encode_line, new_event_id, now_timestamp  # noqa: E402
from ufstats.layout import Layout  # noqa: E402
from ufstats.state import StatsState  # noqa: E402

BENCH_MACHINE = "bench-machine-01"
SHARDS = 10
CHILD_TIMEOUT_SECONDS = 300.0
# Records each writer process makes before the timed ones.
WRITER_WARMUP_RECORDS = 5


@dataclass(frozen=True)
class Sizes:
    """Event counts and repetitions of one mode."""

    large: int
    medium: int
    small: int
    records: int
    singlefile_records: int
    merges: int
    cold_reads: int
    writer_records: int
    singlefile_writer_records: int
    # Rounds of 1 and 8 writers (ufstats, then bare system calls); medians are compared.
    writer_rounds: int


FULL = Sizes(
    large=1_000_000, medium=100_000, small=1_000, records=200,
    singlefile_records=5, merges=3, cold_reads=5, writer_records=1000, singlefile_writer_records=100,
    writer_rounds=3,
)
QUICK = Sizes(
    large=20_000, medium=5_000, small=1_000, records=30,
    singlefile_records=3, merges=1, cold_reads=2, writer_records=100, singlefile_writer_records=20,
    writer_rounds=1,
)


@dataclass
class Row:
    """One line of the result table."""

    name: str
    measured: float
    unit: str
    target: str
    passed: bool | None  # None: printed for information, no target

    def cells(self) -> list[str]:
        value = f"{self.measured:.2f} {self.unit}".strip()
        if self.passed is None:
            result = "info"
        elif self.passed:
            result = "PASS"
        else:
            result = "FAIL"
        return [self.name, value, self.target, result]


def count_label(count: int) -> str:
    """Return 1M, 100k or 1k style labels."""
    if count >= 1_000_000 and count % 1_000_000 == 0:
        return f"{count // 1_000_000}M"
    if count >= 1_000 and count % 1_000 == 0:
        return f"{count // 1_000}k"
    return str(count)


# Record latency -----------------------------------------------------------------


def _record(manager: StatsManager, number: int) -> None:
    manager.record_packing("CL001", f"bench-{number}", "worker-01", 12, 30, {"duration_seconds": 321.5})


def _timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def _sample_line() -> bytes:
    """Return a shard line like the ones the record benchmark writes."""
    return encode_line(
        Event(
            format=FORMAT_VERSION, id=new_event_id(), type="packing", workstation="bench-ws01",
            machine=BENCH_MACHINE, timestamp=now_timestamp(), client_id="CL001", session_id="bench-0",
            worker_id="worker-01", orders_count=12, items_count=30,
        )
    )


def _bare_append(path: Path, line: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o666)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def measure_records(empty: Path, large: Path, count: int) -> dict[str, float]:
    """Return median seconds per record on an empty folder, on the large history, and of a bare append.

    The three are interleaved, so load from other processes hits them alike.
    """
    on_empty = StatsManager(empty, workstation=shard_name(0))
    on_large = StatsManager(large, workstation=shard_name(0))
    bare_file = empty / "Stats" / "shards" / "bare-append.probe"
    line = _sample_line()
    samples: dict[str, list[float]] = {"empty": [], "large": [], "bare": []}
    for number in range(count + 5):
        timings = {
            "empty": _timed(lambda: _record(on_empty, number)),
            "large": _timed(lambda: _record(on_large, number)),
            "bare": _timed(lambda: _bare_append(bare_file, line)),
        }
        if number >= 5:  # The first records open lock files and create folders.
            for key, value in timings.items():
                samples[key].append(value)
    on_empty.close()
    on_large.close()
    bare_file.unlink()
    return {key: statistics.median(values) for key, values in samples.items()}


def measure_versus_singlefile(medium: Path, singlefile: Path, records: int, singlefile_records: int) -> dict[str, float]:
    """Return median seconds per record of ufstats and of the single-file design at the same history."""
    manager = StatsManager(medium, workstation=shard_name(0))
    ufstats_samples = [_timed(lambda: _record(manager, number)) for number in range(records + 5)][5:]
    manager.close()
    baseline = SingleFileStats(singlefile)
    baseline_samples = [
        _timed(lambda: baseline.record_packing("CL001", f"bench-{number}", "worker-01", 12, 30, {"duration_seconds": 321.5}))
        for number in range(singlefile_records)
    ]
    return {"ufstats": statistics.median(ufstats_samples), "singlefile": statistics.median(baseline_samples)}


# Child processes ----------------------------------------------------------------


def _run_child(arguments: list[str]) -> tuple[float, dict, int]:
    """Run a child process; return (wall seconds, its JSON output, peak RSS in KiB where known)."""
    started = time.perf_counter()
    process = subprocess.Popen(arguments, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak_kib = 0
    if hasattr(os, "wait4"):
        # wait4 returns the resource usage of this one child (peak RSS in KiB on Linux).
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        peak_kib = usage.ru_maxrss
        stdout, stderr = process.stdout.read(), process.stderr.read()
    else:
        stdout, stderr = process.communicate(timeout=CHILD_TIMEOUT_SECONDS)
        seconds = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(arguments)} failed with exit status {process.returncode}: {stderr.decode()}")
    lines = stdout.decode().strip().splitlines()
    output = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else {}
    return seconds, output, peak_kib


def _probe(*arguments: str) -> list[str]:
    return [sys.executable, str(TOOLS / "bench_probes.py"), *arguments]


def _merge_command(folder: Path, *options: str) -> list[str]:
    return [sys.executable, "-m", "ufstats", "merge", "--base-path", str(folder), *options]


def measure_merge(large: Path, runs: int) -> dict[str, float]:
    """Return median wall seconds of `ufstats merge` (default processes, and one) and of a msgspec-only decode."""
    samples: dict[str, list[float]] = {"merge": [], "single": [], "decode": [], "untyped": []}
    # The first merge of a folder waits about 0.3 s for a missing view (which
    # another merge may be renaming into place), so one untimed merge goes first.
    _run_child(_merge_command(large))
    for _ in range(runs):
        samples["decode"].append(_run_child(_probe("decode", "--base-path", str(large)))[0])
        samples["untyped"].append(_run_child(_probe("decode", "--base-path", str(large), "--untyped"))[0])
        samples["merge"].append(_run_child(_merge_command(large))[0])
        samples["single"].append(_run_child(_merge_command(large, "--processes", "1"))[0])
    return {key: statistics.median(values) for key, values in samples.items()}


def _process_tree_rss_kib(root_pid: int) -> int:
    """Return the summed resident memory (KiB) of a process and its descendants, from /proc."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                # The field after the parenthesised command name is the state, then the parent pid.
                stat = Path(f"/proc/{entry}/stat").read_text()
                parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    tree = {root_pid}
    grown = True
    while grown:
        grown = False
        for pid, parent in parents.items():
            if parent in tree and pid not in tree:
                tree.add(pid)
                grown = True
    total = 0
    for pid in tree:
        try:
            for text in Path(f"/proc/{pid}/status").read_text().splitlines():
                if text.startswith("VmRSS:"):
                    total += int(text.split()[1])
        except (OSError, ValueError):
            continue
    return total


def measure_merge_memory(large: Path) -> dict[str, float]:
    """Return the peak memory of one merge: of all its processes together, and of the largest one.

    The total is the sum of resident memory of the merge process and its
    child processes, sampled every 10 ms from /proc (Linux only; None
    elsewhere). This run is not timed, because sampling costs CPU.
    """
    command = _merge_command(large)
    if not Path("/proc/self/status").exists():
        return {"total_mib": None, "largest_mib": _run_child(command)[2] / 1024}
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak_kib = 0
    while process.poll() is None:
        peak_kib = max(peak_kib, _process_tree_rss_kib(process.pid))
        time.sleep(0.01)
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {process.stderr.read().decode()}")
    seconds, _, largest_kib = _run_child(command)
    return {"total_mib": peak_kib / 1024, "largest_mib": largest_kib / 1024}


def measure_cold_reads(small: Path, large: Path, runs: int, query: str) -> dict[str, float]:
    """Return median seconds of a fresh process's first read at both sizes (alternating)."""
    samples: dict[str, list[float]] = {"small": [], "large": []}
    results: dict[str, object] = {}
    for _ in range(runs):
        for key, folder in (("small", small), ("large", large)):
            _, output, _ = _run_child(_probe("cold-read", "--base-path", str(folder), "--query", query))
            samples[key].append(output["seconds"])
            results[key] = output["result"]
    return {key: statistics.median(values) for key, values in samples.items()} | {"results": results}


def measure_writers(design: str, folder: Path, processes: int, count: int) -> float:
    """Return the aggregate records per second of `processes` writers started together.

    Each writer first records a few sessions that are not counted (they open
    lock files, create folders and check the shard's tail), then waits for the
    start file.
    """
    if folder.exists():
        shutil.rmtree(folder)
    (folder / "Stats").mkdir(parents=True)
    start_file = folder / "start"

    children = []
    for index in range(processes):
        ready = folder / f"ready-{index}"
        arguments = _probe(
            "writer", "--design", design, "--base-path", str(folder), "--workstation", f"writer-{index:02d}",
            "--count", str(count), "--warmup", str(WRITER_WARMUP_RECORDS),
            "--ready-file", str(ready), "--start-file", str(start_file),
        )
        children.append((ready, subprocess.Popen(arguments, stdout=subprocess.PIPE, stderr=subprocess.PIPE)))
    deadline = time.monotonic() + CHILD_TIMEOUT_SECONDS
    while not all(ready.exists() for ready, _ in children):
        if time.monotonic() > deadline or any(child.poll() not in (None, 0) for _, child in children):
            for _, child in children:
                child.kill()
            raise RuntimeError(f"{design} writers did not start: {children[0][1].communicate()[1].decode()}")
        time.sleep(0.01)
    start_file.touch()

    spans = []
    for _, child in children:
        stdout, stderr = child.communicate(timeout=CHILD_TIMEOUT_SECONDS)
        if child.returncode != 0:
            raise RuntimeError(f"{design} writer failed: {stderr.decode()}")
        spans.append(json.loads(stdout.decode().strip().splitlines()[-1]))

    elapsed = max(span["end"] for span in spans) - min(span["start"] for span in spans)
    cpu = sum(span["cpu"] for span in spans) / (processes * count)
    print(f"{design} x{processes}: {processes * count / elapsed:.0f} records/s, {cpu * 1e6:.0f} us CPU per record")
    return processes * count / elapsed


# Reads in a long-running process -----------------------------------------------------


def measure_incremental_reads(small: Path, large: Path, count: int) -> dict[str, float]:
    """Return median seconds of `get_global_stats()` right after one new record, at both sizes.

    Each reader is a long-running `StatsManager` whose first read loaded the
    state; the record comes from another workstation of the same folder.
    """
    folders = {"small": small, "large": large}
    readers = {key: StatsManager(folder, workstation="bench-reader", spool=False) for key, folder in folders.items()}
    writers = {key: StatsManager(folder, workstation=shard_name(1)) for key, folder in folders.items()}
    for reader in readers.values():
        reader.get_global_stats()
    samples: dict[str, list[float]] = {"small": [], "large": []}
    for number in range(count + 3):
        for key in folders:
            _record(writers[key], number)
            seconds = _timed(readers[key].get_global_stats)
            if number >= 3:
                samples[key].append(seconds)
    results = {key: reader.get_global_stats() for key, reader in readers.items()}
    for manager in (*readers.values(), *writers.values()):
        manager.close()
    return {key: statistics.median(values) for key, values in samples.items()} | {"results": results}


def full_scan_results(folder: Path) -> tuple[dict, list]:
    """Return the global stats and the newest 100 packing entries of a full scan, JSON-shaped."""
    from ufstats.events import history_entry

    state = StatsState.scan(Layout.for_base_path(folder), history_limit=100)
    history = [history_entry(item.event) for item in reversed(state.aggregate.packing.oldest_first())]
    return state.aggregate.global_stats(), json.loads(json.dumps(history))


# The run -------------------------------------------------------------------------


def build_folders(root: Path, sizes: Sizes) -> dict[str, Path]:
    """Create the benchmark folders and their histories; return them by name."""
    folders = {name: root / name for name in ("empty", "small", "medium", "large", "singlefile", "writers")}
    for folder in folders.values():
        folder.mkdir(parents=True)
    for key in ("small", "medium", "large"):
        count = getattr(sizes, key)
        started = time.perf_counter()
        written = generate_history(folders[key], count, SHARDS, BENCH_MACHINE)
        print(f"generated {count_label(count)} events ({written / 2**20:.0f} MiB) in {time.perf_counter() - started:.1f} s")
    write_history(folders["singlefile"], sizes.medium)
    return folders


def run(root: Path, sizes: Sizes) -> list[Row]:
    large, medium, small = (count_label(n) for n in (sizes.large, sizes.medium, sizes.small))
    folders = build_folders(root, sizes)
    rows: list[Row] = []

    records = measure_records(folders["empty"], folders["large"], sizes.records)
    versus = measure_versus_singlefile(folders["medium"], folders["singlefile"], sizes.records, sizes.singlefile_records)
    print(
        f"record medians: empty {records['empty'] * 1e3:.3f} ms, {large} {records['large'] * 1e3:.3f} ms, "
        f"bare append {records['bare'] * 1e3:.3f} ms, {medium} {versus['ufstats'] * 1e3:.3f} ms, "
        f"single file at {medium} {versus['singlefile'] * 1e3:.1f} ms"
    )
    rows.append(Row(f"record latency, {large} events / empty folder", records["large"] / records["empty"], "x", "<= 1.5x", records["large"] / records["empty"] <= 1.5))
    speedup = versus["singlefile"] / versus["ufstats"]
    rows.append(Row(f"record speedup over single file, {medium} history", speedup, "x", ">= 500x", speedup >= 500))
    rows.append(Row("record latency / bare open+write+fsync+close", records["large"] / records["bare"], "x", "<= 2x", records["large"] / records["bare"] <= 2))

    merge = measure_merge(folders["large"], sizes.merges)
    memory = measure_merge_memory(folders["large"])
    _run_child(_merge_command(folders["small"]))
    total_memory = "not measured" if memory["total_mib"] is None else f"{memory['total_mib']:.0f} MiB"
    print(
        f"merge {merge['merge']:.2f} s (one process: {merge['single']:.2f} s), msgspec decode into Event "
        f"{merge['decode']:.2f} s, into dicts {merge['untyped']:.2f} s; merge peak memory of all processes "
        f"{total_memory}, of the largest {memory['largest_mib']:.0f} MiB"
    )
    # Records appended after the merge: cold reads must add them to what the checkpoint holds.
    for folder in (folders["small"], folders["large"]):
        late_writer = StatsManager(folder, workstation=shard_name(2))
        for number in range(5):
            _record(late_writer, number)
        late_writer.close()

    cold = measure_cold_reads(folders["small"], folders["large"], sizes.cold_reads, "stats")
    cold_history = measure_cold_reads(folders["small"], folders["large"], sizes.cold_reads, "history")
    expected_stats, expected_history = full_scan_results(folders["large"])
    cold_equal = cold["results"]["large"] == expected_stats and cold_history["results"]["large"] == expected_history
    print(
        f"cold first read: {small} {cold['small'] * 1e3:.2f} ms, {large} {cold['large'] * 1e3:.2f} ms; "
        f"history(limit=100): {small} {cold_history['small'] * 1e3:.2f} ms, {large} {cold_history['large'] * 1e3:.2f} ms"
    )

    incremental = measure_incremental_reads(folders["small"], folders["large"], sizes.records)
    incremental_equal = incremental["results"]["large"] == full_scan_results(folders["large"])[0]
    print(f"read after one record: {small} {incremental['small'] * 1e3:.3f} ms, {large} {incremental['large'] * 1e3:.3f} ms")

    rows.append(Row(f"merge {large} events in {SHARDS} shards / msgspec decode", merge["merge"] / merge["decode"], "x", "<= 3x", merge["merge"] / merge["decode"] <= 3))
    rows.append(Row("  same, msgspec decoding into dicts", merge["merge"] / merge["untyped"], "x", "(shown beside)", None))
    rows.append(Row("  same, merge in one process", merge["single"] / merge["decode"], "x", "(shown beside)", None))
    if memory["total_mib"] is not None:
        rows.append(Row(f"merge {large} events, peak memory, all processes", memory["total_mib"], "MiB", "< 512 MiB", memory["total_mib"] < 512))
    else:
        largest = memory["largest_mib"]
        rows.append(Row(f"merge {large} events, peak memory, largest process", largest, "MiB", "< 512 MiB", 0 < largest < 512 if largest else None))
    ratio = incremental["large"] / incremental["small"]
    rows.append(Row(f"read after one record, {large} / {small} events", ratio, "x", "<= 2x", ratio <= 2))
    rows.append(Row(f"read after one record, {large} events", incremental["large"] * 1e3, "ms", "< 10 ms", incremental["large"] < 0.010))
    ratio = cold["large"] / cold["small"]
    rows.append(Row(f"cold first read after merge, {large} / {small} events", ratio, "x", "<= 3x", ratio <= 3))
    ratio = cold_history["large"] / cold_history["small"]
    rows.append(Row(f"cold history query (limit 100), {large} / {small} events", ratio, "x", "<= 3x", ratio <= 3))
    rows.append(Row("incremental and cold reads equal a full scan", float(cold_equal and incremental_equal), "", "1 (equal)", cold_equal and incremental_equal))

    # The single-file design rewrites a growing file, so it gets fewer records.
    # Rounds alternate 1 and 8 writers, so load from other processes hits both alike.
    # Bare system calls show what this machine allows at all.
    rounds: dict[tuple[str, int], list[float]] = {}
    for _ in range(sizes.writer_rounds):
        for design in ("ufstats", "bare"):
            for processes in (1, 8):
                throughput = measure_writers(design, folders["writers"], processes, sizes.writer_records)
                rounds.setdefault((design, processes), []).append(throughput)
    writers = {key: statistics.median(values) for key, values in rounds.items()}
    for processes in (1, 8):
        writers[("singlefile", processes)] = measure_writers(
            "singlefile", folders["writers"], processes, sizes.singlefile_writer_records
        )
    print("writer throughput (records/s, ufstats and bare the median of the rounds): " + ", ".join(f"{d} x{p}: {v:.0f}" for (d, p), v in writers.items()))
    ratio = writers[("ufstats", 8)] / writers[("ufstats", 1)]
    rows.append(Row("8 writers / 1 writer throughput, ufstats", ratio, "x", ">= 3x", ratio >= 3))
    ratio = writers[("singlefile", 8)] / writers[("singlefile", 1)]
    rows.append(Row("8 writers / 1 writer throughput, single file", ratio, "x", "(shown beside)", None))
    ratio = writers[("bare", 8)] / writers[("bare", 1)]
    rows.append(Row("8 writers / 1 writer throughput, bare append", ratio, "x", "(shown beside)", None))
    return rows


def print_table(rows: list[Row]) -> None:
    headers = ["target", "measured", "limit", "result"]
    table = [headers] + [row.cells() for row in rows]
    widths = [max(len(line[column]) for line in table) for column in range(len(headers))]
    for index, line in enumerate(table):
        print("| " + " | ".join(cell.ljust(width) for cell, width in zip(line, widths)) + " |")
        if index == 0:
            print("|" + "|".join("-" * (width + 2) for width in widths) + "|")


def describe_machine() -> str:
    import msgspec
    import portalocker

    cpu = "unknown CPU"
    try:
        for text in Path("/proc/cpuinfo").read_text().splitlines():
            if text.startswith("model name"):
                cpu = text.split(":", 1)[1].strip()
                break
    except OSError:
        cpu = platform.processor() or cpu
    return (
        f"{os.cpu_count()} CPUs ({cpu}), {platform.system()} {platform.release()}, Python {platform.python_version()}, "
        f"msgspec {msgspec.__version__}, portalocker {portalocker.__version__}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark ufstats against the single-file design.")
    parser.add_argument("--quick", action="store_true", help="reduced sizes for CI: 20k events instead of 1M")
    parser.add_argument("--dir", type=Path, help="folder for the generated data (default: a new temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the generated data after the run")
    parser.add_argument("--strict", action="store_true", help="exit with status 1 if a target fails")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    root = Path(tempfile.mkdtemp(prefix="ufstats-bench-", dir=args.dir))
    # Every process of the run: one machine, private lock and spool folders.
    os.environ["UFSTATS_MACHINE_ID"] = BENCH_MACHINE
    os.environ["UFSTATS_LOCAL_DIR"] = str(root / "local-state")
    print(f"ufstats benchmark, {'quick' if args.quick else 'full'} mode, data in {root}")
    print(describe_machine())
    started = time.perf_counter()
    try:
        rows = run(root, sizes)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print(f"finished in {time.perf_counter() - started:.0f} s")
    if args.quick:
        print("quick mode: the folders are too small for the targets, so the results only show that the benchmark runs")
    print_table(rows)
    failed = [row for row in rows if row.passed is False]
    return 1 if args.strict and failed else 0


if __name__ == "__main__":
    sys.exit(main())

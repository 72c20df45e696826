"""Measurements that `tools/bench.py` runs in child processes.

Each subcommand prints one JSON object on stdout:

- `writer`: record `--warmup` packing sessions, then `--count` more once the
  start file exists, with ufstats, the single-file design or bare system
  calls; prints the monotonic start and end of the counted ones;
- `cold-read`: the first `get_global_stats()` (or a history query) of a fresh
  process, timed from the creation of its `StatsManager`;
- `decode`: read every shard in the blocks that merge reads and decode it
  with msgspec alone, the yardstick for merge.

Monotonic clocks are system-wide on Linux and Windows, so the parent can
compare the start and end times of several writers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import msgspec

from ufstats import StatsManager
from ufstats.events import Event
from ufstats.layout import Layout
from ufstats.shard_reader import CHUNK_BYTES

START_WAIT_SECONDS = 120.0


def _wait_for(path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"start file {path} did not appear within {timeout:.0f} s")
        time.sleep(0.001)


class BareAppender:
    """The system calls of a record and nothing else: open, write, fsync and close one line."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def record_packing(self, client_id: str, session_id: str, *args: object) -> None:
        line = f'{{"client_id":"{client_id}","session_id":"{session_id}","padding":"{"x" * 200}"}}\n'.encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o666)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)


def run_writer(args: argparse.Namespace) -> dict:
    if args.design == "ufstats":
        recorder = StatsManager(args.base_path, workstation=args.workstation)
    elif args.design == "bare":
        recorder = BareAppender(Path(args.base_path) / f"{args.workstation}.bare")
    else:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from singlefile_baseline import SingleFileStats

        recorder = SingleFileStats(Path(args.base_path))
    for number in range(args.warmup):
        recorder.record_packing(
            "CL001", f"{args.workstation}-warmup-{number}", "worker-01", 12, 30, {"duration_seconds": 321.5}
        )
    Path(args.ready_file).touch()
    _wait_for(Path(args.start_file), START_WAIT_SECONDS)
    started = time.monotonic()
    cpu_started = time.process_time()
    for number in range(args.count):
        recorder.record_packing(
            "CL001", f"{args.workstation}-{number}", "worker-01", 12, 30, {"duration_seconds": 321.5}
        )
    ended = time.monotonic()
    return {"start": started, "end": ended, "count": args.count, "cpu": time.process_time() - cpu_started}


def run_cold_read(args: argparse.Namespace) -> dict:
    started = time.perf_counter()
    manager = StatsManager(args.base_path, workstation="bench-cold-reader", spool=False)
    if args.query == "stats":
        result = manager.get_global_stats()
    else:
        result = manager.get_packing_history(limit=100)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "result": result}


def run_decode(args: argparse.Namespace) -> dict:
    # Typed: into the same `Event` structs that merge decodes. Untyped: into dicts.
    decoder = msgspec.json.Decoder() if args.untyped else msgspec.json.Decoder(Event)
    layout = Layout.for_base_path(args.base_path)
    events = 0
    started = time.perf_counter()
    for name in layout.shard_names():
        with open(layout.shards_dir / f"{name}.jsonl", "rb") as handle:
            pending = b""
            while True:
                chunk = handle.read(CHUNK_BYTES)
                if not chunk:
                    break
                data = pending + chunk
                cut = data.rfind(b"\n") + 1
                pending = data[cut:]
                events += len(decoder.decode_lines(data[:cut]))
    return {"seconds": time.perf_counter() - started, "events": events}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    writer = commands.add_parser("writer")
    writer.add_argument("--design", choices=["ufstats", "singlefile", "bare"], required=True)
    writer.add_argument("--base-path", required=True)
    writer.add_argument("--workstation", required=True)
    writer.add_argument("--count", type=int, required=True)
    writer.add_argument("--warmup", type=int, default=0, help="records made before the start file is awaited")
    writer.add_argument("--ready-file", required=True)
    writer.add_argument("--start-file", required=True)
    cold = commands.add_parser("cold-read")
    cold.add_argument("--base-path", required=True)
    cold.add_argument("--query", choices=["stats", "history"], default="stats")
    decode = commands.add_parser("decode")
    decode.add_argument("--base-path", required=True)
    decode.add_argument("--untyped", action="store_true", help="decode into dicts instead of Event structs")
    args = parser.parse_args(argv)
    runners = {"writer": run_writer, "cold-read": run_cold_read, "decode": run_decode}
    print(json.dumps(runners[args.command](args)))


if __name__ == "__main__":
    main()

"""Crash harness: SIGKILL shard writers at random moments, then count what survived.

Writer processes call `StatsManager.record_analysis` / `record_packing` in a
loop. After each call returns, the writer appends the record's session id to
its own acknowledgement file. The harness kills a random writer with SIGKILL
after a random delay, restarts it, and repeats. Several writers may share one
workstation id (one simulated PC), which exercises the local shard lock.
With `--torn-tails`, after some kills the harness also appends, under the
workstation's lock, a fragment of a line (or a run of NUL bytes) to the
victim's shard, as a power cut in the middle of a write would leave.

At the end it delivers any local spool, reads every shard and checks:

- every acknowledged record is counted exactly once;
- a record that was in flight when its writer died (the one after the last
  acknowledgement of that writer process) is counted at most once;
- nothing else is counted (no torn fragment, no unknown session id);
- the totals match the counts encoded in the counted session ids;
- no byte of a shard observed at any kill was later changed or removed.

Usage (POSIX only, because it uses SIGKILL):

    python tools/crash_harness.py --kills 200
    python tools/crash_harness.py --kills 20 --workstations 2 --writers-per-workstation 2 --json

Exit status: 0 when every check passed, 1 when a check failed, 2 when the
harness could not finish the requested kills within --max-seconds.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

# Session ids look like "w<writer>-i<incarnation>-n<number>".
SESSION_PATTERN = re.compile(r"w(\d+)-i(\d+)-n(\d+)")
TORN_SESSION_PREFIX = "torn-"
# A writer process stops by itself after this many records, so a lost
# harness never leaves a writer running for long.
WORKER_MAX_RECORDS = 200_000


def orders_for(number: int) -> int:
    return number % 5 + 1


def items_for(number: int) -> int:
    return number % 3 + 1


# Writer process ----------------------------------------------------------------


def run_worker(args: argparse.Namespace) -> int:
    """Record in a loop, acknowledging each record after its call returned."""
    from ufstats import StatsManager
    from ufstats.errors import StatsManagerError

    rng = random.Random(f"{args.writer}-{args.incarnation}")
    manager = StatsManager(args.base_path, workstation=args.workstation, lock_timeout=args.lock_timeout)
    ack = os.open(args.ack_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    Path(args.ready_file).touch()
    deadline = time.monotonic() + args.max_seconds
    for number in range(WORKER_MAX_RECORDS):
        if time.monotonic() > deadline:
            break
        session = f"w{args.writer}-i{args.incarnation}-n{number}"
        # Padding of varying size makes some lines cross a 4 KiB page, where
        # Linux may cut a write short when SIGKILL arrives.
        metadata = {"padding": "x" * rng.choice((0, 0, 0, 10, 10, 300, 300, 300, 3000, 6000))}
        try:
            if number % 2:
                manager.record_packing("C1", session, f"worker-{args.writer}", orders_for(number), items_for(number), metadata)
            else:
                manager.record_analysis("C2", session, orders_for(number), metadata)
        except StatsManagerError as exc:
            os.write(ack, f"failed {session}\n".encode())
            print(f"writer {args.writer}: {exc}", file=sys.stderr)
            continue
        os.write(ack, f"ok {session}\n".encode())
        if args.pause:
            time.sleep(args.pause)
    manager.close()
    return 0


# Harness -----------------------------------------------------------------------


@dataclass
class Writer:
    index: int
    workstation: str
    local_dir: Path
    incarnation: int = 0
    process: subprocess.Popen | None = None
    ready_file: Path | None = None


@dataclass
class Report:
    kills: int = 0
    kills_after_first_record: int = 0
    torn_fragments: int = 0
    seconds: float = 0.0
    acknowledged: int = 0
    failed_calls: int = 0
    counted: int = 0
    in_flight_counted: int = 0
    spooled_delivered: int = 0
    damaged_lines: int = 0
    incomplete_tails: int = 0
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    altered_shards: list[str] = field(default_factory=list)
    writer_errors: list[str] = field(default_factory=list)
    totals_mismatch: str | None = None
    finished: bool = True

    @property
    def ok(self) -> bool:
        problems = self.lost or self.duplicated or self.unexpected or self.altered_shards or self.writer_errors
        return not problems and self.totals_mismatch is None


class Harness:
    def __init__(self, options: argparse.Namespace, folder: Path) -> None:
        self.options = options
        self.folder = folder
        self.base_path = folder / "0UFulfilment"
        self.base_path.mkdir(parents=True, exist_ok=True)
        self.acks = folder / "acks"
        self.acks.mkdir(exist_ok=True)
        self.rng = random.Random(options.seed)
        self.writers: list[Writer] = []
        for ws_index in range(options.workstations):
            workstation = f"PC-{ws_index}"
            local_dir = folder / "local" / workstation
            for _ in range(options.writers_per_workstation):
                self.writers.append(Writer(len(self.writers), workstation, local_dir))
        self.snapshots: dict[str, tuple[int, str]] = {}
        self.report = Report()
        self.started = time.monotonic()

    def shard(self, workstation: str) -> Path:
        return self.base_path / "Stats" / "shards" / f"{workstation}.jsonl"

    def environment(self, writer: Writer) -> dict[str, str]:
        environment = dict(os.environ)
        # Each simulated PC has its own local disk (locks, spool) and machine id.
        environment["UFSTATS_LOCAL_DIR"] = str(writer.local_dir)
        environment["UFSTATS_MACHINE_ID"] = hashlib.sha256(writer.workstation.encode()).hexdigest()[:16]
        environment.pop("UFSTATS_HOST", None)
        source_root = str(Path(__file__).resolve().parent.parent)
        environment["PYTHONPATH"] = os.pathsep.join(filter(None, [source_root, environment.get("PYTHONPATH")]))
        return environment

    def start(self, writer: Writer) -> None:
        writer.incarnation += 1
        writer.ready_file = self.folder / f"ready-w{writer.index}-i{writer.incarnation}"
        remaining = max(1.0, self.options.max_seconds - (time.monotonic() - self.started) + 5)
        command = [
            sys.executable, str(Path(__file__).resolve()), "worker",
            "--base-path", str(self.base_path),
            "--workstation", writer.workstation,
            "--writer", str(writer.index),
            "--incarnation", str(writer.incarnation),
            "--ack-file", str(self.acks / f"w{writer.index}-i{writer.incarnation}.txt"),
            "--ready-file", str(writer.ready_file),
            "--max-seconds", f"{remaining:.1f}",
            "--pause", str(self.options.pause),
        ]
        with open(self.folder / f"writer-{writer.index}.log", "ab") as log_file:
            writer.process = subprocess.Popen(command, env=self.environment(writer), stderr=log_file)

    def kill(self, writer: Writer) -> None:
        assert writer.process is not None
        writer.process.send_signal(signal.SIGKILL)
        writer.process.wait(timeout=30)

    def append_torn_fragment(self, writer: Writer) -> None:
        """Append what a power cut during a write could leave: part of a line, or NUL bytes."""
        from ufstats.events import Event, encode_line, new_event_id, now_timestamp

        shard = self.shard(writer.workstation)
        if not shard.exists():
            return
        self.report.torn_fragments += 1
        if self.rng.random() < 0.3:
            fragment = b"\0" * self.rng.randint(1, 512)
        else:
            event = Event(
                format=1, id=new_event_id(), type="analysis", workstation=writer.workstation,
                timestamp=now_timestamp(), client_id="C2",
                session_id=f"{TORN_SESSION_PREFIX}{self.report.torn_fragments}", orders_count=1,
            )
            line = encode_line(event)
            # Cut before the closing brace, so the fragment can never become a valid line.
            fragment = line[: self.rng.randint(1, len(line) - 2)]
        # Append under the workstation's local lock, as the killed writer held it.
        from ufstats.shard_writer import LocalLock

        previous = os.environ.get("UFSTATS_LOCAL_DIR")
        os.environ["UFSTATS_LOCAL_DIR"] = str(writer.local_dir)
        try:
            lock = LocalLock(shard, timeout=30.0)
        finally:
            if previous is None:
                del os.environ["UFSTATS_LOCAL_DIR"]
            else:
                os.environ["UFSTATS_LOCAL_DIR"] = previous
        try:
            with lock, open(shard, "ab") as handle:
                handle.write(fragment)
        finally:
            lock.close()

    def snapshot_shards(self) -> None:
        """Check that every shard still starts with the bytes seen last time, then remember it."""
        for workstation in sorted({w.workstation for w in self.writers}):
            shard = self.shard(workstation)
            try:
                data = shard.read_bytes()
            except FileNotFoundError:
                data = b""
            previous = self.snapshots.get(workstation)
            if previous is not None:
                length, digest = previous
                if len(data) < length or hashlib.sha256(data[:length]).hexdigest() != digest:
                    self.report.altered_shards.append(f"{workstation} (first {length} bytes changed)")
            self.snapshots[workstation] = (len(data), hashlib.sha256(data).hexdigest())

    def run(self) -> Report:
        for writer in self.writers:
            self.start(writer)
        deadline = self.started + self.options.max_seconds
        while self.report.kills < self.options.kills:
            if time.monotonic() > deadline:
                self.report.finished = False
                break
            time.sleep(self.rng.uniform(0, 2 * self.options.mean_interval))
            for writer in self.writers:
                if writer.process is not None and writer.process.poll() not in (None, 0):
                    self.report.writer_errors.append(f"writer {writer.index} exited with {writer.process.returncode}")
                    self.start(writer)
            ready = [w for w in self.writers if w.ready_file is not None and w.ready_file.exists()]
            if not ready:
                continue
            victim = self.rng.choice(ready)
            ack_file = self.acks / f"w{victim.index}-i{victim.incarnation}.txt"
            self.kill(victim)
            self.report.kills += 1
            if ack_file.exists() and ack_file.stat().st_size:
                self.report.kills_after_first_record += 1
            if self.options.torn_tails and self.rng.random() < 0.5:
                self.append_torn_fragment(victim)
            self.snapshot_shards()
            self.start(victim)
        for writer in self.writers:
            self.kill(writer)
        self.snapshot_shards()
        self.deliver_spools()
        self.verify()
        self.report.seconds = round(time.monotonic() - self.started, 1)
        return self.report

    def deliver_spools(self) -> None:
        """Deliver what a killed writer left in its local spool, as its next start would."""
        for workstation in sorted({w.workstation for w in self.writers}):
            local_dir = self.folder / "local" / workstation
            command = [
                sys.executable, "-c",
                "import sys; from ufstats import StatsManager; "
                "m = StatsManager(sys.argv[1], workstation=sys.argv[2]); print(m.flush()); m.close()",
                str(self.base_path), workstation,
            ]
            environment = self.environment(Writer(0, workstation, local_dir))
            output = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=60, check=True)
            self.report.spooled_delivered += int(output.stdout.strip() or 0)

    def read_acknowledgements(self) -> tuple[set[str], set[str], dict[tuple[int, int], int]]:
        """Return (acknowledged ids, failed ids, last acknowledged number per writer process)."""
        acknowledged: set[str] = set()
        failed: set[str] = set()
        last: dict[tuple[int, int], int] = {}
        for path in self.acks.glob("*.txt"):
            data = path.read_bytes()
            complete = data[: data.rfind(b"\n") + 1].decode()
            for line in complete.splitlines():
                status, session = line.split(" ", 1)
                (acknowledged if status == "ok" else failed).add(session)
                match = SESSION_PATTERN.fullmatch(session)
                assert match is not None, session
                key = (int(match[1]), int(match[2]))
                last[key] = max(last.get(key, -1), int(match[3]))
        return acknowledged, failed, last

    def verify(self) -> None:
        from ufstats.layout import Layout
        from ufstats.state import StatsState

        state = StatsState.scan(Layout(self.base_path), history_limit=None)
        events = [item.event for item in state.aggregate.analysis.oldest_first()]
        events += [item.event for item in state.aggregate.packing.oldest_first()]
        counts = Counter(event.session_id for event in events)
        acknowledged, failed, last = self.read_acknowledgements()
        report = self.report
        report.acknowledged = len(acknowledged)
        report.failed_calls = len(failed)
        report.counted = sum(counts.values())
        report.damaged_lines = len(state.damage)
        report.incomplete_tails = sum(1 for progress in state.shards.values() if progress.incomplete_tail)
        report.lost = sorted(acknowledged - set(counts))[:20]
        report.duplicated = sorted(s for s, n in counts.items() if n > 1)[:20]
        expected = [0, 0, 0]
        for session in counts:
            match = SESSION_PATTERN.fullmatch(session or "")
            if session not in acknowledged:
                in_flight = match is not None and (
                    session in failed
                    or int(match[3]) == last.get((int(match[1]), int(match[2])), -1) + 1
                )
                if not in_flight:
                    report.unexpected.append(session)
                    continue
                report.in_flight_counted += 1
            number = int(match[3])  # type: ignore[index]
            if number % 2:
                expected[1] += orders_for(number)
                expected[2] += 1
            else:
                expected[0] += orders_for(number)
        report.unexpected = report.unexpected[:20]
        if not report.unexpected and expected != state.aggregate.totals:
            report.totals_mismatch = f"totals {state.aggregate.totals}, expected {expected}"


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=200, help="SIGKILLs to deliver (default 200).")
    parser.add_argument("--workstations", type=int, default=3, help="Simulated PCs, one shard each (default 3).")
    parser.add_argument(
        "--writers-per-workstation", type=int, default=2,
        help="Writer processes sharing each workstation id and its lock (default 2).",
    )
    parser.add_argument(
        "--mean-interval", type=float, default=0.15,
        help="Mean seconds between kills; each delay is uniform in [0, 2 x mean] (default 0.15).",
    )
    parser.add_argument("--max-seconds", type=float, default=300.0, help="Stop killing after this many seconds (default 300).")
    parser.add_argument(
        "--pause", type=float, default=0.005,
        help="Seconds each writer sleeps after a record, to bound shard growth (default 0.005).",
    )
    parser.add_argument("--torn-tails", action="store_true", help="Also append torn line fragments after some kills.")
    parser.add_argument("--seed", type=int, default=1, help="Random seed of kill times and victims (default 1).")
    parser.add_argument("--folder", type=Path, help="Work folder (default: a new temporary folder, removed if all passed).")
    parser.add_argument("--json", action="store_true", help="Print the report as JSON.")
    return parser.parse_args(argv)


def parse_worker_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="One writer process of the crash harness.")
    parser.add_argument("--base-path", required=True)
    parser.add_argument("--workstation", required=True)
    parser.add_argument("--writer", type=int, required=True)
    parser.add_argument("--incarnation", type=int, required=True)
    parser.add_argument("--ack-file", required=True)
    parser.add_argument("--ready-file", required=True)
    parser.add_argument("--max-seconds", type=float, required=True)
    parser.add_argument("--lock-timeout", type=float, default=30.0)
    parser.add_argument("--pause", type=float, default=0.0)
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    if argv[:1] == ["worker"]:
        return run_worker(parse_worker_arguments(argv[1:]))

    if os.name != "posix":
        print("crash_harness needs POSIX signals (SIGKILL)", file=sys.stderr)
        return 2
    options = parse_arguments(argv)
    if options.kills < 0 or options.workstations < 1 or options.writers_per_workstation < 1:
        print("--kills must be >= 0, --workstations and --writers-per-workstation >= 1", file=sys.stderr)
        return 2

    folder = options.folder or Path(tempfile.mkdtemp(prefix="ufstats-crash-"))
    harness = Harness(options, folder)
    try:
        report = harness.run()
    finally:
        for writer in harness.writers:
            if writer.process is not None and writer.process.poll() is None:
                writer.process.kill()
                writer.process.wait(timeout=30)

    summary = {"folder": str(folder), "ok": report.ok, **report.__dict__}
    if options.json:
        print(json.dumps(summary, indent=2))
    else:
        for key, value in summary.items():
            print(f"{key}: {value}")

    if report.ok and report.finished and options.folder is None:
        shutil.rmtree(folder, ignore_errors=True)
    if not report.ok:
        return 1
    return 0 if report.finished else 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

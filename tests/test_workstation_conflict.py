"""Two PCs with the same workstation id: the second one is rejected before it writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ufstats import StatsManager
from ufstats.errors import WorkstationConflictError
from ufstats.shard_writer import TAIL_BYTES

RECORD = textwrap.dedent(
    """
    import sys
    from ufstats import StatsManager
    from ufstats.errors import WorkstationConflictError

    stats = StatsManager(sys.argv[1], workstation="PACK-1", retry_delay=0)
    try:
        stats.record_packing("M", sys.argv[2], "W", 1, 1)
    except WorkstationConflictError as exc:
        print(exc)
        print(stats.pending_count())
        sys.exit(7)
    """
)


def run_pc(base: Path, local: Path, machine: str, session: str) -> subprocess.CompletedProcess:
    """Record one packing session as a separate PC: own machine id and local state folder."""
    env = dict(os.environ, UFSTATS_MACHINE_ID=machine, UFSTATS_LOCAL_DIR=str(local))
    return subprocess.run(
        [sys.executable, "-c", RECORD, str(base), session],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_second_pc_rejected(base_path, tmp_path):
    shard = base_path / "Stats" / "shards" / "PACK-1.jsonl"
    first = run_pc(base_path, tmp_path / "pc-a", "aaaa", "S1")
    assert first.returncode == 0, first.stderr
    assert run_pc(base_path, tmp_path / "pc-a", "aaaa", "S2").returncode == 0
    before = shard.read_bytes()

    second = run_pc(base_path, tmp_path / "pc-b", "bbbb", "S3")

    assert second.returncode == 7, second.stderr
    message, pending = second.stdout.strip().splitlines()
    assert "machine aaaa" in message
    assert "machine bbbb" in message
    assert "'PACK-1'" in message
    assert "UFSTATS_HOST" in message
    assert "Nothing was written" in message
    assert pending == "0"
    assert shard.read_bytes() == before

    # The first PC keeps recording.
    assert run_pc(base_path, tmp_path / "pc-a", "aaaa", "S4").returncode == 0
    sessions = [json.loads(line)["session_id"] for line in shard.read_bytes().splitlines()]
    assert sessions == ["S1", "S2", "S4"]


def test_fix_with_other_id(base_path, monkeypatch):
    monkeypatch.setenv("UFSTATS_MACHINE_ID", "aaaa")
    first = StatsManager(base_path, workstation="PACK-1")
    first.record_analysis("M", "S1", 1)
    monkeypatch.setenv("UFSTATS_MACHINE_ID", "bbbb")
    second = StatsManager(base_path, workstation="PACK-1")
    with pytest.raises(WorkstationConflictError):
        second.record_analysis("M", "S2", 2)
    monkeypatch.setenv("UFSTATS_HOST", "PACK-2")
    renamed = StatsManager(base_path)
    renamed.record_analysis("M", "S2", 2)
    assert renamed.get_global_stats()["total_orders_analyzed"] == 3
    for stats in (first, second, renamed):
        stats.close()


def crash_fragment(shard: Path) -> None:
    """Leave half a line at the end of a shard, as a writer killed mid-append does."""
    with open(shard, "ab") as handle:
        handle.write(b'{"format":1,"id":"dead","type":"anal')


def test_conflict_behind_crash_fragment(base_path, monkeypatch):
    monkeypatch.setenv("UFSTATS_MACHINE_ID", "aaaa")
    first = StatsManager(base_path, workstation="PACK-1")
    first.record_analysis("M", "S1", 1)
    shard = first.layout.shard_path("PACK-1")
    crash_fragment(shard)
    before = shard.read_bytes()

    monkeypatch.setenv("UFSTATS_MACHINE_ID", "bbbb")
    second = StatsManager(base_path, workstation="PACK-1", spool=False)
    with pytest.raises(WorkstationConflictError, match="machine aaaa"):
        second.record_analysis("M", "S2", 2)
    assert shard.read_bytes() == before
    first.close()
    second.close()


def test_conflict_behind_damaged_line(base_path, monkeypatch):
    monkeypatch.setenv("UFSTATS_MACHINE_ID", "aaaa")
    first = StatsManager(base_path, workstation="PACK-1")
    first.record_analysis("M", "S1", 1)
    shard = first.layout.shard_path("PACK-1")
    with open(shard, "ab") as handle:
        handle.write(b"not json at all\n")
    before = shard.read_bytes()

    monkeypatch.setenv("UFSTATS_MACHINE_ID", "bbbb")
    second = StatsManager(base_path, workstation="PACK-1")
    with pytest.raises(WorkstationConflictError):
        second.record_analysis("M", "S2", 2)
    assert shard.read_bytes() == before
    first.close()
    second.close()


def test_conflict_after_long_line(base_path, monkeypatch):
    monkeypatch.setenv("UFSTATS_MACHINE_ID", "aaaa")
    first = StatsManager(base_path, workstation="PACK-1")
    first.record_analysis("M", "S1", 1, {"note": "x" * (4 * TAIL_BYTES)})
    shard = first.layout.shard_path("PACK-1")
    before = shard.read_bytes()
    assert len(before) > 4 * TAIL_BYTES

    monkeypatch.setenv("UFSTATS_MACHINE_ID", "bbbb")
    second = StatsManager(base_path, workstation="PACK-1")
    with pytest.raises(WorkstationConflictError):
        second.record_analysis("M", "S2", 2)
    assert shard.read_bytes() == before
    first.close()
    second.close()


def test_own_crash_fragment_repaired(base_path, monkeypatch):
    monkeypatch.setenv("UFSTATS_MACHINE_ID", "aaaa")
    stats = StatsManager(base_path, workstation="PACK-1")
    stats.record_analysis("M", "S1", 1)
    crash_fragment(stats.layout.shard_path("PACK-1"))
    stats.record_analysis("M", "S2", 2)
    assert stats.get_global_stats()["total_orders_analyzed"] == 3
    stats.close()


def test_many_records_same_machine(base_path, monkeypatch):
    monkeypatch.setenv("UFSTATS_MACHINE_ID", "aaaa")
    stats = StatsManager(base_path, workstation="PACK-1")
    for number in range(50):
        stats.record_analysis("M", f"S{number}", 1, {"pad": "y" * 200})
    stats.close()
    again = StatsManager(base_path, workstation="PACK-1")
    again.record_analysis("M", "last", 1)
    assert again.get_global_stats()["total_orders_analyzed"] == 51
    again.close()


def test_lines_without_machine_ignored(base_path, monkeypatch):
    shards = base_path / "Stats" / "shards"
    shards.mkdir(parents=True)
    line = {
        "format": 1, "id": "old-1", "type": "analysis", "workstation": "PACK-1",
        "timestamp": "2024-01-01T10:00:00+02:00", "client_id": "M", "session_id": "S0", "orders_count": 5,
    }
    (shards / "PACK-1.jsonl").write_text(json.dumps(line) + "\n", encoding="utf-8")
    monkeypatch.setenv("UFSTATS_MACHINE_ID", "bbbb")
    stats = StatsManager(base_path, workstation="PACK-1")
    stats.record_analysis("M", "S1", 1)
    assert stats.get_global_stats()["total_orders_analyzed"] == 6
    stats.close()


def test_conflict_not_spooled(base_path, monkeypatch):
    monkeypatch.setenv("UFSTATS_MACHINE_ID", "aaaa")
    first = StatsManager(base_path, workstation="PACK-1")
    first.record_analysis("M", "S1", 1)
    monkeypatch.setenv("UFSTATS_MACHINE_ID", "bbbb")
    second = StatsManager(base_path, workstation="PACK-1")
    with pytest.raises(WorkstationConflictError):
        second.record_packing("M", "S2", "W", 1, 1)
    assert second.pending_count() == 0
    first.close()
    second.close()


def test_conflict_found_after_own_write(base_path, monkeypatch):
    # The writer skips its tail check while the shard keeps the size it left;
    # a line from another machine changes the size, so the check runs again.
    monkeypatch.setenv("UFSTATS_MACHINE_ID", "machine-a")
    manager = StatsManager(base_path, workstation="PC-1", spool=False)
    manager.record_analysis("M", "s1", 1)
    shard = base_path / "Stats" / "shards" / "PC-1.jsonl"
    foreign = shard.read_bytes().splitlines()[0].replace(b"machine-a", b"machine-b") + b"\n"
    with open(shard, "ab") as handle:
        handle.write(foreign)
    before = shard.read_bytes()
    with pytest.raises(WorkstationConflictError):
        manager.record_analysis("M", "s2", 1)
    assert shard.read_bytes() == before

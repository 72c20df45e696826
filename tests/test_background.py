"""Background delivery: record_* returns once the record is in the local spool."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from ufstats import StatsManager
from ufstats.errors import StatsManagerError, WorkstationConflictError
from ufstats.recorder import Recorder

WAIT_SECONDS = 20.0


def shard_sessions(base: Path, workstation: str = "PC-1") -> list[str]:
    shard = base / "Stats" / "shards" / f"{workstation}.jsonl"
    if not shard.exists():
        return []
    return [json.loads(line)["session_id"] for line in shard.read_bytes().splitlines()]


class BlockedShard:
    """Holds every shard append of the delivery thread until released."""

    def __init__(self, monkeypatch) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()
        real_append = Recorder._append

        def held_append(recorder, data):
            self.entered.set()
            assert self.release.wait(WAIT_SECONDS), "test never released the shard"
            real_append(recorder, data)

        monkeypatch.setattr(Recorder, "_append", held_append)


def test_background_returns_before_delivery(base_path, monkeypatch):
    blocked = BlockedShard(monkeypatch)
    stats = StatsManager(base_path, workstation="PC-1", background=True)
    stats.record_analysis("M", "S1", 1)
    # The call returned while the delivery thread is still held.
    assert stats.pending_count() == 1
    assert shard_sessions(base_path) == []

    blocked.release.set()
    # 1, unless the thread finished delivering before flush() started.
    assert stats.flush(timeout=WAIT_SECONDS) in (0, 1)
    assert shard_sessions(base_path) == ["S1"]
    assert stats.pending_count() == 0
    stats.close()


def test_background_flush_waits_for_later_records(base_path, monkeypatch):
    blocked = BlockedShard(monkeypatch)
    stats = StatsManager(base_path, workstation="PC-1", background=True)
    stats.record_analysis("M", "S1", 1)
    assert blocked.entered.wait(WAIT_SECONDS)
    # S2 is spooled while the thread is delivering a batch that lacks it.
    stats.record_analysis("M", "S2", 2)
    blocked.release.set()
    stats.flush(timeout=WAIT_SECONDS)
    assert shard_sessions(base_path) == ["S1", "S2"]
    assert stats.pending_count() == 0
    stats.close()


def test_background_server_comes_back(tmp_path):
    base = tmp_path / "0UFulfilment"
    stats = StatsManager(base, workstation="PC-1", background=True)
    stats.record_packing("M", "S1", "W", 1, 2)
    stats.record_packing("M", "S2", "W", 1, 2)
    assert stats.pending_count() == 2
    base.mkdir()
    # flush() wakes the thread from its retry delay.
    stats.flush(timeout=WAIT_SECONDS)
    assert shard_sessions(base) == ["S1", "S2"]
    assert stats.get_global_stats()["total_sessions"] == 2
    stats.close()


def test_background_flush_timeout(tmp_path):
    base = tmp_path / "0UFulfilment"
    stats = StatsManager(base, workstation="PC-1", background=True)
    stats.record_analysis("M", "S1", 1)
    with pytest.raises(StatsManagerError, match="were not delivered within 0.2 s") as caught:
        stats.flush(timeout=0.2)
    assert str(stats._recorder.spool.path) in str(caught.value)
    assert stats.pending_count() == 1

    # close() makes the last delivery attempt.
    base.mkdir()
    stats.close()
    assert stats.pending_count() == 0
    assert shard_sessions(base) == ["S1"]


def test_background_needs_spool(base_path):
    with pytest.raises(ValueError, match="background=True with spool=False"):
        StatsManager(base_path, workstation="PC-1", background=True, spool=False)


# Interpreter exit and the next process -------------------------------------------------

SLOW_WRITER = textwrap.dedent(
    """
    import sys, time
    from ufstats import StatsManager
    from ufstats.recorder import Recorder

    real_append = Recorder._append

    def slow_append(recorder, data):
        time.sleep(0.3)  # A slow file server: delivery is not done when the script ends.
        real_append(recorder, data)

    Recorder._append = slow_append
    stats = StatsManager(sys.argv[1], workstation="PC-1", background=True)
    for number in range(1, 4):
        stats.record_analysis("M", f"S{number}", number)
    print(stats.pending_count())
    """
)

OFFLINE_WRITER = textwrap.dedent(
    """
    import sys
    import ufstats.recorder
    from ufstats import StatsManager

    ufstats.recorder.EXIT_FLUSH_SECONDS = 0.2
    stats = StatsManager(sys.argv[1], workstation="PC-1", background=True)
    stats.record_analysis("M", "S1", 1)
    stats.record_analysis("M", "S2", 2)
    """
)

NEXT_PROCESS = textwrap.dedent(
    """
    import sys
    from ufstats import StatsManager

    stats = StatsManager(sys.argv[1], workstation="PC-1", background=True)
    stats.flush(timeout=20)
    print(stats.pending_count())
    """
)


def run_script(script: str, base: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", script, str(base)],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ),
    )


def test_exit_flushes_background(base_path):
    result = run_script(SLOW_WRITER, base_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() != "0"
    assert shard_sessions(base_path) == ["S1", "S2", "S3"]
    stats = StatsManager(base_path, workstation="PC-1")
    assert stats.pending_count() == 0
    stats.close()


def test_next_process_delivers_leftovers(tmp_path):
    base = tmp_path / "0UFulfilment"
    first = run_script(OFFLINE_WRITER, base)
    assert first.returncode == 0, first.stderr
    assert "2 records stay in the local spool" in first.stderr

    base.mkdir()
    second = run_script(NEXT_PROCESS, base)
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == "0"
    assert shard_sessions(base) == ["S1", "S2"]


def test_next_direct_writer_delivers_leftovers(tmp_path):
    base = tmp_path / "0UFulfilment"
    assert run_script(OFFLINE_WRITER, base).returncode == 0
    base.mkdir()
    stats = StatsManager(base, workstation="PC-1")
    stats.record_analysis("M", "S3", 3)
    assert shard_sessions(base) == ["S1", "S2", "S3"]
    stats.close()


def test_background_conflict_raised_to_caller(base_path, monkeypatch):
    monkeypatch.setenv("UFSTATS_MACHINE_ID", "machine-a")
    first = StatsManager(base_path, workstation="PC-1", spool=False)
    first.record_analysis("M", "from-a", 1)
    first.close()
    monkeypatch.setenv("UFSTATS_MACHINE_ID", "machine-b")
    stats = StatsManager(base_path, workstation="PC-1", background=True)
    stats.record_analysis("M", "from-b", 2)
    with pytest.raises(WorkstationConflictError):
        stats.flush(timeout=2)
    # Later calls raise at once and store nothing.
    pending = stats.pending_count()
    with pytest.raises(WorkstationConflictError):
        stats.record_analysis("M", "from-b-again", 3)
    assert stats.pending_count() == pending
    stats.close()


def test_background_flush_returns_delivered(base_path):
    stats = StatsManager(base_path, workstation="PC-1", background=True)
    for number in range(3):
        stats.record_analysis("M", f"s{number}", 1)
    delivered = stats.flush(timeout=10)
    # The thread may deliver some records before flush() is called.
    assert 0 <= delivered <= 3
    assert stats.pending_count() == 0
    stats.close()


def test_record_after_close_rejected(base_path):
    stats = StatsManager(base_path, workstation="PC-1", background=True)
    stats.close(timeout=1)
    with pytest.raises(StatsManagerError, match="was closed"):
        stats.record_analysis("M", "late", 1)
    assert stats.pending_count() == 0

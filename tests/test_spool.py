"""File server unreachable: records are retried, spooled locally, delivered once and in order."""

from __future__ import annotations

import errno
import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from ufstats import StatsManager, _platform
from ufstats.cli import main
from ufstats.errors import StatsManagerError
from ufstats.layout import Layout
from ufstats.spool import Spool, find_spools
from ufstats.state import StatsState


def shard_sessions(base: Path, workstation: str = "PC-1") -> list[str]:
    """Return the session ids of the complete, valid lines of a shard, in file order."""
    shard = base / "Stats" / "shards" / f"{workstation}.jsonl"
    sessions = []
    for line in shard.read_bytes().splitlines():
        try:
            sessions.append(json.loads(line)["session_id"])
        except ValueError:
            continue
    return sessions


def counted(base: Path) -> StatsState:
    return StatsState.scan(Layout(base), history_limit=None)


class ShardFaults:
    """Makes opening shards (not the local spool) fail with a chosen OSError."""

    def __init__(self, monkeypatch, base: Path) -> None:
        self.base = base
        self.errors: list[OSError] = []
        self.attempts = 0
        self._real = _platform.open_for_append
        monkeypatch.setattr(_platform, "open_for_append", self._open)

    def fail(self, error_number: int, times: int = 10_000, winerror: int | None = None) -> None:
        error = OSError(error_number, os.strerror(error_number))
        if winerror is not None:
            error.winerror = winerror
        self.errors = [error] * times

    def heal(self) -> None:
        self.errors = []

    def _open(self, path: Path) -> int:
        if Path(path).is_relative_to(self.base):
            self.attempts += 1
            if self.errors:
                raise self.errors.pop()
        return self._real(path)


@pytest.fixture
def faults(monkeypatch, base_path):
    return ShardFaults(monkeypatch, base_path)


def make_manager(base: Path, **options) -> StatsManager:
    options.setdefault("retry_delay", 0)
    return StatsManager(base, workstation="PC-1", **options)


# Spooling ------------------------------------------------------------------------


def test_missing_base_spools_then_delivers(tmp_path, caplog):
    base = tmp_path / "offline" / "0UFulfilment"
    stats = make_manager(base)
    with caplog.at_level(logging.WARNING, logger="ufstats"):
        for number in range(1, 4):
            stats.record_analysis("M", f"S{number}", number)
    assert stats.pending_count() == 3
    assert not base.exists()
    assert "keeping the record in the local spool" in caplog.text

    base.mkdir(parents=True)
    stats.record_analysis("M", "S4", 4)

    assert shard_sessions(base) == ["S1", "S2", "S3", "S4"]
    assert stats.pending_count() == 0
    assert not stats._recorder.spool.path.exists()
    assert stats.get_global_stats()["total_orders_analyzed"] == 10
    stats.close()


def test_permission_denied_spools(base_path, faults):
    stats = make_manager(base_path)
    faults.fail(errno.EACCES)
    stats.record_packing("M", "S1", "W", 1, 2)
    stats.record_packing("M", "S2", "W", 3, 4)
    assert stats.pending_count() == 2
    # Not a transient error, so each record made one attempt only.
    assert faults.attempts == 2

    faults.heal()
    assert stats.flush() == 2
    assert shard_sessions(base_path) == ["S1", "S2"]
    assert stats.get_global_stats()["total_sessions"] == 2
    stats.close()


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root ignores folder permissions")
def test_read_only_shards_folder_spools(base_path):
    stats = make_manager(base_path)
    shards = base_path / "Stats" / "shards"
    shards.chmod(0o555)
    try:
        stats.record_analysis("M", "S1", 1)
        assert stats.pending_count() == 1
    finally:
        shards.chmod(0o755)
    assert stats.flush() == 1
    assert shard_sessions(base_path) == ["S1"]
    stats.close()


def test_disk_full_mid_line(base_path, monkeypatch):
    stats = make_manager(base_path)
    stats.record_analysis("M", "S1", 1)
    shard = base_path / "Stats" / "shards" / "PC-1.jsonl"
    shard_fds: set[int] = set()
    real_open = _platform.open_for_append
    real_write = os.write

    def tracking_open(path):
        fd = real_open(path)
        if Path(path) == shard:
            shard_fds.add(fd)
        return fd

    def full_disk_write(fd, data):
        if fd in shard_fds:
            shard_fds.discard(fd)
            # Half the line reaches the disk, then the disk is full.
            real_write(fd, bytes(data[: len(data) // 2]))
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(_platform, "open_for_append", tracking_open)
    monkeypatch.setattr(os, "write", full_disk_write)
    stats.record_analysis("M", "S2", 2)
    assert stats.pending_count() == 1
    assert not shard.read_bytes().endswith(b"\n")

    monkeypatch.setattr(os, "write", real_write)
    stats.record_analysis("M", "S3", 3)

    assert shard_sessions(base_path) == ["S1", "S2", "S3"]
    state = counted(base_path)
    assert state.aggregate.totals[0] == 6
    assert state.duplicates == 0
    assert len(state.damage) == 1
    stats.close()


def test_new_records_queue_behind_spool(base_path, faults):
    stats = make_manager(base_path)
    faults.fail(errno.EIO, times=1)
    stats.record_analysis("M", "S1", 1)
    assert stats.pending_count() == 1
    faults.fail(errno.EIO, times=1)
    # The spooled record is tried first; it fails, so S2 joins the spool behind it.
    stats.record_analysis("M", "S2", 1)
    assert stats.pending_count() == 2
    stats.record_analysis("M", "S3", 1)
    assert shard_sessions(base_path) == ["S1", "S2", "S3"]
    assert stats.pending_count() == 0
    stats.close()


# Retries --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error_number", "winerror"),
    [(errno.EBUSY, None), (errno.EAGAIN, None), (errno.EACCES, 32), (errno.EACCES, 33), (errno.EACCES, 5)],
)
def test_transient_error_retried(base_path, faults, error_number, winerror):
    stats = make_manager(base_path, max_retries=3)
    faults.fail(error_number, times=2, winerror=winerror)
    stats.record_analysis("M", "S1", 1)
    assert faults.attempts == 3
    assert stats.pending_count() == 0
    assert shard_sessions(base_path) == ["S1"]
    stats.close()


def test_transient_error_outlasting_retries_spooled(base_path, faults):
    stats = make_manager(base_path, max_retries=4)
    faults.fail(errno.EBUSY)
    stats.record_analysis("M", "S1", 1)
    assert faults.attempts == 4
    assert stats.pending_count() == 1
    stats.close()


def test_retry_delays_grow(base_path, faults, monkeypatch):
    stats = StatsManager(base_path, max_retries=4, retry_delay=0.25, workstation="PC-1")
    delays: list[float] = []
    monkeypatch.setattr(stats._recorder, "_sleep", delays.append)
    faults.fail(errno.EBUSY)
    stats.record_analysis("M", "S1", 1)
    assert delays == [0.25, 0.5, 0.75]
    stats.close()


def test_flush_retries_transient(base_path, faults):
    stats = make_manager(base_path, max_retries=3)
    faults.fail(errno.ENETDOWN, times=1)
    stats.record_analysis("M", "S1", 1)
    faults.fail(errno.EBUSY, times=2)
    assert stats.flush() == 1
    assert shard_sessions(base_path) == ["S1"]
    stats.close()


# v1 behaviour and local failures -------------------------------------------------------


def test_spool_off_raises(tmp_path, faults):
    base = tmp_path / "missing"
    stats = make_manager(base, spool=False, max_retries=3)
    with pytest.raises(StatsManagerError) as caught:
        stats.record_analysis("M", "S1", 1)
    assert type(caught.value) is StatsManagerError
    assert "PC-1.jsonl" in str(caught.value)
    assert "after 3 attempts" in str(caught.value)
    assert stats.pending_count() == 0
    stats.close()


def test_spool_off_permission_denied(base_path, faults):
    stats = make_manager(base_path, spool=False, max_retries=2)
    faults.fail(errno.EACCES)
    with pytest.raises(StatsManagerError, match="Permission denied"):
        stats.record_packing("M", "S1", "W", 1, 1)
    assert faults.attempts == 2
    assert stats.pending_count() == 0
    assert not (base_path / "Stats" / "shards" / "PC-1.jsonl").exists()
    stats.close()


def test_spool_failure_raises(tmp_path, monkeypatch):
    stats = make_manager(tmp_path / "missing")

    def broken_add(self, data):
        raise OSError(errno.ENOSPC, "No space left on device", str(self.path))

    monkeypatch.setattr(Spool, "add", broken_add)
    with pytest.raises(StatsManagerError, match="The record was not stored") as caught:
        stats.record_analysis("M", "S1", 1)
    assert "No space left on device" in str(caught.value)
    stats.close()


# Delivery exactly once -----------------------------------------------------------------

CRASH_AFTER_DELIVERY = textwrap.dedent(
    """
    import os, sys
    from ufstats import StatsManager
    from ufstats.spool import Spool

    def die(self, length):
        os._exit(3)  # The process dies after the shard write, before the spool is removed.

    Spool.remove_delivered = die
    StatsManager(sys.argv[1], workstation="PC-1", retry_delay=0).record_analysis("M", "S3", 3)
    """
)


def test_crash_before_spool_cleared(tmp_path, isolated_local_state):
    base = tmp_path / "0UFulfilment"
    stats = make_manager(base)
    stats.record_analysis("M", "S1", 1)
    stats.record_analysis("M", "S2", 2)
    stats.close()
    base.mkdir()

    crashed = subprocess.run([sys.executable, "-c", CRASH_AFTER_DELIVERY, str(base)], timeout=60)
    assert crashed.returncode == 3
    # The spooled pair reached the shard; S3 did not, and its call never returned.
    assert shard_sessions(base) == ["S1", "S2"]

    stats = make_manager(base)
    assert stats.pending_count() == 2
    stats.record_analysis("M", "S4", 4)
    # The shard already ended with the spooled pair, so it was not written again.
    assert shard_sessions(base) == ["S1", "S2", "S4"]
    assert stats.pending_count() == 0
    state = counted(base)
    assert state.aggregate.totals[0] == 7
    assert state.duplicates == 0
    assert stats.get_global_stats()["total_orders_analyzed"] == 7
    assert [entry["session_id"] for entry in stats.get_analysis_history()] == ["S4", "S2", "S1"]
    stats.close()


# ufstats flush -----------------------------------------------------------------------------


def test_flush_command_delivers(tmp_path):
    base = tmp_path / "0UFulfilment"
    stats = make_manager(base)
    stats.record_analysis("M", "S1", 1)
    stats.record_packing("M", "S2", "W", 2, 3)
    stats.close()
    assert [spool.workstation for spool in find_spools()] == ["PC-1"]

    runner = CliRunner()
    offline = runner.invoke(main, ["flush", "--base-path", str(base)])
    assert offline.exit_code == 1
    assert "Could not deliver 2 spooled records" in offline.output

    base.mkdir()
    delivered = runner.invoke(main, ["flush", "--base-path", str(base)])
    assert delivered.exit_code == 0, delivered.output
    assert "delivered 2 records" in delivered.output
    assert shard_sessions(base) == ["S1", "S2"]

    again = runner.invoke(main, ["flush", "--base-path", str(base)])
    assert again.exit_code == 0
    assert "no spooled records" in again.output
    assert shard_sessions(base) == ["S1", "S2"]


def test_flush_command_other_base_untouched(tmp_path):
    first = tmp_path / "first"
    stats = make_manager(first)
    stats.record_analysis("M", "S1", 1)
    stats.close()
    other = tmp_path / "other"
    other.mkdir()
    result = CliRunner().invoke(main, ["flush", "--base-path", str(other)])
    assert result.exit_code == 0
    assert "no spooled records" in result.output
    assert len(find_spools()) == 1


def test_redelivery_skips_delivered_prefix(tmp_path):
    # A delivery appended S1 and S2 and died; S3 was spooled afterwards.
    base = tmp_path / "0UFulfilment"
    stats = make_manager(base)
    stats.record_analysis("M", "S1", 1)
    stats.record_analysis("M", "S2", 2)
    spool = stats._recorder.spool
    delivered = spool.path.read_bytes()
    stats.record_analysis("M", "S3", 3)
    (base / "Stats" / "shards").mkdir(parents=True)
    shard = base / "Stats" / "shards" / "PC-1.jsonl"
    shard.write_bytes(delivered)

    assert stats.flush() == 1
    assert shard_sessions(base) == ["S1", "S2", "S3"]
    assert stats.pending_count() == 0
    stats.close()


def test_redelivery_keeps_lines_shard_lacks(tmp_path):
    # Equal bytes elsewhere in the shard do not count: only its end matters.
    base = tmp_path / "0UFulfilment"
    stats = make_manager(base)
    stats.record_analysis("M", "S1", 1)
    spooled = stats._recorder.spool.path.read_bytes()
    (base / "Stats" / "shards").mkdir(parents=True)
    shard = base / "Stats" / "shards" / "PC-1.jsonl"
    other = make_manager(base)
    shard.write_bytes(spooled)
    other._recorder.spool_enabled = False
    other.record_analysis("M", "S2", 2)

    assert stats.flush() == 1
    assert shard_sessions(base) == ["S1", "S2", "S1"]
    assert counted(base).aggregate.totals[0] == 3
    stats.close()
    other.close()

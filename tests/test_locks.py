"""The local shard lock: timeout, error message, retries, and locks left by killed processes."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import threading

import pytest

from ufstats import StatsManager
from ufstats.errors import FileLockError, StatsManagerError
from ufstats.shard_writer import LocalLock, lock_path_for

# Holds the shard lock, prints "locked", then sleeps until killed (60 s at most).
HOLDER = """
import sys, time
from pathlib import Path
from ufstats.shard_writer import LocalLock
lock = LocalLock(Path(sys.argv[1]), timeout=10)
lock.__enter__()
print("locked", flush=True)
time.sleep(60)
"""


@pytest.fixture
def lock_holder():
    """Start processes that hold a shard's lock; kill them at the end."""
    processes = []

    def start(shard):
        process = subprocess.Popen([sys.executable, "-c", HOLDER, str(shard)], stdout=subprocess.PIPE, text=True)
        processes.append(process)
        assert process.stdout.readline().strip() == "locked"
        return process

    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)


def test_timeout_names_lock_file_and_wait(base_path, lock_holder):
    manager = StatsManager(base_path, workstation="PC-1", lock_timeout=0.3)
    lock_holder(manager.layout.shard_path("PC-1"))
    with pytest.raises(FileLockError) as caught:
        manager.record_analysis("M", "s1", 1)
    error = caught.value
    assert error.lock_file == lock_path_for(manager.layout.shard_path("PC-1"))
    assert error.waited >= 0.3
    assert str(error.lock_file) in str(error)
    assert f"{error.waited:.1f} s" in str(error)
    assert manager.pending_count() == 0
    assert not manager.layout.shard_path("PC-1").exists() or manager.layout.shard_path("PC-1").read_bytes() == b""


def test_timeout_is_stats_manager_error(base_path, lock_holder):
    manager = StatsManager(base_path, workstation="PC-1", lock_timeout=0.1)
    lock_holder(manager.layout.shard_path("PC-1"))
    with pytest.raises(StatsManagerError):
        manager.record_packing("M", "s1", "001", 1, 1)


def test_timeout_between_threads(base_path):
    shard = base_path / "Stats" / "shards" / "PC-1.jsonl"
    lock_taken = threading.Event()
    release = threading.Event()

    def hold():
        with LocalLock(shard, timeout=5):
            lock_taken.set()
            release.wait(30)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert lock_taken.wait(30)
        with pytest.raises(FileLockError) as caught:
            with LocalLock(shard, timeout=0.2):
                pass
        assert caught.value.waited >= 0.2
        assert str(lock_path_for(shard)) in str(caught.value)
    finally:
        release.set()
        thread.join(30)
    with LocalLock(shard, timeout=5):
        pass


@pytest.mark.skipif(os.name != "posix", reason="sends SIGKILL")
def test_killed_holder_does_not_block(base_path, lock_holder):
    manager = StatsManager(base_path, workstation="PC-1", lock_timeout=5)
    shard = manager.layout.shard_path("PC-1")
    holder = lock_holder(shard)
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    # The lock file stays behind, but the OS released its lock with the process.
    assert lock_path_for(shard).exists()
    manager.record_analysis("M", "s1", 3)
    assert manager.get_global_stats()["total_orders_analyzed"] == 3


@pytest.mark.skipif(os.name != "posix", reason="sends SIGKILL")
def test_killed_writer_mid_record_does_not_block(base_path):
    # A writer killed at a random point of its loop, possibly holding the lock.
    script = (
        "import sys\n"
        "from ufstats import StatsManager\n"
        "m = StatsManager(sys.argv[1], workstation='PC-1')\n"
        "print('ready', flush=True)\n"
        "for n in range(100000):\n"
        "    m.record_analysis('M', f'k{n}', 1)\n"
    )
    process = subprocess.Popen([sys.executable, "-c", script, str(base_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "ready"
        threading.Event().wait(0.3)
    finally:
        process.kill()
        process.wait(timeout=30)
    manager = StatsManager(base_path, workstation="PC-1", lock_timeout=5)
    manager.record_analysis("M", "after", 1)
    sessions = {entry["session_id"] for entry in manager.get_analysis_history(limit=1)}
    assert sessions == {"after"}


class FlakyAppend:
    """Stands in for `append_lines`: fails `failures` times with `error`, then appends."""

    def __init__(self, failures, error):
        from ufstats import shard_writer

        self.failures = failures
        self.error = error
        self.calls = 0
        self.real = shard_writer.append_lines

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return self.real(*args, **kwargs)


def flaky_manager(base_path, monkeypatch, failures, error, **options):
    flaky = FlakyAppend(failures, error)
    monkeypatch.setattr("ufstats.recorder.append_lines", flaky)
    manager = StatsManager(base_path, workstation="PC-1", **options)
    sleeps = []
    manager._recorder._sleep = sleeps.append
    return manager, flaky, sleeps


BUSY = OSError(errno.EBUSY, "Device or resource busy")
DENIED = PermissionError(errno.EACCES, "Permission denied")


def test_retries_transient_then_succeeds(base_path, monkeypatch):
    manager, flaky, sleeps = flaky_manager(base_path, monkeypatch, 2, BUSY, max_retries=3, retry_delay=0.25)
    manager.record_analysis("M", "s1", 4)
    assert flaky.calls == 3
    assert sleeps == [0.25, 0.5]
    assert manager.pending_count() == 0
    assert manager.get_global_stats()["total_orders_analyzed"] == 4


def test_retries_exhausted_spools_record(base_path, monkeypatch):
    manager, flaky, sleeps = flaky_manager(base_path, monkeypatch, 99, BUSY, max_retries=4, retry_delay=0.1)
    manager.record_analysis("M", "s1", 4)
    assert flaky.calls == 4
    assert sleeps == pytest.approx([0.1, 0.2, 0.3])
    assert manager.pending_count() == 1


def test_retries_exhausted_without_spool_raises(base_path, monkeypatch):
    manager, flaky, sleeps = flaky_manager(base_path, monkeypatch, 99, BUSY, max_retries=3, retry_delay=0.1, spool=False)
    with pytest.raises(StatsManagerError) as caught:
        manager.record_analysis("M", "s1", 4)
    assert flaky.calls == 3
    assert sleeps == pytest.approx([0.1, 0.2])
    assert "after 3 attempts" in str(caught.value)
    assert str(manager.layout.shard_path("PC-1")) in str(caught.value)


def test_permanent_error_spooled_without_retry(base_path, monkeypatch):
    manager, flaky, sleeps = flaky_manager(base_path, monkeypatch, 99, DENIED, max_retries=5, retry_delay=0.1)
    manager.record_analysis("M", "s1", 4)
    assert flaky.calls == 1
    assert sleeps == []
    assert manager.pending_count() == 1


def test_permanent_error_retried_without_spool(base_path, monkeypatch):
    manager, flaky, sleeps = flaky_manager(base_path, monkeypatch, 2, DENIED, max_retries=3, retry_delay=0.1, spool=False)
    manager.record_analysis("M", "s1", 4)
    assert flaky.calls == 3
    assert sleeps == pytest.approx([0.1, 0.2])


def test_max_retries_one_means_no_retry(base_path, monkeypatch):
    manager, flaky, sleeps = flaky_manager(base_path, monkeypatch, 99, BUSY, max_retries=1, retry_delay=0.1, spool=False)
    with pytest.raises(StatsManagerError):
        manager.record_analysis("M", "s1", 4)
    assert flaky.calls == 1
    assert sleeps == []


def test_retry_really_waits(base_path, monkeypatch):
    import time

    monkeypatch.setattr("ufstats.recorder.append_lines", FlakyAppend(1, BUSY))
    manager = StatsManager(base_path, workstation="PC-1", max_retries=2, retry_delay=0.2)
    started = time.monotonic()
    manager.record_analysis("M", "s1", 1)
    assert time.monotonic() - started >= 0.2
    assert manager.pending_count() == 0

"""The Windows branches of ufstats._platform, run here by patching IS_WINDOWS.

portalocker has a POSIX backend, so with IS_WINDOWS set the Windows lock
branch takes real locks on this machine; the other branches read the
environment variables and registry values that Windows provides.
"""

from __future__ import annotations

import multiprocessing
import time

import pytest

from ufstats import FileLockError, StatsManager, _platform
from ufstats.shard_writer import LocalLock


@pytest.fixture
def windows(monkeypatch):
    monkeypatch.setattr(_platform, "IS_WINDOWS", True)


def hold_lock(key_path: str, local_dir: str, ready, release) -> None:
    import os

    os.environ["UFSTATS_LOCAL_DIR"] = local_dir
    _platform.IS_WINDOWS = True
    with LocalLock(__import__("pathlib").Path(key_path), timeout=5):
        ready.set()
        release.wait(30)


def test_lock_branch_excludes_other_process(windows, tmp_path, isolated_local_state):
    shard = tmp_path / "PC-1.jsonl"
    context = multiprocessing.get_context("spawn")
    ready, release = context.Event(), context.Event()
    holder = context.Process(target=hold_lock, args=(str(shard), str(isolated_local_state), ready, release))
    holder.start()
    try:
        assert ready.wait(30)
        started = time.monotonic()
        with pytest.raises(FileLockError) as caught:
            with LocalLock(shard, timeout=0.3):
                pass
        assert time.monotonic() - started >= 0.3
        assert "PC-1" in str(caught.value)
    finally:
        release.set()
        holder.join(30)
    with LocalLock(shard, timeout=5):
        pass


def test_lock_branch_records(windows, base_path):
    manager = StatsManager(base_path, workstation="PC-1")
    manager.record_analysis("M", "s1", 3)
    manager.record_packing("M", "s1", "001", 2, 5)
    assert manager.get_global_stats()["total_sessions"] == 1
    manager.close()


def test_local_state_dir_uses_localappdata(windows, monkeypatch, tmp_path):
    monkeypatch.delenv("UFSTATS_LOCAL_DIR")
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "AppData" / "Local"))
    assert _platform.local_state_dir() == tmp_path / "AppData" / "Local" / "ufstats"


def test_machine_name_uses_computername(windows, monkeypatch):
    monkeypatch.setenv("COMPUTERNAME", "WH-PACK-03")
    assert _platform.machine_name() == "WH-PACK-03"


def test_default_workstation_from_computername(windows, monkeypatch, base_path):
    monkeypatch.setenv("COMPUTERNAME", "WH PACK/03")
    assert StatsManager(base_path).workstation == "WH-PACK-03"


def test_machine_id_uses_machine_guid(windows, monkeypatch):
    monkeypatch.setattr(_platform, "_windows_machine_guid", lambda: "guid-one")
    first = _platform.machine_id()
    monkeypatch.setattr(_platform, "_windows_machine_guid", lambda: "guid-two")
    second = _platform.machine_id()
    assert len(first) == 16
    assert first != second


def test_machine_id_without_registry(windows, monkeypatch):
    # winreg does not exist here, so the real lookup fails and returns None.
    assert _platform._windows_machine_guid() is None
    monkeypatch.setenv("COMPUTERNAME", "WH-PACK-03")
    assert len(_platform.machine_id()) == 16


def test_directory_fsync_skipped(windows, monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(_platform.os, "open", lambda *args: calls.append(args))
    _platform.fsync_directory(tmp_path)
    assert calls == []

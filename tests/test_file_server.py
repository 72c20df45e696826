"""File-server behaviour simulated here: Windows sharing violations, SMB EBUSY, briefly missing files."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path, PureWindowsPath
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from ufstats import StatsManager, _platform, atomic
from ufstats.cli import main
from ufstats.errors import InvalidArgumentError, StatsFolderError, ViewOwnershipError
from ufstats.layout import Layout
from ufstats.merge import run_merge
from ufstats.spool import Spool


def sharing_violation() -> OSError:
    """The OSError that Windows raises for a rename over a file another process has open."""
    error = PermissionError(errno.EACCES, "The process cannot access the file because it is being used")
    error.winerror = 32
    return error


def access_denied() -> OSError:
    error = PermissionError(errno.EACCES, "Access is denied")
    error.winerror = 5
    return error


def smb_busy() -> OSError:
    return OSError(errno.EBUSY, "Device or resource busy")


class BusyTarget:
    """Makes os.replace onto one file fail a number of times, and records the waits."""

    def __init__(self, monkeypatch, target: Path, make_error, times: int) -> None:
        self.target = target
        self.make_error = make_error
        self.remaining = times
        self.calls = 0
        self.waits: list[float] = []
        self._real_replace = os.replace
        monkeypatch.setattr(os, "replace", self._replace)
        monkeypatch.setattr(_platform, "time", SimpleNamespace(sleep=self.waits.append))

    def _replace(self, source, target):
        if Path(target) == self.target:
            self.calls += 1
            if self.remaining > 0:
                self.remaining -= 1
                raise self.make_error()
        return self._real_replace(source, target)


@pytest.fixture
def recorded(base_path):
    stats = StatsManager(base_path, workstation="PC-1")
    stats.record_analysis("M", "S1", 5)
    stats.record_packing("M", "S2", "W", 3, 9)
    stats.close()
    return base_path


# Transient error detection -------------------------------------------------------


@pytest.mark.parametrize("winerror", [5, 32, 33])
def test_transient_winerrors(winerror):
    error = OSError(errno.EACCES, "denied")
    error.winerror = winerror
    assert _platform.is_transient_error(error)


@pytest.mark.parametrize("winerror", [2, 3, 112])
def test_permanent_winerrors(winerror):
    error = OSError(errno.EBUSY, "other")
    error.winerror = winerror
    assert not _platform.is_transient_error(error)


@pytest.mark.parametrize(("number", "transient"), [
    (errno.EBUSY, True), (errno.EAGAIN, True), (errno.EINTR, True),
    (errno.ENOENT, False), (errno.EACCES, False), (errno.ENOSPC, False), (errno.EIO, False),
])
def test_transient_errnos(number, transient):
    assert _platform.is_transient_error(OSError(number, os.strerror(number))) is transient


# Atomic replace of the view --------------------------------------------------------------


@pytest.mark.parametrize("make_error", [sharing_violation, access_denied, smb_busy])
def test_view_replace_retried(recorded, monkeypatch, make_error):
    layout = Layout(recorded)
    busy = BusyTarget(monkeypatch, layout.view_file, make_error, times=3)
    run_merge(layout)
    assert busy.calls == 4
    assert busy.waits == [0.05, 0.1, 0.2]
    view = json.loads(layout.view_file.read_bytes())
    assert view["total_orders_analyzed"] == 5
    assert view["total_sessions"] == 1


@pytest.mark.parametrize("make_error", [sharing_violation, smb_busy])
def test_view_replace_gives_up(recorded, monkeypatch, make_error):
    layout = Layout(recorded)
    run_merge(layout)
    before = layout.view_file.read_bytes()
    StatsManager(recorded, workstation="PC-2").record_analysis("M", "S3", 1)

    busy = BusyTarget(monkeypatch, layout.view_file, make_error, times=1000)
    with pytest.raises(StatsFolderError) as caught:
        run_merge(layout)
    message = str(caught.value)
    assert str(layout.view_file) in message
    assert "8 attempts" in message
    assert "Close programs" in message
    assert busy.calls == 8
    assert busy.waits == [0.05 * 2**n for n in range(7)]
    assert layout.view_file.read_bytes() == before
    assert not list(layout.stats_dir.glob(".*.tmp"))


def test_view_replace_other_error_not_retried(recorded, monkeypatch):
    layout = Layout(recorded)
    busy = BusyTarget(monkeypatch, layout.view_file, lambda: OSError(errno.EIO, "I/O error"), times=1)
    with pytest.raises(OSError, match="I/O error"):
        run_merge(layout)
    assert busy.calls == 1
    assert busy.waits == []


def test_merge_command_busy_view(recorded, monkeypatch):
    BusyTarget(monkeypatch, Layout(recorded).view_file, smb_busy, times=1000)
    result = CliRunner().invoke(main, ["merge", "--base-path", str(recorded), "--quiet"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: Could not replace ")
    assert "Device or resource busy" in result.output
    assert "Traceback" not in result.output


# Briefly missing files ----------------------------------------------------------------------


class VanishingFile:
    """Makes reads of one file fail with FileNotFoundError a number of times."""

    def __init__(self, monkeypatch, path: Path, times: int) -> None:
        self.path = path
        self.remaining = times
        self.reads = 0
        self.waits: list[float] = []
        real_read_bytes = Path.read_bytes

        def read_bytes(candidate: Path) -> bytes:
            if candidate == self.path:
                self.reads += 1
                if self.remaining > 0:
                    self.remaining -= 1
                    raise FileNotFoundError(errno.ENOENT, "No such file or directory", str(candidate))
            return real_read_bytes(candidate)

        monkeypatch.setattr(Path, "read_bytes", read_bytes)
        monkeypatch.setattr(atomic.time, "sleep", self.waits.append)


def test_read_retries_missing_file(tmp_path, monkeypatch):
    target = tmp_path / "global_stats.json"
    target.write_bytes(b"{}")
    vanishing = VanishingFile(monkeypatch, target, times=3)
    assert atomic.read_bytes_retrying(target) == b"{}"
    assert vanishing.reads == 4
    assert vanishing.waits == [0.01, 0.02, 0.04]


def test_read_gives_up_on_missing_file(tmp_path, monkeypatch):
    target = tmp_path / "global_stats.json"
    vanishing = VanishingFile(monkeypatch, target, times=0)
    with pytest.raises(FileNotFoundError):
        atomic.read_bytes_retrying(target)
    assert vanishing.reads == atomic.MISSING_FILE_RETRIES


def test_ownership_check_waits_for_view(recorded, monkeypatch):
    """A v1 view that is briefly missing while being replaced is still protected."""
    layout = Layout(recorded)
    v1_view = json.dumps({"total_orders_analyzed": 7, "by_client": {}}).encode()
    layout.view_file.write_bytes(v1_view)
    VanishingFile(monkeypatch, layout.view_file, times=2)
    with pytest.raises(ViewOwnershipError):
        run_merge(layout)
    assert layout.view_file.read_bytes() == v1_view


def test_ownership_check_after_own_view(recorded, monkeypatch):
    layout = Layout(recorded)
    run_merge(layout)
    vanishing = VanishingFile(monkeypatch, layout.view_file, times=2)
    run_merge(layout)
    assert vanishing.reads == 3
    assert json.loads(layout.view_file.read_bytes())["total_orders_packed"] == 3


# Appends during a sharing violation -----------------------------------------------------------


def test_shard_append_sharing_violation(base_path, monkeypatch):
    stats = StatsManager(base_path, workstation="PC-1", retry_delay=0)
    real_open = _platform.open_for_append
    failures = [sharing_violation(), sharing_violation()]

    def open_shard(path):
        if failures:
            raise failures.pop()
        return real_open(path)

    monkeypatch.setattr(_platform, "open_for_append", open_shard)
    stats.record_analysis("M", "S1", 1)
    assert stats.pending_count() == 0
    assert stats.get_global_stats()["total_orders_analyzed"] == 1
    stats.close()


# Windows paths ---------------------------------------------------------------------------------

UNC_BASE = PureWindowsPath(r"\\server\share\0UFulfilment")


@pytest.mark.parametrize("workstation", ["PC-1", "PACK.2", "wh_3", "x" * 64])
def test_unc_shard_paths(workstation):
    layout = Layout(UNC_BASE)
    shard = layout.shard_path(workstation)
    assert shard == PureWindowsPath(rf"\\server\share\0UFulfilment\Stats\shards\{workstation}.jsonl")
    assert shard.parent == layout.shards_dir
    assert shard.anchor == "\\\\server\\share\\"
    assert str(layout.view_file) == r"\\server\share\0UFulfilment\Stats\global_stats.json"


@pytest.mark.parametrize(
    "workstation",
    ["..", r"..\..\other", r"a\b", "a/b", "C:evil", "D:", r"\\evil\share", "/abs", "CON", "aux.jsonl", "PC-1.", ""],
)
def test_unc_bad_ids_rejected(workstation):
    layout = Layout(UNC_BASE)
    with pytest.raises(InvalidArgumentError, match="Invalid workstation id"):
        layout.shard_path(workstation)


def test_spool_path_stays_in_folder(tmp_path):
    spool = Spool.for_target(UNC_BASE, "PC-1", tmp_path)
    assert spool.path.parent == tmp_path
    assert spool.path.name.startswith("PC-1-")
    assert spool.target_file.parent == tmp_path


def test_windows_local_state_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("UFSTATS_LOCAL_DIR")
    monkeypatch.setattr(_platform, "IS_WINDOWS", True)
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path))
    assert _platform.local_state_dir() == tmp_path / "ufstats"

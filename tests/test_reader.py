"""`StatsReader` and the reading commands: no folders created, a warning for a wrong folder, v1 notes."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from report_data import LEGACY_FILE
from ufstats import StatsManager
from ufstats.cli import main
from ufstats.layout import Layout
from ufstats.legacy import import_legacy
from ufstats.reader import StatsReader

READING_COMMANDS = [
    ["show"],
    ["workers"],
    ["workers", "--client", "M"],
    ["daily"],
    ["history", "packing"],
]


def test_reader_creates_nothing(base_path):
    reader = StatsReader(base_path)
    assert reader.get_global_stats()["total_sessions"] == 0
    assert reader.get_all_workers_stats() == {}
    assert reader.get_daily_stats() == []
    assert reader.get_packing_history() == []
    assert reader.carried_counts() == [0, 0, 0]
    assert list(base_path.iterdir()) == []


def test_reader_reads_records(base_path):
    manager = StatsManager(base_path, workstation="PC-1", spool=False)
    manager.record_packing("M", "s1", "001", 4, 9)
    manager.close()
    reader = StatsReader(base_path)
    assert reader.get_client_stats("M") == {"orders_analyzed": 0, "orders_packed": 4, "sessions": 1}
    assert reader.get_worker_stats("001")["items"] == 9
    assert not hasattr(reader, "record_analysis")


def test_manager_is_reader_and_creates_stats(base_path):
    manager = StatsManager(base_path, workstation="PC-1")
    manager.close()
    assert isinstance(manager, StatsReader)
    assert (base_path / "Stats" / "shards").is_dir()


@pytest.mark.parametrize("command", READING_COMMANDS, ids=" ".join)
def test_reading_command_wrong_folder(base_path, command):
    result = CliRunner().invoke(main, [*command, "--base-path", str(base_path)])
    assert result.exit_code == 0, result.output
    assert f"warning: no statistics found in {base_path}; check --base-path" in result.output
    assert list(base_path.iterdir()) == []


@pytest.mark.parametrize("command", READING_COMMANDS, ids=" ".join)
def test_reading_command_no_warning(base_path, command):
    (base_path / "Stats").mkdir()
    result = CliRunner().invoke(main, [*command, "--base-path", str(base_path)])
    assert result.exit_code == 0, result.output
    assert "warning" not in result.output


@pytest.fixture
def imported(base_path):
    import_legacy(Layout(base_path), LEGACY_FILE, "Europe/Kyiv")
    return base_path


def test_workers_note_carried_v1(imported):
    result = CliRunner().invoke(main, ["workers", "--base-path", str(imported), "--json"])
    assert result.exit_code == 0, result.output
    note = (
        "note: 20568 orders packed and 188 sessions counted by imported v1 files have no worker "
        "and are not in this table (they are in `ufstats show`)"
    )
    assert note in result.output
    stats = json.loads(result.output.split("note:")[0])
    sessions = sum(worker["sessions"] for worker in stats.values())
    assert sessions + 188 == StatsReader(imported).get_global_stats()["total_sessions"]


def test_workers_client_note_carried_v1(imported):
    result = CliRunner().invoke(main, ["workers", "--base-path", str(imported), "--client", "M"])
    assert result.exit_code == 0, result.output
    assert "note: 13541 orders packed and 92 sessions counted by imported v1 files have no worker" in result.output


def test_daily_note_carried_v1(imported):
    result = CliRunner().invoke(main, ["daily", "--base-path", str(imported)])
    assert result.exit_code == 0, result.output
    assert (
        "note: 4992 orders analysed, 20568 orders packed and 188 sessions counted by imported v1 files "
        "have no date" in result.output
    )


def test_daily_no_note_without_v1(base_path):
    manager = StatsManager(base_path, workstation="PC-1", spool=False)
    manager.record_packing("M", "s1", "001", 4, 9)
    manager.close()
    for command in (["daily"], ["workers"]):
        result = CliRunner().invoke(main, [*command, "--base-path", str(base_path)])
        assert result.exit_code == 0, result.output
        assert "note:" not in result.output

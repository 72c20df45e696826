"""Reset: every reader sees zeros, old shards are archived and restorable, no record is lost."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from click.testing import CliRunner

from ufstats import StatsManager
from ufstats.cli import main
from ufstats.layout import Layout
from ufstats.state import current_epoch_file
from ufstats.reset import list_resets, reset, restore

ZEROS = {"total_orders_analyzed": 0, "total_orders_packed": 0, "total_sessions": 0, "last_updated": None}

READ_TOTALS = (
    "import json, sys\n"
    "from ufstats import StatsManager\n"
    "print(json.dumps(StatsManager(sys.argv[1], workstation='fresh').get_global_stats()))\n"
)


def totals_in_fresh_process(base_path):
    output = subprocess.run(
        [sys.executable, "-c", READ_TOTALS, str(base_path)], capture_output=True, text=True, timeout=60, check=True
    )
    return json.loads(output.stdout)


def record_some(base_path):
    one = StatsManager(base_path, workstation="PC-1")
    two = StatsManager(base_path, workstation="PC-2")
    one.record_analysis("M", "a1", 5)
    two.record_packing("K", "p1", "001", 3, 9)
    return one, two


def test_reset_every_reader_sees_zeros(base_path):
    one, two = record_some(base_path)
    assert two.get_global_stats()["total_orders_packed"] == 3
    one.reset_stats()
    assert one.get_global_stats() == ZEROS
    # A long-running manager of another PC, which had read before the reset.
    assert two.get_global_stats() == ZEROS
    assert two.get_all_clients_stats() == {}
    assert two.get_packing_history() == []
    assert totals_in_fresh_process(base_path) == ZEROS
    view = json.loads(Layout(base_path).view_file.read_text(encoding="utf-8"))
    assert view["total_orders_analyzed"] == 0
    assert view["packing_history"] == []


def test_reset_then_new_records_count(base_path):
    one, two = record_some(base_path)
    one.reset_stats()
    two.record_packing("K", "p2", "001", 4, 1)
    assert one.get_global_stats()["total_orders_packed"] == 4
    assert [entry["session_id"] for entry in one.get_packing_history()] == ["p2"]
    assert totals_in_fresh_process(base_path)["total_sessions"] == 1


def test_reset_archives_old_shards(base_path):
    record_some(base_path)
    layout = Layout(base_path)
    before = {name: (layout.shards_dir / f"{name}.jsonl").read_bytes() for name in layout.shard_names()}
    StatsManager(base_path, workstation="PC-1").reset_stats()
    (reset_id,) = list_resets(layout)
    archive = layout.archive_dir / reset_id
    for name, data in before.items():
        assert (archive / f"{name}.jsonl").read_bytes() == data
        # The shard itself is never truncated.
        assert (layout.shards_dir / f"{name}.jsonl").read_bytes() == data


def test_cli_reset_and_restore(base_path):
    one, two = record_some(base_path)
    runner = CliRunner()
    result = runner.invoke(main, ["reset", "--base-path", str(base_path), "--yes"])
    assert result.exit_code == 0, result.output
    (reset_id,) = list_resets(Layout(base_path))
    assert f"undo with: ufstats reset --restore {reset_id}" in result.output
    assert two.get_global_stats() == ZEROS
    one.record_analysis("M", "a2", 2)

    result = runner.invoke(main, ["reset", "--base-path", str(base_path), "--restore", reset_id, "--yes"])
    assert result.exit_code == 0, result.output
    totals = two.get_global_stats()
    assert totals["total_orders_analyzed"] == 7
    assert totals["total_orders_packed"] == 3
    assert totals_in_fresh_process(base_path)["total_orders_analyzed"] == 7


def test_cli_reset_needs_confirmation(base_path):
    record_some(base_path)
    result = CliRunner().invoke(main, ["reset", "--base-path", str(base_path)], input="n\n")
    assert result.exit_code == 1
    assert list_resets(Layout(base_path)) == []
    assert totals_in_fresh_process(base_path)["total_orders_analyzed"] == 5


def test_restore_unknown_id(base_path):
    record_some(base_path)
    result = CliRunner().invoke(main, ["reset", "--base-path", str(base_path), "--restore", "nope", "--yes"])
    assert result.exit_code == 1
    assert "Unknown reset id 'nope'" in result.output


def test_reset_twice_then_restore_first(base_path):
    one, two = record_some(base_path)
    one.reset_stats()
    one.record_analysis("M", "a2", 2)
    one.reset_stats()
    first, second = list_resets(Layout(base_path))
    runner = CliRunner()
    result = runner.invoke(main, ["reset", "--base-path", str(base_path), "--restore", second, "--yes"])
    assert result.exit_code == 0, result.output
    assert two.get_global_stats()["total_orders_analyzed"] == 2
    result = runner.invoke(main, ["reset", "--base-path", str(base_path), "--restore", first, "--yes"])
    assert result.exit_code == 0, result.output
    assert two.get_global_stats()["total_orders_analyzed"] == 7


# Records in a loop and appends each session id to an acknowledgement file
# after the call returned. It stops when the stop file appears, or after 30 s.
WRITER = """
import os, sys, time
from ufstats import StatsManager
manager = StatsManager(sys.argv[1], workstation="PC-9")
ack = open(sys.argv[2], "a", encoding="ascii")
stop = sys.argv[3]
deadline = time.monotonic() + 30
n = 0
while not os.path.exists(stop) and time.monotonic() < deadline:
    manager.record_analysis("M", f"w{n}", 1)
    ack.write(f"w{n}\\n")
    ack.flush()
    n += 1
manager.close()
"""


def sessions_in(path: Path) -> list[str]:
    sessions = []
    for line in path.read_bytes().split(b"\n"):
        try:
            sessions.append(json.loads(line)["session_id"])
        except ValueError:
            continue
    return sessions


def wait_for_lines(path: Path, count: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if path.exists() and path.read_text(encoding="ascii").count("\n") >= count:
            return
        time.sleep(0.01)
    raise AssertionError(f"{path} did not reach {count} lines")


def test_reset_keeps_records_appended_during_reset(base_path, tmp_path):
    layout = Layout(base_path)
    ack = tmp_path / "ack.txt"
    stop = tmp_path / "stop"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(base_path), str(ack), str(stop)])
    try:
        wait_for_lines(ack, 20)
        reader = StatsManager(base_path, workstation="PC-2")
        for _ in range(3):
            reader.reset_stats()
            acknowledged_at_reset = ack.read_text(encoding="ascii").count("\n")
            wait_for_lines(ack, acknowledged_at_reset + 20)
    finally:
        stop.touch()
        writer.wait(timeout=60)
    assert writer.returncode == 0
    acknowledged = ack.read_text(encoding="ascii").split()
    counted = [entry["session_id"] for entry in reader.get_analysis_history()]
    archived = []
    for reset_id in list_resets(layout):
        # Each archive contains the whole shard up to its reset, so the newest one has all earlier records.
        archived = sessions_in(layout.archive_dir / reset_id / "PC-9.jsonl")
    assert len(counted) == len(set(counted))
    assert set(counted).isdisjoint(archived)
    assert set(acknowledged) <= set(counted) | set(archived)
    # Records acknowledged after the last reset are counted now.
    assert acknowledged[-20:] == counted[::-1][-20:]

    # Resets are undone newest first; then everything counts again.
    for reset_id in reversed(list_resets(layout)):
        result = CliRunner().invoke(main, ["reset", "--base-path", str(base_path), "--restore", reset_id, "--yes"])
        assert result.exit_code == 0, result.output
    restored = [entry["session_id"] for entry in reader.get_analysis_history()]
    assert sorted(restored) == sorted(set(acknowledged))


def test_damaged_epoch_is_clear_error(base_path):
    import pytest

    from ufstats.errors import StatsFolderError

    one, two = record_some(base_path)
    one.reset_stats()
    one.record_analysis("M", "a2", 2)
    layout = Layout(base_path)
    epoch_file = current_epoch_file(layout)
    epoch_file.write_bytes(b'{"reset_id": "2026')
    with pytest.raises(StatsFolderError) as caught:
        StatsManager(base_path, workstation="fresh").get_global_stats()
    assert str(epoch_file) in str(caught.value)
    result = CliRunner().invoke(main, ["show", "--base-path", str(base_path)])
    assert result.exit_code == 1
    assert "is damaged" in result.output

    (reset_id,) = list_resets(layout)
    result = CliRunner().invoke(main, ["reset", "--base-path", str(base_path), "--restore", reset_id, "--yes"])
    assert result.exit_code == 0, result.output
    assert StatsManager(base_path, workstation="fresh").get_global_stats()["total_orders_analyzed"] == 7


def test_epoch_files_are_never_replaced(base_path):
    one, _ = record_some(base_path)
    one.reset_stats()
    first = sorted(p.name for p in Layout(base_path).epochs_dir.iterdir())
    reset_id = first[0][: -len(".json")]
    restore(Layout(base_path), reset_id)
    one.reset_stats()
    names = sorted(p.name for p in Layout(base_path).epochs_dir.iterdir())
    assert len(names) == 3
    assert names[0] == first[0]
    assert [name.split("-", 1)[0] for name in names] == ["000001", "000002", "000003"]
    assert StatsManager(base_path, workstation="fresh").get_global_stats()["total_orders_analyzed"] == 0


def test_reset_with_clock_behind_still_current(base_path, monkeypatch):
    one, _ = record_some(base_path)
    one.reset_stats()
    one.record_analysis("M", "after-first-reset", 5)

    class EarlierDatetime(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime(2001, 1, 1, tzinfo=tz)

    monkeypatch.setattr("ufstats.reset.datetime", EarlierDatetime)
    one.reset_stats()
    assert StatsManager(base_path, workstation="fresh").get_global_stats()["total_orders_analyzed"] == 0


def test_restore_older_reset_rejected(base_path):
    one, _ = record_some(base_path)
    layout = Layout(base_path)
    first = reset(layout).reset_id
    one.record_analysis("M", "between", 5)
    reset(layout)
    one.record_analysis("M", "after-second", 3)
    runner = CliRunner()
    result = runner.invoke(main, ["reset", "--base-path", str(base_path), "--restore", first, "--yes"])
    assert result.exit_code == 1
    assert "is not in effect" in result.output
    assert StatsManager(base_path, workstation="fresh").get_global_stats()["total_orders_analyzed"] == 3

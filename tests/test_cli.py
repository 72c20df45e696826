"""The ufstats command line: reading, merging, importing, errors and help."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from ufstats import StatsManager
from ufstats.cli import main
from ufstats.events import Event, encode_line, new_event_id, now_timestamp

DATA = Path(__file__).parent / "data"


@pytest.fixture
def runner():
    return CliRunner()


@pytest.fixture
def recorded(base_path):
    manager = StatsManager(base_path, workstation="PC-1")
    manager.record_analysis("M", "s1", 10)
    manager.record_analysis("K", "s1", 4)
    manager.record_packing("M", "s1", "001", 9, 20)
    manager.record_packing("M", "s2", "002", 1, 2)
    return base_path


def test_show_json(runner, recorded):
    result = runner.invoke(main, ["show", "--base-path", str(recorded), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["total_orders_analyzed"] == 14
    assert data["total_orders_packed"] == 10
    assert data["total_sessions"] == 2
    assert data["by_client"]["M"] == {"orders_analyzed": 10, "orders_packed": 10, "sessions": 2}


def test_show_table(runner, recorded):
    result = runner.invoke(main, ["show", "--base-path", str(recorded)])
    assert result.exit_code == 0, result.output
    assert "orders analysed: 14" in result.output
    assert "K" in result.output


def test_base_path_from_environment(runner, recorded):
    result = runner.invoke(main, ["show", "--json"], env={"UFSTATS_BASE_PATH": str(recorded)})
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["total_sessions"] == 2


def test_missing_base_path_is_one_line_error(runner, tmp_path):
    missing = tmp_path / "offline-share"
    result = runner.invoke(main, ["show", "--base-path", str(missing)])
    assert result.exit_code == 1
    assert "does not exist or cannot be reached" in result.output
    assert str(missing) in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_base_path_required(runner):
    result = runner.invoke(main, ["show"])
    assert result.exit_code == 2
    assert "--base-path" in result.output


def test_history_filters(runner, recorded):
    result = runner.invoke(
        main, ["history", "packing", "--base-path", str(recorded), "--worker", "002", "--json"]
    )
    assert result.exit_code == 0, result.output
    records = json.loads(result.output)
    assert [r["session_id"] for r in records] == ["s2"]
    result = runner.invoke(main, ["history", "analysis", "--base-path", str(recorded), "--client", "K", "--json"])
    assert [r["orders_count"] for r in json.loads(result.output)] == [4]


def test_history_limit(runner, recorded):
    result = runner.invoke(main, ["history", "analysis", "--base-path", str(recorded), "--limit", "1", "--json"])
    assert len(json.loads(result.output)) == 1


def test_history_worker_rejected_for_analysis(runner, recorded):
    result = runner.invoke(main, ["history", "analysis", "--base-path", str(recorded), "--worker", "001"])
    assert result.exit_code == 2
    assert "--worker applies to packing history only" in result.output


def test_merge_writes_v1_view(runner, recorded):
    result = runner.invoke(main, ["merge", "--base-path", str(recorded)])
    assert result.exit_code == 0, result.output
    assert "merged 4 events from 1 shard " in result.output
    view = json.loads((recorded / "Stats" / "global_stats.json").read_text(encoding="utf-8"))
    assert list(view) == [
        "total_orders_analyzed", "total_orders_packed", "total_sessions", "by_client",
        "analysis_history", "packing_history", "last_updated", "version",
    ]
    assert view["total_orders_analyzed"] == 14
    assert len(view["packing_history"]) == 2


def test_merge_history_limit(runner, recorded):
    result = runner.invoke(main, ["merge", "--base-path", str(recorded), "--history-limit", "1"])
    assert result.exit_code == 0, result.output
    view = json.loads((recorded / "Stats" / "global_stats.json").read_text(encoding="utf-8"))
    assert len(view["analysis_history"]) == 1
    assert view["analysis_history"][0]["client_id"] == "K"
    assert view["total_orders_analyzed"] == 14


def test_merge_refuses_foreign_view(runner, recorded):
    view = recorded / "Stats" / "global_stats.json"
    original = (DATA / "global_stats.json").read_bytes()
    view.write_bytes(original)
    result = runner.invoke(main, ["merge", "--base-path", str(recorded)])
    assert result.exit_code == 1
    assert "was not written by ufstats merge" in result.output
    assert "ufstats import-legacy" in result.output
    assert view.read_bytes() == original


def test_import_then_merge_replaces_imported_view(runner, recorded):
    view = recorded / "Stats" / "global_stats.json"
    view.write_bytes((DATA / "global_stats.json").read_bytes())
    result = runner.invoke(
        main, ["import-legacy", str(view), "--base-path", str(recorded), "--timezone", "Europe/Kyiv"]
    )
    assert result.exit_code == 0, result.output
    assert "imported 1000 analysis and 1000 packing records" in result.output
    result = runner.invoke(main, ["merge", "--base-path", str(recorded)])
    assert result.exit_code == 0, result.output
    merged = json.loads(view.read_text(encoding="utf-8"))
    assert merged["total_orders_analyzed"] == 146368 + 14


def test_merge_force_keeps_copy(runner, recorded):
    view = recorded / "Stats" / "global_stats.json"
    view.write_text('{"total_orders_analyzed": 5}', encoding="utf-8")
    result = runner.invoke(main, ["merge", "--base-path", str(recorded), "--force"])
    assert result.exit_code == 0, result.output
    copies = list((recorded / "Stats").glob("global_stats.replaced-*.json"))
    assert len(copies) == 1
    assert copies[0].read_text(encoding="utf-8") == '{"total_orders_analyzed": 5}'


def test_import_twice_changes_nothing(runner, base_path):
    args = ["import-legacy", str(DATA / "global_stats.json"), "--base-path", str(base_path), "--timezone", "Europe/Kyiv"]
    assert runner.invoke(main, args).exit_code == 0
    shard_files = sorted((base_path / "Stats" / "shards").iterdir())
    before = [p.read_bytes() for p in shard_files]
    result = runner.invoke(main, args)
    assert result.exit_code == 0
    assert "already imported" in result.output
    assert [p.read_bytes() for p in sorted((base_path / "Stats" / "shards").iterdir())] == before


def test_import_rejects_non_statistics_file(runner, base_path, tmp_path):
    other = tmp_path / "settings.json"
    other.write_text('{"theme": "dark"}', encoding="utf-8")
    result = runner.invoke(main, ["import-legacy", str(other), "--base-path", str(base_path)])
    assert result.exit_code == 1
    assert "not a v1 statistics file" in result.output
    assert not (base_path / "Stats" / "shards").exists() or not any((base_path / "Stats" / "shards").iterdir())


def test_every_command_has_help(runner):
    for name, command in main.commands.items():
        result = runner.invoke(main, [name, "--help"])
        assert result.exit_code == 0, name
        assert command.help, f"command {name} has no help text"


def test_python_dash_m_runs_cli():
    result = subprocess.run(
        [sys.executable, "-m", "ufstats", "--version"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "ufstats" in result.stdout


def test_demo_counts_every_record(runner, tmp_path):
    folder = tmp_path / "demo"
    result = runner.invoke(main, ["demo", "--folder", str(folder), "--workstations", "3", "--sessions", "4"])
    assert result.exit_code == 0, result.output
    assert "All 24 records counted exactly once." in result.output
    shards = sorted(p.name for p in (folder / "Stats" / "shards").glob("*.jsonl"))
    assert shards == ["DEMO-PC-01.jsonl", "DEMO-PC-02.jsonl", "DEMO-PC-03.jsonl"]
    assert (folder / "Stats" / "global_stats.json").exists()


def test_demo_rejects_non_empty_folder(runner, tmp_path):
    (tmp_path / "something.txt").write_text("x", encoding="utf-8")
    result = runner.invoke(main, ["demo", "--folder", str(tmp_path)])
    assert result.exit_code == 2
    assert "is not empty" in result.output


def test_closed_pipe_exits_quietly(recorded):
    # `ufstats history ... | head -1` closes the pipe after one line.
    command = (
        f'"{sys.executable}" -m ufstats history analysis --limit 0 --base-path "{recorded}" | head -1'
    )
    # More output than a pipe buffers (64 KiB), so the writer hits the closed pipe.
    lines = [
        encode_line(Event(format=1, id=new_event_id(), type="analysis", workstation="PC-2",
                          timestamp=now_timestamp(), client_id="M", session_id=f"more-{n}", orders_count=1))
        for n in range(3000)
    ]
    (recorded / "Stats" / "shards" / "PC-2.jsonl").write_bytes(b"".join(lines))
    result = subprocess.run(["bash", "-o", "pipefail", "-c", command], capture_output=True, text=True, timeout=60)
    assert "Error" not in result.stderr
    assert "Traceback" not in result.stderr
    assert result.returncode == 0, result.stderr

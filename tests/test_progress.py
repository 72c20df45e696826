"""Progress bars: library callbacks, and silence when stderr is not a terminal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from ufstats import progress
from ufstats.cli import main
from ufstats.layout import Layout
from ufstats.legacy import import_legacy
from ufstats.merge import run_merge

DATA = Path(__file__).parent / "data" / "global_stats.json"


def imported(base_path: Path) -> Path:
    import_legacy(Layout(base_path), DATA, "Europe/Kyiv")
    return base_path


def test_merge_progress_reaches_total(base_path):
    imported(base_path)
    calls: list[tuple[int, int]] = []
    run_merge(Layout(base_path), progress=lambda done, total: calls.append((done, total)))
    shard_bytes = sum(p.stat().st_size for p in (base_path / "Stats" / "shards").iterdir())
    assert calls[0] == (0, shard_bytes)
    assert calls[-1] == (shard_bytes, shard_bytes)
    # One call before reading, then one per block: the shard is below one block.
    assert len(calls) == 2


def test_merge_progress_per_block(base_path, monkeypatch):
    monkeypatch.setattr("ufstats.shard_reader.CHUNK_BYTES", 64 * 1024)
    imported(base_path)
    calls: list[tuple[int, int]] = []
    run_merge(Layout(base_path), progress=lambda done, total: calls.append((done, total)))
    done = [c[0] for c in calls]
    assert done == sorted(done)
    assert len(calls) > 5
    assert calls[-1][0] == calls[-1][1]


def test_import_progress_counts_entries(base_path):
    calls: list[tuple[int, int]] = []
    import_legacy(Layout(base_path), DATA, "Europe/Kyiv", progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (2000, 2000)
    assert (500, 2000) in calls


def test_merge_quiet_when_not_terminal(base_path):
    imported(base_path)
    result = CliRunner().invoke(main, ["merge", "--base-path", str(base_path)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("merged 2001 events from 1 shard ")


def test_merge_json_clean_when_not_terminal(base_path):
    imported(base_path)
    result = CliRunner().invoke(main, ["merge", "--base-path", str(base_path), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["events"] == 2001


def test_import_quiet_when_not_terminal(base_path):
    result = CliRunner().invoke(
        main, ["import-legacy", str(DATA), "--base-path", str(base_path), "--timezone", "Europe/Kyiv"]
    )
    assert result.exit_code == 0, result.output
    shard = next((base_path / "Stats" / "shards").iterdir())
    assert result.output.splitlines() == [f"imported 1000 analysis and 1000 packing records (v1 file) into {shard}"]


def test_bar_shown_on_terminal(base_path, monkeypatch):
    imported(base_path)
    monkeypatch.setattr(progress, "stderr_is_terminal", lambda: True)
    result = CliRunner().invoke(main, ["merge", "--base-path", str(base_path)])
    assert result.exit_code == 0, result.output
    # CliRunner's stderr is no terminal, so click writes only the label.
    assert "Reading shards" in result.output


def test_quiet_option_hides_bar_on_terminal(base_path, monkeypatch):
    imported(base_path)
    monkeypatch.setattr(progress, "stderr_is_terminal", lambda: True)
    for command in (["merge"], ["import-legacy", str(DATA), "--timezone", "Europe/Kyiv"]):
        result = CliRunner().invoke(main, [*command, "--base-path", str(base_path), "--quiet"])
        assert result.exit_code == 0, result.output
        assert "Reading shards" not in result.output
        assert "Converting history" not in result.output


@pytest.mark.parametrize("quiet", [True, False])
def test_progress_bar_ignores_calls_when_off(quiet, capsys):
    with progress.progress_bar("Working", quiet=quiet) as update:
        update(0, 10)
        update(10, 10)
    captured = capsys.readouterr()
    assert captured.err == ""
    assert captured.out == ""

"""A base folder without `Stats/shards` (a mistyped --base-path): check fails, merge and reset stop."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from ufstats import StatsManager
from ufstats import cli as cli_module
from ufstats import reset as reset_module
from ufstats.cli import main
from ufstats.errors import StatsFolderError
from ufstats.layout import Layout
from ufstats.merge import run_merge


def invoke(*arguments: str):
    return CliRunner().invoke(main, list(arguments))


def test_check_empty_folder_fails(base_path):
    result = invoke("check", "--base-path", str(base_path))
    assert result.exit_code == 1, result.output
    assert f"no-statistics: no Stats/shards folder in {base_path}; check --base-path" in result.output
    assert "All is well." not in result.output


def test_check_json_empty_folder(base_path):
    result = invoke("check", "--base-path", str(base_path), "--json")
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is False
    assert [finding["kind"] for finding in report["findings"]] == ["no-statistics"]


def test_check_stats_without_shards(base_path):
    """A v1 folder (Stats with only global_stats.json) has no shards either."""
    (base_path / "Stats").mkdir()
    (base_path / "Stats" / "global_stats.json").write_text("{}", encoding="utf-8")
    result = invoke("check", "--base-path", str(base_path), "--json")
    assert result.exit_code == 1, result.output
    assert [finding["kind"] for finding in json.loads(result.stdout)["findings"]] == ["no-statistics"]


def test_merge_cli_empty_folder(base_path):
    result = invoke("merge", "--base-path", str(base_path))
    assert result.exit_code == 1, result.output
    message = result.output.strip()
    assert message.startswith(f"Error: No statistics in {base_path} yet: there is no Stats/shards folder")
    assert "no PC has recorded yet" in message
    assert "otherwise check the base path" in message
    assert len(result.output.splitlines()) == 1
    assert list(base_path.iterdir()) == []


def test_merge_every_empty_folder_keeps_looping(base_path, monkeypatch):
    # A service started before the first record must not exit (systemd would
    # give up restarting it); each round fails with a log line instead.
    failures = []

    def one_round(interval, merge_once, *arguments, **options):
        try:
            merge_once()
        except StatsFolderError as exc:
            failures.append(str(exc))

    monkeypatch.setattr(cli_module, "run_every", one_round)
    result = invoke("merge", "--base-path", str(base_path), "--every", "1s")
    assert result.exit_code == 0, result.output
    assert len(failures) == 1
    assert "no PC has recorded yet" in failures[0]
    assert list(base_path.iterdir()) == []


def test_run_merge_empty_folder(base_path):
    with pytest.raises(StatsFolderError, match="no Stats/shards folder"):
        run_merge(Layout(base_path))
    assert list(base_path.iterdir()) == []


def test_run_merge_shards_folder_is_file(base_path):
    (base_path / "Stats").mkdir()
    (base_path / "Stats" / "shards").write_text("", encoding="utf-8")
    with pytest.raises(StatsFolderError, match="is a file, not a folder"):
        run_merge(Layout(base_path))
    assert sorted(path.name for path in (base_path / "Stats").iterdir()) == ["shards"]


def test_run_merge_empty_shards_folder(base_path):
    Layout(base_path).shards_dir.mkdir(parents=True)
    result = run_merge(Layout(base_path))
    assert result.events == 0
    assert Layout(base_path).view_file.is_file()


def test_reset_cli_empty_folder(base_path):
    result = invoke("reset", "--base-path", str(base_path), "--yes")
    assert result.exit_code == 1, result.output
    assert result.output.startswith(f"Error: No statistics in {base_path} yet: there is no Stats/shards folder")
    assert "nothing to reset" in result.output
    assert list(base_path.iterdir()) == []


def test_reset_library_empty_folder(base_path):
    with pytest.raises(StatsFolderError, match="nothing to reset"):
        reset_module.reset(Layout(base_path))
    assert list(base_path.iterdir()) == []


def test_reset_after_first_record(base_path):
    StatsManager(base_path, workstation="PC-1", spool=False).record_analysis("M", "a1", 2)
    result = invoke("reset", "--base-path", str(base_path), "--yes")
    assert result.exit_code == 0, result.output
    assert ": 1 shard archived in" in result.output

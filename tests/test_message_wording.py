"""Wording of a few messages: stale-view lag, merge --every failures, workstation ids, merge --force."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from ufstats import StatsManager
from ufstats.cli import main
from ufstats.errors import StatsFolderError
from ufstats.layout import Layout
from ufstats.merge import run_merge
from ufstats.schedule import run_every


@pytest.fixture
def merged(base_path):
    StatsManager(base_path, workstation="PC-1", spool=False).record_analysis("M", "a1", 2)
    run_merge(Layout(base_path))
    return base_path


def set_view_lag(base_path, seconds: float) -> None:
    layout = Layout(base_path)
    now = time.time()
    os.utime(layout.shards_dir / "PC-1.jsonl", (now, now))
    os.utime(layout.view_file, (now - seconds, now - seconds))


def test_view_stale_in_seconds(merged):
    set_view_lag(merged, 30)
    result = CliRunner().invoke(main, ["check", "--base-path", str(merged), "--view-max-age", "0"])
    assert result.exit_code == 1, result.output
    assert "is 30 seconds older than the newest shard" in result.output


def test_view_stale_in_minutes(merged):
    set_view_lag(merged, 7200)
    result = CliRunner().invoke(main, ["check", "--base-path", str(merged)])
    assert result.exit_code == 1, result.output
    assert "is 120 minutes older than the newest shard" in result.output


def test_merge_every_failure_punctuation():
    lines: list[str] = []

    def merge_once():
        raise StatsFolderError("Base path X does not exist (--base-path or UFSTATS_BASE_PATH).")

    run_every(1, merge_once, lines.append, max_rounds=1)
    [failure] = [line for line in lines if "merge failed" in line]
    assert failure.endswith(
        "merge failed: StatsFolderError: Base path X does not exist (--base-path or UFSTATS_BASE_PATH); "
        "next attempt in 1 s"
    )


def test_host_non_ascii_message(monkeypatch):
    monkeypatch.setenv("UFSTATS_HOST", "Склад-1")
    result = CliRunner().invoke(main, ["config"])
    assert result.exit_code == 1, result.output
    assert "must be 1-64 characters of ASCII letters, digits" in result.output


def test_merge_force_reports_copy_once(base_path):
    Layout(base_path).shards_dir.mkdir(parents=True)
    Layout(base_path).view_file.write_text('{"total_orders_analyzed": 1}', encoding="utf-8")
    completed = subprocess.run(
        [sys.executable, "-m", "ufstats", "merge", "--force", "--quiet", "--base-path", str(base_path)],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, PYTHONIOENCODING="utf-8"),
    )
    assert completed.returncode == 0, completed.stderr
    output = completed.stdout + completed.stderr
    assert output.count("kept a copy") == 1, output
    copies = [path.name for path in Layout(base_path).stats_dir.iterdir() if path.name.startswith("global_stats.replaced-")]
    assert len(copies) == 1
    assert copies[0] in output

"""`ufstats reset --list` details, and restoring a reset that was already restored."""

from __future__ import annotations

import msgspec
import pytest
from click.testing import CliRunner

from ufstats import StatsManager
from ufstats import reset as reset_module
from ufstats.cli import main
from ufstats.layout import Layout
from ufstats.state import Epoch


@pytest.fixture
def two_shards(base_path):
    for workstation in ("PC-1", "PC-2"):
        manager = StatsManager(base_path, workstation=workstation, spool=False)
        manager.record_analysis("M", f"a-{workstation}", 2)
        manager.close()
    return base_path


def invoke(base_path, *arguments: str):
    return CliRunner().invoke(main, ["reset", "--base-path", str(base_path), *arguments])


def epoch_of(base_path, epoch_id: str) -> Epoch:
    path = Layout(base_path).epochs_dir / f"{epoch_id}.json"
    return msgspec.json.decode(path.read_bytes(), type=Epoch)


def test_list_shows_time_and_shards(two_shards):
    reset_id = reset_module.reset(Layout(two_shards)).reset_id
    result = invoke(two_shards, "--list")
    assert result.exit_code == 0, result.output
    reset_at = epoch_of(two_shards, reset_id).reset_at
    assert result.output.splitlines() == [f"{reset_id}  {reset_at}  2 shards archived"]


def test_list_shows_undone_by(two_shards):
    layout = Layout(two_shards)
    first = reset_module.reset(layout).reset_id
    second = reset_module.reset(layout).reset_id
    restored = reset_module.restore(layout, first).reset_id
    lines = invoke(two_shards, "--list").output.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(first)
    assert lines[0].endswith(f"  (undone by {restored})")
    # The second reset's epoch refers to the first one too, but is no restore.
    assert lines[1].startswith(second)
    assert "undone" not in lines[1]


def test_list_time_from_archive(two_shards):
    """Without its epoch file, a reset shows the archive folder's time."""
    layout = Layout(two_shards)
    reset_id = reset_module.reset(layout).reset_id
    reset_module.restore(layout, reset_id)
    (layout.epochs_dir / f"{reset_id}.json").unlink()
    [info] = reset_module.describe_resets(layout)
    assert info.reset_at is not None
    assert info.reset_at[:4].isdigit()
    assert info.shards == 2


def test_list_without_resets(two_shards):
    result = invoke(two_shards, "--list")
    assert result.exit_code == 0, result.output
    assert result.output == f"no resets in {Layout(two_shards).stats_dir}\n"


def test_list_with_restore_is_usage_error(two_shards):
    reset_id = reset_module.reset(Layout(two_shards)).reset_id
    result = invoke(two_shards, "--list", "--restore", reset_id)
    assert result.exit_code == 2, result.output
    assert "--list cannot be combined with --restore" in result.output
    assert len(list(Layout(two_shards).epochs_dir.iterdir())) == 1


def test_restore_twice_changes_nothing(two_shards):
    layout = Layout(two_shards)
    reset_id = reset_module.reset(layout).reset_id
    first = invoke(two_shards, "--restore", reset_id, "--yes")
    assert first.exit_code == 0, first.output
    assert "already restored" not in first.output
    [earlier] = reset_module.restores_of(layout, reset_id)
    second = invoke(two_shards, "--restore", reset_id, "--yes")
    assert second.exit_code == 0, second.output
    assert f"reset {reset_id} is undone already (epoch {earlier}); nothing changed" in second.output
    assert reset_module.restores_of(layout, reset_id) == [earlier]
    totals = StatsManager(two_shards, workstation="reader", spool=False).get_global_stats()
    assert totals["total_orders_analyzed"] == 4

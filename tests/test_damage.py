"""Damaged shard lines and a damaged view are skipped, reported and never repaired by deletion."""

from __future__ import annotations

import hashlib
import json

import pytest
from click.testing import CliRunner

from ufstats import StatsManager
from ufstats.cli import main
from ufstats.events import Event, encode_line, new_event_id, now_timestamp
from ufstats.layout import Layout
from ufstats.merge import run_merge
from ufstats.state import StatsState


def event_line(session: str, orders: int = 2, workstation: str = "PC-1", **fields) -> bytes:
    event = Event(
        format=1,
        id=fields.pop("id", new_event_id()),
        type=fields.pop("type", "analysis"),
        workstation=workstation,
        timestamp=fields.pop("timestamp", now_timestamp()),
        client_id="M",
        session_id=session,
        orders_count=orders,
        **fields,
    )
    return encode_line(event)


def write_shard(base_path, name: str, data: bytes):
    shard = Layout(base_path).shards_dir / f"{name}.jsonl"
    shard.parent.mkdir(parents=True, exist_ok=True)
    shard.write_bytes(data)
    return shard


DAMAGED_LINES = {
    2: b"this is not JSON",
    3: b'{"format": 1, "id": "abc"}',
    4: b"\0\0\0\0\0\0",
    5: b"",
    7: b"[1, 2, 3]",
    8: event_line("negative", orders=-5).rstrip(b"\n"),
    9: b"   ",
}


def damaged_shard_bytes() -> bytes:
    lines = {1: event_line("s1").rstrip(b"\n"), 6: event_line("s2").rstrip(b"\n"), 10: event_line("s3").rstrip(b"\n")}
    lines.update(DAMAGED_LINES)
    return b"".join(lines[number] + b"\n" for number in sorted(lines))


def test_reader_skips_each_damage_kind(base_path):
    write_shard(base_path, "PC-1", damaged_shard_bytes())
    state = StatsState.scan(Layout(base_path))
    assert state.aggregate.totals == [6, 0, 0]
    assert [d.line for d in state.damage] == sorted(DAMAGED_LINES)
    assert {d.shard for d in state.damage} == {"PC-1"}
    reasons = {d.line: d.reason for d in state.damage}
    assert reasons[5] == "empty line"
    assert reasons[9] == "empty line"
    assert "negative count" in reasons[8]


def test_manager_counts_rest_of_damaged_shard(base_path):
    write_shard(base_path, "PC-1", damaged_shard_bytes())
    manager = StatsManager(base_path, workstation="reader")
    assert manager.get_global_stats()["total_orders_analyzed"] == 6
    sessions = [entry["session_id"] for entry in manager.get_analysis_history()]
    assert sorted(sessions) == ["s1", "s2", "s3"]


def test_merge_reports_damage(base_path):
    write_shard(base_path, "PC-1", damaged_shard_bytes())
    result = run_merge(Layout(base_path))
    assert result.events == 3
    assert len(result.damage) == len(DAMAGED_LINES)
    assert result.damage[0].describe().startswith("PC-1 line 2 (byte ")
    view = json.loads(Layout(base_path).view_file.read_text(encoding="utf-8"))
    assert view["total_orders_analyzed"] == 6


def test_merge_cli_lists_damaged_lines(base_path):
    write_shard(base_path, "PC-1", damaged_shard_bytes())
    result = CliRunner().invoke(main, ["merge", "--base-path", str(base_path)])
    assert result.exit_code == 0, result.output
    assert "7 damaged lines" in result.stdout
    assert "damaged: PC-1 line 2 (byte " in result.stderr
    assert "damaged: PC-1 line 5 (byte " in result.stderr


def test_two_events_on_one_line_are_damage(base_path):
    # Two events glued on one line plus an empty line: as many values as newlines.
    glued = event_line("g1").rstrip(b"\n") + event_line("g2")
    write_shard(base_path, "PC-1", event_line("s1") + glued + b"\n" + event_line("s2"))
    state = StatsState.scan(Layout(base_path))
    assert state.aggregate.totals == [4, 0, 0]
    assert [d.line for d in state.damage] == [2, 3]


def test_incomplete_tail_skipped_then_closed(base_path):
    complete = event_line("s1") + event_line("s2")
    torn = event_line("torn")[:40]
    shard = write_shard(base_path, "PC-1", complete + torn)
    state = StatsState.scan(Layout(base_path))
    assert state.aggregate.totals == [4, 0, 0]
    assert state.damage == []
    assert state.shards["PC-1"].incomplete_tail is True

    manager = StatsManager(base_path, workstation="PC-1")
    manager.record_analysis("M", "s3", 5)
    data = shard.read_bytes()
    assert data.startswith(complete + torn + b"\n")
    state.refresh()
    assert state.aggregate.totals == [9, 0, 0]
    assert [d.line for d in state.damage] == [3]
    assert state.shards["PC-1"].incomplete_tail is False


def test_reading_never_changes_shards(base_path):
    shard = write_shard(base_path, "PC-1", damaged_shard_bytes() + b'{"torn')
    before = hashlib.sha256(shard.read_bytes()).hexdigest()
    StatsManager(base_path, workstation="reader").get_global_stats()
    run_merge(Layout(base_path))
    CliRunner().invoke(main, ["show", "--base-path", str(base_path)])
    assert hashlib.sha256(shard.read_bytes()).hexdigest() == before


@pytest.mark.parametrize(
    "damaged_view",
    [b'{"total_orders_analyzed": 12, "by_cl', b"\0" * 300, b"", b"[]"],
    ids=["truncated", "nul-bytes", "empty", "not-an-object"],
)
def test_damaged_view_rebuilt_with_copy(base_path, damaged_view):
    layout = Layout(base_path)
    StatsManager(base_path, workstation="PC-1").record_analysis("M", "s1", 7)
    run_merge(layout)
    layout.view_file.write_bytes(damaged_view)
    result = run_merge(layout)
    view = json.loads(layout.view_file.read_text(encoding="utf-8"))
    assert view["total_orders_analyzed"] == 7
    assert result.backup is not None
    assert result.backup.startswith("global_stats.damaged-")
    assert (layout.stats_dir / result.backup).read_bytes() == damaged_view


def test_damaged_checkpoint_is_ignored(base_path):
    layout = Layout(base_path)
    StatsManager(base_path, workstation="PC-1").record_analysis("M", "s1", 7)
    run_merge(layout)
    layout.checkpoint_file.write_bytes(b'{"format": 1, "sha')
    assert StatsManager(base_path, workstation="reader").get_global_stats()["total_orders_analyzed"] == 7
    result = run_merge(layout)
    assert result.events == 1


def test_folder_named_like_shard_ignored(base_path):
    manager = StatsManager(base_path, workstation="PC-1")
    manager.record_analysis("M", "s1", 4)
    (base_path / "Stats" / "shards" / "stray.jsonl").mkdir()
    reader = StatsManager(base_path, workstation="reader")
    assert reader.get_global_stats()["total_orders_analyzed"] == 4
    result = CliRunner().invoke(main, ["check", "--base-path", str(base_path)])
    assert result.exit_code == 1
    assert "stray.jsonl is not a shard" in result.output


def test_empty_raw_metadata_encodes_valid_line():
    import pickle

    import msgspec

    from ufstats.events import decode_line

    event = Event(format=1, id=new_event_id(), type="analysis", workstation="PC-1",
                  timestamp=now_timestamp(), client_id="M", session_id="s1", metadata=msgspec.Raw())
    for candidate in (event, pickle.loads(pickle.dumps(event))):
        line = encode_line(candidate)
        assert b'"metadata"' not in line
        assert decode_line(line.rstrip(b"\n")).client_id == "M"

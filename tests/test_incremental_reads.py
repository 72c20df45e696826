"""Incremental and checkpoint reads give exactly what a full scan of the shards gives."""

from __future__ import annotations

import os
import random
from datetime import datetime, timedelta, timezone

import pytest

from ufstats import StatsManager
from ufstats.aggregate import Aggregate
from ufstats.checkpoint import load_checkpoint
from ufstats.events import Event, encode_line, history_entry
from ufstats.history import History, HistoryItem
from ufstats.layout import Layout
from ufstats.merge import run_merge
from ufstats.reset import reset
from ufstats.state import StatsState

KYIV = timezone(timedelta(hours=3))


def make_event(number: int, workstation: str = "PC-1", **fields) -> Event:
    moment = datetime(2025, 3, 1, 8, 0, tzinfo=KYIV) + timedelta(minutes=37 * number)
    kind = fields.pop("type", "packing" if number % 2 else "analysis")
    return Event(
        format=1,
        id=fields.pop("id", f"{workstation}-{number:06d}"),
        type=kind,
        workstation=workstation,
        timestamp=fields.pop("timestamp", moment.isoformat()),
        client_id=fields.pop("client_id", f"C{number % 3}"),
        session_id=f"s{number}",
        worker_id=f"w{number % 2}" if kind == "packing" else None,
        orders_count=number % 7 + 1,
        items_count=number % 5 if kind == "packing" else 0,
        **fields,
    )


def append(base_path, name: str, data: bytes):
    shard = Layout(base_path).shards_dir / f"{name}.jsonl"
    shard.parent.mkdir(parents=True, exist_ok=True)
    with open(shard, "ab") as handle:
        handle.write(data)
    return shard


def lines(first: int, count: int, workstation: str = "PC-1") -> bytes:
    return b"".join(encode_line(make_event(n, workstation)) for n in range(first, first + count))


def snapshot(state: StatsState) -> dict:
    aggregate = state.aggregate
    return {
        "global": aggregate.global_stats(),
        "clients": aggregate.all_clients_stats(),
        "workers": aggregate.workers,
        "daily": dict(sorted(aggregate.daily.items())),
        "analysis": [history_entry(item.event) for item in aggregate.analysis.oldest_first()],
        "packing": [history_entry(item.event) for item in aggregate.packing.oldest_first()],
    }


def full_scan(base_path) -> dict:
    return snapshot(StatsState.scan(Layout(base_path)))


def test_refresh_reads_only_appended_bytes(base_path):
    append(base_path, "PC-1", lines(0, 50))
    state = StatsState.scan(Layout(base_path))
    read_before = state.bytes_read
    appended = lines(50, 3)
    append(base_path, "PC-1", appended)
    state.refresh()
    assert state.bytes_read - read_before == len(appended)
    assert snapshot(state) == full_scan(base_path)


def test_refresh_skips_unchanged_shards(base_path, monkeypatch):
    append(base_path, "PC-1", lines(0, 5))
    state = StatsState.scan(Layout(base_path))
    opened = []
    real_open = open
    monkeypatch.setattr("builtins.open", lambda *args, **kwargs: opened.append(args[0]) or real_open(*args, **kwargs))
    state.refresh()
    assert opened == []


def test_refresh_detects_rewritten_tail(base_path):
    # The first 1024 bytes stay the same and the shard grows, so only the
    # bytes before the read position show that it was replaced.
    shard = append(base_path, "PC-1", lines(0, 12))
    state = StatsState.scan(Layout(base_path))
    kept = b"".join(shard.read_bytes().splitlines(keepends=True)[:8])
    shard.write_bytes(kept + lines(100, 10))
    state.refresh()
    assert snapshot(state) == full_scan(base_path)
    assert state.aggregate.events == 18


def test_refresh_detects_truncation(base_path):
    shard = append(base_path, "PC-1", lines(0, 12))
    state = StatsState.scan(Layout(base_path))
    shard.write_bytes(b"".join(shard.read_bytes().splitlines(keepends=True)[:4]))
    state.refresh()
    assert state.aggregate.events == 4
    assert snapshot(state) == full_scan(base_path)


def test_refresh_detects_same_size_replacement(base_path):
    shard = append(base_path, "PC-1", lines(0, 6))
    state = StatsState.scan(Layout(base_path))
    original = shard.read_bytes()
    # Same length, other lines from the middle on (the last line stays complete).
    replaced = original[: len(original) // 2] + lines(200, 6)[: len(original) - len(original) // 2 - 1] + b"\n"
    shard.write_bytes(replaced)
    stamp = os.stat(shard).st_mtime_ns + 5_000_000_000
    os.utime(shard, ns=(stamp, stamp))
    state.refresh()
    assert snapshot(state) == full_scan(base_path)


def test_refresh_after_reset_epoch(base_path):
    append(base_path, "PC-1", lines(0, 8))
    state = StatsState.scan(Layout(base_path))
    reset(Layout(base_path))
    append(base_path, "PC-1", lines(8, 3))
    state.refresh()
    assert state.aggregate.events == 3
    assert snapshot(state) == full_scan(base_path)


def test_checkpoint_read_equals_full_scan(base_path):
    append(base_path, "PC-1", lines(0, 40))
    append(base_path, "PC-2", lines(0, 30, "PC-2"))
    run_merge(Layout(base_path))
    append(base_path, "PC-2", lines(30, 5, "PC-2"))
    append(base_path, "PC-3", lines(0, 4, "PC-3"))
    state = load_checkpoint(Layout(base_path))
    assert state is not None
    state.refresh()
    assert state.bytes_read < 4096
    assert snapshot(state) == full_scan(base_path)


def test_checkpoint_drops_redelivered_event(base_path):
    shard = append(base_path, "PC-1", lines(0, 20))
    run_merge(Layout(base_path))
    # A spool delivered again after a crash: the same lines, ids included.
    append(base_path, "PC-1", b"".join(shard.read_bytes().splitlines(keepends=True)[-3:]) + lines(20, 2))
    state = load_checkpoint(Layout(base_path))
    state.refresh()
    assert state.duplicates == 3
    assert snapshot(state) == full_scan(base_path)


def test_manager_reads_checkpoint_and_appends(base_path):
    writer = StatsManager(base_path, workstation="PC-1")
    for number in range(12):
        writer.record_packing("C1", f"s{number}", "w1", number, 2 * number, {"duration_seconds": 60.0})
    run_merge(Layout(base_path))
    writer.record_analysis("C2", "late", 5)
    reader = StatsManager(base_path, workstation="reader")
    expected = StatsState.scan(Layout(base_path))
    assert reader.get_global_stats() == expected.aggregate.global_stats()
    assert reader.get_packing_history(limit=5) == [
        history_entry(item.event) for item in reversed(expected.aggregate.packing.oldest_first())
    ][:5]
    assert reader.get_daily_stats() == StatsManager(base_path, workstation="other").get_daily_stats()


def test_checkpoint_replaced_before_parts_load(base_path, caplog):
    caplog.set_level("INFO", logger="ufstats")
    layout = Layout(base_path)
    append(base_path, "PC-1", lines(0, 30))
    run_merge(layout)
    append(base_path, "PC-1", lines(30, 4))
    state = load_checkpoint(layout)
    state.refresh()
    append(base_path, "PC-1", lines(34, 4))
    run_merge(layout)  # A new token: the parts of the first checkpoint are gone.
    state.refresh()
    assert snapshot(state) == full_scan(base_path)
    assert "reading the shards" in caplog.text


def test_checkpoint_ignored_after_reset(base_path):
    layout = Layout(base_path)
    append(base_path, "PC-1", lines(0, 10))
    run_merge(layout)
    reset(layout)
    assert load_checkpoint(layout) is None


def test_checkpoint_with_replaced_shard_rescans(base_path):
    layout = Layout(base_path)
    shard = append(base_path, "PC-1", lines(0, 10))
    run_merge(layout)
    shard.write_bytes(lines(500, 12))
    state = load_checkpoint(layout)
    state.refresh()
    assert snapshot(state) == full_scan(base_path)


@pytest.mark.parametrize(
    "event",
    [
        make_event(1),
        make_event(2, timestamp="2025-03-01T10:00:00", assumed_utc_offset="+02:00"),
        make_event(3, timestamp="2025-03-01T10:00:00"),
        make_event(4, timestamp="yesterday"),
        make_event(5, client_id=""),
        make_event(6, type="adjustment", client_id=None, totals={"orders_analyzed": 4}),
    ],
)
def test_add_block_matches_add(event):
    one_by_one, block = Aggregate(), Aggregate()
    try:
        one_by_one.add(event, "PC-1", 7)
        expected_rejected = []
    except ValueError as exc:
        expected_rejected = [(7, str(exc))]
    duplicates, rejected = block.add_block([event], "PC-1", 7, set(), [])
    assert (duplicates, rejected) == (0, expected_rejected)
    assert block.totals == one_by_one.totals
    assert block.newest == one_by_one.newest


def test_history_keeps_newest_items():
    rng = random.Random(5)
    history = History(10)
    offered = [(rng.random(), "PC-1", line, make_event(line)) for line in range(500)]
    for item in offered:
        history.add(HistoryItem(*item))
    newest = sorted(offered)[-10:]
    assert [(i.epoch, i.line) for i in history.oldest_first()] == [(e, line) for e, _, line, _ in newest]
    assert history.total == 500
    assert not history.complete

"""Per-worker and per-day numbers: library methods and `ufstats workers` / `ufstats daily`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from ufstats import InvalidArgumentError, StatsManager
from ufstats.cli import main
from ufstats.events import FORMAT_VERSION, Event, encode_line, new_event_id
from ufstats.merge import run_merge
from ufstats.layout import Layout
from ufstats.validation import encode_metadata

DATA = Path(__file__).parent / "data" / "global_stats.json"


def write_events(base_path: Path, events: list[Event], shard: str = "pc1") -> None:
    shards = base_path / "Stats" / "shards"
    shards.mkdir(parents=True, exist_ok=True)
    with open(shards / f"{shard}.jsonl", "ab") as handle:
        for event in events:
            handle.write(encode_line(event))


def packing(timestamp: str, client: str, worker: str | None, orders: int, items: int, seconds: object = None) -> Event:
    metadata = encode_metadata({"duration_seconds": seconds}) if seconds is not None else encode_metadata(None)
    return Event(
        format=FORMAT_VERSION, id=new_event_id(), type="packing", workstation="pc1", timestamp=timestamp,
        client_id=client, session_id="s", worker_id=worker, orders_count=orders, items_count=items, metadata=metadata,
    )


def analysis(timestamp: str, client: str, orders: int) -> Event:
    return Event(
        format=FORMAT_VERSION, id=new_event_id(), type="analysis", workstation="pc1", timestamp=timestamp,
        client_id=client, session_id="a", orders_count=orders,
    )


@pytest.fixture
def sample(base_path: Path) -> Path:
    write_events(
        base_path,
        [
            analysis("2026-04-01T09:00:00+03:00", "M", 50),
            packing("2026-04-01T10:00:00+03:00", "M", "001", 10, 30, 1800),
            packing("2026-04-01T23:30:00+03:00", "A", "001", 4, 8),  # untimed
            packing("2026-04-02T00:30:00+03:00", "M", "002", 6, 12, 3600),
            packing("2026-04-02T08:00:00+03:00", "M", None, 3, 3, 600),
            analysis("2026-04-02T09:00:00+03:00", "A", 7),
        ],
    )
    return base_path


def reader(base_path: Path) -> StatsManager:
    return StatsManager(base_path, workstation="reader", spool=False)


def test_worker_stats_timed_and_untimed(sample):
    stats = reader(sample).get_worker_stats("001")
    assert stats["orders"] == 14
    assert stats["items"] == 38
    assert stats["sessions"] == 2
    assert stats["timed_sessions"] == 1
    assert stats["timed_orders"] == 10
    assert stats["packing_seconds"] == 1800
    # Rates use the timed session only: 10 orders in half an hour.
    assert stats["orders_per_hour"] == 20
    assert stats["items_per_hour"] == 60


def test_worker_stats_unknown_worker_is_zero(sample):
    stats = reader(sample).get_worker_stats("999")
    assert stats["sessions"] == 0
    assert stats["orders_per_hour"] is None


def test_worker_stats_untimed_only_has_no_rate(base_path):
    write_events(base_path, [packing("2026-04-01T10:00:00+03:00", "M", "007", 5, 5)])
    stats = reader(base_path).get_worker_stats("007")
    assert stats["sessions"] == 1
    assert stats["packing_seconds"] == 0
    assert stats["orders_per_hour"] is None
    assert stats["items_per_hour"] is None


def test_worker_stats_invalid_duration_is_untimed(base_path):
    write_events(base_path, [packing("2026-04-01T10:00:00+03:00", "M", "007", 5, 5, "long")])
    stats = reader(base_path).get_worker_stats("007")
    assert stats["sessions"] == 1
    assert stats["timed_sessions"] == 0


def test_all_workers_none_worker_key(sample):
    stats = reader(sample).get_all_workers_stats()
    assert set(stats) == {"001", "002", ""}
    assert stats[""]["worker_id"] is None
    assert stats[""]["orders"] == 3
    assert reader(sample).get_worker_stats(None) == stats[""]


def test_all_workers_sum_equals_packed(sample):
    manager = reader(sample)
    workers = manager.get_all_workers_stats()
    totals = manager.get_global_stats()
    assert sum(w["orders"] for w in workers.values()) == totals["total_orders_packed"]
    assert sum(w["sessions"] for w in workers.values()) == totals["total_sessions"]


def test_daily_stats_local_date(sample):
    rows = reader(sample).get_daily_stats()
    assert [(r["date"], r["client_id"]) for r in rows] == [
        ("2026-04-01", "A"), ("2026-04-01", "M"), ("2026-04-02", "A"), ("2026-04-02", "M"),
    ]
    # 23:30 local on April 1st stays on April 1st although it is April 1st 20:30 UTC.
    day_one_a = rows[0]
    assert day_one_a["orders_packed"] == 4
    assert day_one_a["sessions"] == 1
    day_one_m = rows[1]
    assert day_one_m["orders_analyzed"] == 50
    assert day_one_m["orders_packed"] == 10


def test_daily_stats_filters(sample):
    manager = reader(sample)
    only_m = manager.get_daily_stats(client_id="M")
    assert {r["client_id"] for r in only_m} == {"M"}
    second_day = manager.get_daily_stats(date_from="2026-04-02", date_to="2026-04-02")
    assert {r["date"] for r in second_day} == {"2026-04-02"}
    assert manager.get_daily_stats(date_to="2026-03-31") == []


@pytest.mark.parametrize("value", ["2026-4-1", "2026-02-30", "yesterday", 20260401])
def test_daily_stats_invalid_date(sample, value):
    with pytest.raises(InvalidArgumentError, match="date_from"):
        reader(sample).get_daily_stats(date_from=value)


def test_daily_stats_reversed_range(sample):
    with pytest.raises(InvalidArgumentError, match="after"):
        reader(sample).get_daily_stats(date_from="2026-04-02", date_to="2026-04-01")


def test_stats_after_checkpoint_match_scan(sample):
    before = reader(sample)
    workers, days = before.get_all_workers_stats(), before.get_daily_stats()
    run_merge(Layout(sample))
    write_events(sample, [packing("2026-04-03T10:00:00+03:00", "M", "002", 2, 2, 60)])
    after = reader(sample)  # starts from the checkpoint, then reads the new line
    assert after.get_worker_stats("001") == workers["001"]
    assert after.get_worker_stats("002")["sessions"] == workers["002"]["sessions"] + 1
    assert after.get_daily_stats(date_to="2026-04-02") == days


def test_legacy_workers_and_days_match_history(base_path):
    runner = CliRunner()
    result = runner.invoke(main, ["import-legacy", str(DATA), "--base-path", str(base_path), "--timezone", "Europe/Kyiv"])
    assert result.exit_code == 0, result.output
    history = json.loads(DATA.read_text(encoding="utf-8"))["packing_history"]
    workers = reader(base_path).get_all_workers_stats()
    assert sum(w["orders"] for w in workers.values()) == sum(e["orders_count"] for e in history)
    days = reader(base_path).get_daily_stats()
    assert sum(d["sessions"] for d in days) == len(history)


def test_cli_workers_table(sample):
    result = CliRunner().invoke(main, ["workers", "--base-path", str(sample)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["worker", "sessions", "orders", "items", "timed", "packing", "time", "orders/h", "items/h"]
    assert lines[2].split() == ["001", "2", "14", "38", "1", "0:30:00", "20.0", "60.0"]
    assert lines[-1].split()[:2] == ["(no", "worker)"]


def test_cli_workers_json_with_filter(sample):
    result = CliRunner().invoke(main, ["workers", "--base-path", str(sample), "--client", "M", "--json"])
    assert result.exit_code == 0, result.output
    stats = json.loads(result.output)
    assert stats["001"]["orders"] == 10
    assert stats["001"]["orders_per_hour"] == 20
    assert stats[""]["worker_id"] is None


def test_cli_workers_unfiltered_matches_library(sample):
    result = CliRunner().invoke(main, ["workers", "--base-path", str(sample), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == reader(sample).get_all_workers_stats()


def test_cli_workers_filter_equals_counters(sample):
    """The full-read path and the counter path agree when the filter keeps everything."""
    runner = CliRunner()
    wide = runner.invoke(main, ["workers", "--base-path", str(sample), "--from", "2000-01-01", "--json"])
    plain = runner.invoke(main, ["workers", "--base-path", str(sample), "--json"])
    assert wide.exit_code == 0, wide.output
    assert json.loads(wide.output) == json.loads(plain.output)


def test_cli_daily_table_and_json(sample):
    runner = CliRunner()
    table = runner.invoke(main, ["daily", "--base-path", str(sample), "--client", "M"])
    assert table.exit_code == 0, table.output
    assert table.output.splitlines()[2].split() == ["2026-04-01", "M", "50", "10", "1"]
    as_json = runner.invoke(main, ["daily", "--base-path", str(sample), "--from", "2026-04-02", "--json"])
    assert as_json.exit_code == 0, as_json.output
    assert [r["date"] for r in json.loads(as_json.output)] == ["2026-04-02", "2026-04-02"]


def test_cli_daily_invalid_date(sample):
    result = CliRunner().invoke(main, ["daily", "--base-path", str(sample), "--to", "2026-04-31"])
    assert result.exit_code == 1
    assert "--to='2026-04-31'" in result.output

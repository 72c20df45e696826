"""Upper bounds of counts, metadata integers and durations, and exports of values stored before them."""

from __future__ import annotations

import copy
import json

import pytest
from click.testing import CliRunner

from report_data import LEGACY_FILE, record, write_shard
from ufstats import InvalidRecordError, StatsManager
from ufstats.cli import main
from ufstats.errors import LegacyImportError
from ufstats.layout import Layout
from ufstats.legacy import import_legacy
from ufstats.validation import MAX_COUNT


@pytest.fixture
def manager(base_path):
    stats = StatsManager(base_path, workstation="PC-1", spool=False)
    yield stats
    stats.close()


def test_count_above_maximum_rejected(manager, base_path):
    with pytest.raises(InvalidRecordError, match=r"Invalid orders_count=10{30}: is above the maximum of 1,000,000,000"):
        manager.record_analysis("M", "s1", 10**30)
    with pytest.raises(InvalidRecordError, match="Invalid items_count=1000000001"):
        manager.record_packing("M", "s1", "001", 1, MAX_COUNT + 1)
    manager.record_packing("M", "s1", "001", MAX_COUNT, MAX_COUNT)
    assert manager.get_global_stats()["total_orders_packed"] == MAX_COUNT


@pytest.mark.parametrize("value", [2**70, 2**63, -(2**63) - 1])
def test_metadata_int_outside_int64_rejected(manager, value):
    with pytest.raises(InvalidRecordError) as caught:
        manager.record_analysis("M", "s1", 1, metadata={"n": value})
    assert f"Invalid metadata['n']={value}" in str(caught.value)
    assert "signed 64-bit" in str(caught.value)
    assert manager.get_global_stats()["total_orders_analyzed"] == 0


def test_metadata_int64_limits_accepted(manager):
    manager.record_analysis("M", "s1", 1, metadata={"low": -(2**63), "high": 2**63 - 1})
    assert manager.get_analysis_history()[0]["metadata"] == {"low": -(2**63), "high": 2**63 - 1}


@pytest.mark.parametrize("character", ["\u200b", "\ud800", "\x1b"])
def test_invisible_character_wording(manager, character):
    with pytest.raises(InvalidRecordError, match="contains an invisible or control character"):
        manager.record_analysis("M", f"s{character}1", 1)


def legacy_document():
    return json.loads(LEGACY_FILE.read_text(encoding="utf-8"))


def test_legacy_history_count_bounded(base_path, tmp_path):
    document = legacy_document()
    document["packing_history"][3]["items_count"] = MAX_COUNT + 1
    source = tmp_path / "big.json"
    source.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(LegacyImportError, match=r"packing_history\[3\]\.items_count: expected a count of at most 1,000,000,000"):
        import_legacy(Layout(base_path), source, "Europe/Kyiv")
    assert not Layout(base_path).shard_names()


def test_legacy_counter_bounds(base_path, tmp_path):
    document = legacy_document()
    large = copy.deepcopy(document)
    large["total_orders_packed"] = 2**63 - 1  # Counters may exceed a record's bound.
    source = tmp_path / "large.json"
    source.write_text(json.dumps(large), encoding="utf-8")
    import_legacy(Layout(base_path), source, "Europe/Kyiv")

    too_large = copy.deepcopy(document)
    too_large["total_sessions"] = 2**63
    source = tmp_path / "too-large.json"
    source.write_text(json.dumps(too_large), encoding="utf-8")
    with pytest.raises(LegacyImportError, match="total_sessions: expected a count of at most 9,223,372,036,854,775,807"):
        import_legacy(Layout(base_path), source, "Europe/Kyiv")
    assert len(Layout(base_path).shard_names()) == 1


def test_parquet_export_stored_big_metadata(base_path, tmp_path):
    pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    # Written straight to the shard, as a version without the bounds could.
    write_shard(base_path, [
        record("analysis", "2026-04-01T10:00:00+03:00", "M", 5, metadata={"n": 2**70}),
        record("analysis", "2026-04-01T11:00:00+03:00", "M", 6, metadata={"n": 3}),
    ])
    output = tmp_path / "out.parquet"
    result = CliRunner().invoke(main, ["export", "--base-path", str(base_path), "--format", "parquet", "--output", str(output)])
    assert result.exit_code == 0, result.output
    table = pq.read_table(output)
    assert table.column("metadata.n").to_pylist() == [str(2**70), "3"]


def test_parquet_export_stored_big_count(base_path, tmp_path):
    pytest.importorskip("pyarrow")
    event = record("analysis", "2026-04-01T10:00:00+03:00", "M", 10**30)
    write_shard(base_path, [event])
    output = tmp_path / "out.parquet"
    result = CliRunner().invoke(main, ["export", "--base-path", str(base_path), "--format", "parquet", "--output", str(output)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert f"record {event.id} of workstation pc1" in result.output
    assert f"orders_count={10**30}" in result.output
    assert not output.exists()
    csv_output = tmp_path / "out.csv"
    result = CliRunner().invoke(main, ["export", "--base-path", str(base_path), "--output", str(csv_output)])
    assert result.exit_code == 0, result.output


def test_implausible_duration_untimed(base_path):
    write_shard(base_path, [
        record("packing", "2026-04-01T10:00:00+03:00", "M", 10, 20, worker="001", metadata={"duration_seconds": 1e300}),
        record("packing", "2026-04-01T11:00:00+03:00", "M", 6, 12, worker="001", metadata={"duration_seconds": 3600}),
        record("packing", "2026-04-01T12:00:00+03:00", "M", 1, 1, worker="001", metadata={"duration_seconds": 7 * 24 * 3600 + 1}),
    ])
    reader = StatsManager(base_path, workstation="reader", spool=False)
    stats = reader.get_worker_stats("001")
    assert stats["sessions"] == 3
    assert stats["timed_sessions"] == 1
    assert stats["packing_seconds"] == 3600
    assert stats["orders_per_hour"] == 6.0

    table = CliRunner().invoke(main, ["workers", "--base-path", str(base_path)])
    assert table.exit_code == 0, table.output
    assert "1:00:00" in table.output
    filtered = CliRunner().invoke(main, ["workers", "--base-path", str(base_path), "--client", "M", "--json"])
    assert json.loads(filtered.output)["001"]["packing_seconds"] == 3600

"""`ufstats export`: CSV and Parquet rows add up to the merged totals."""

from __future__ import annotations

import csv
import sys

import pytest
from click.testing import CliRunner

from report_data import LEGACY_FILE, sample_events, write_shard
from ufstats.cli import main
from ufstats.errors import InvalidArgumentError
from ufstats.export import export_records
from ufstats.layout import Layout
from ufstats.legacy import import_legacy
from ufstats.manager import StatsManager
from ufstats.merge import run_merge


@pytest.fixture
def runner():
    return CliRunner()


@pytest.fixture
def recorded(base_path):
    """Records made through the library (no v1 adjustments), plus the sample shard."""
    manager = StatsManager(base_path, workstation="PC-1", spool=False)
    manager.record_analysis("M", "s1", 10, metadata={"items_count": 31})
    manager.record_packing("M", "s1", "003", 9, 20, metadata={"worker_name": "Ірина", "duration_seconds": 600.25})
    manager.record_packing("A", "s2", None, 1, 2)
    manager.close()
    write_shard(base_path, sample_events())
    return base_path


def merged_totals(base_path):
    run_merge(Layout(base_path))
    return StatsManager(base_path, workstation="reader", spool=False).get_global_stats()


def read_csv(path, delimiter=","):
    with open(path, encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle, delimiter=delimiter))


def export(runner, base_path, output, *options):
    result = runner.invoke(main, ["export", "--base-path", str(base_path), "--output", str(output), *options])
    assert result.exit_code == 0, result.output
    return result


def test_csv_sums_equal_merged_totals(runner, recorded, tmp_path):
    totals = merged_totals(recorded)
    output = tmp_path / "records.csv"

    export(runner, recorded, output)

    rows = read_csv(output)
    analysis = [r for r in rows if r["type"] == "analysis"]
    packing = [r for r in rows if r["type"] == "packing"]
    assert len(rows) == 8
    assert sum(int(r["orders_count"]) for r in analysis) == totals["total_orders_analyzed"]
    assert sum(int(r["orders_count"]) for r in packing) == totals["total_orders_packed"]
    assert len(packing) == totals["total_sessions"]


def test_csv_opens_in_excel_encoding(runner, recorded, tmp_path):
    output = tmp_path / "records.csv"

    export(runner, recorded, output)

    data = output.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    assert b"\r\n" in data
    assert "Олена".encode() in data
    assert "Нова пошта".encode() in data


def test_csv_columns_and_flattened_metadata(runner, recorded, tmp_path):
    output = tmp_path / "records.csv"

    export(runner, recorded, output)

    rows = read_csv(output)
    assert list(rows[0])[:10] == [
        "type", "timestamp", "date", "client_id", "session_id", "worker_id",
        "orders_count", "items_count", "workstation", "id",
    ]
    courier = [r for r in rows if r["metadata.courier.name"]]
    assert len(courier) == 1
    assert courier[0]["metadata.courier.parcels"] == "3"
    assert courier[0]["metadata.duration_seconds"] == "1800.5"
    assert courier[0]["date"] == "2026-04-17"
    tagged = [r for r in rows if r["metadata.tags"]]
    assert tagged[0]["metadata.tags"] == '["a", "b"]'
    assert len({r["id"] for r in rows}) == len(rows)


def test_csv_semicolon_writes_decimal_comma(runner, recorded, tmp_path):
    output = tmp_path / "records.csv"

    export(runner, recorded, output, "--delimiter", ";")

    rows = read_csv(output, ";")
    durations = {r["metadata.duration_seconds"] for r in rows} - {""}
    assert durations == {"600,25", "1800,5", "900"}


def test_csv_filters(runner, recorded, tmp_path):
    output = tmp_path / "records.csv"

    export(runner, recorded, output, "--from", "2026-04-18", "--to", "2026-04-18", "--client", "M")

    rows = read_csv(output)
    assert [(r["type"], r["orders_count"], r["worker_id"]) for r in rows] == [("packing", "40", "002")]


def test_parquet_sums_equal_merged_totals(runner, recorded, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    totals = merged_totals(recorded)
    output = tmp_path / "records.parquet"

    export(runner, recorded, output, "--format", "parquet")

    table = pq.read_table(output).to_pylist()
    analysis = [r for r in table if r["type"] == "analysis"]
    packing = [r for r in table if r["type"] == "packing"]
    assert len(table) == 8
    assert sum(r["orders_count"] for r in analysis) == totals["total_orders_analyzed"]
    assert sum(r["orders_count"] for r in packing) == totals["total_orders_packed"]
    assert len(packing) == totals["total_sessions"]


def test_parquet_column_types(recorded, tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    output = tmp_path / "records.parquet"

    export_records(Layout(recorded), output, "parquet")

    schema = pq.read_schema(output)
    assert schema.field("orders_count").type == pa.int64()
    assert schema.field("metadata.duration_seconds").type == pa.float64()
    assert schema.field("metadata.courier.parcels").type == pa.int64()
    assert schema.field("metadata.worker_name").type == pa.string()
    names = set(pq.read_table(output).column("metadata.worker_name").to_pylist())
    assert {"Олена", "Петро", "Ірина", None} == names


def test_parquet_without_pyarrow(recorded, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)

    with pytest.raises(InvalidArgumentError, match=r"pip install ufstats\[parquet\]"):
        export_records(Layout(recorded), tmp_path / "records.parquet", "parquet")
    assert not (tmp_path / "records.parquet").exists()


def test_legacy_export_leaves_out_carried(runner, base_path, tmp_path):
    import_legacy(Layout(base_path), LEGACY_FILE, "Europe/Kyiv")
    totals = merged_totals(base_path)
    output = tmp_path / "records.csv"

    result = export(runner, base_path, output)

    rows = read_csv(output)
    analysed = sum(int(r["orders_count"]) for r in rows if r["type"] == "analysis")
    packed = sum(int(r["orders_count"]) for r in rows if r["type"] == "packing")
    sessions = sum(1 for r in rows if r["type"] == "packing")
    assert len(rows) == 2000
    assert "note: 4992 orders analysed, 20568 orders packed and 188 sessions" in result.output
    assert analysed + 4992 == totals["total_orders_analyzed"]
    assert packed + 20568 == totals["total_orders_packed"]
    assert sessions + 188 == totals["total_sessions"]


def test_export_unwritable_output(runner, recorded, tmp_path):
    output = tmp_path / "missing-folder" / "records.csv"

    result = runner.invoke(main, ["export", "--base-path", str(recorded), "--output", str(output)])

    assert result.exit_code == 1
    assert f"Cannot write the export to {output}" in result.output


def test_export_empty_base_path(runner, base_path, tmp_path):
    output = tmp_path / "records.csv"

    export(runner, base_path, output)

    assert output.read_bytes() == "\ufefftype,timestamp,date,client_id,session_id,worker_id,orders_count,items_count,workstation,id\r\n".encode()


def test_csv_guards_formula_text(runner, base_path, tmp_path):
    manager = StatsManager(base_path, workstation="PC-1", spool=False)
    manager.record_packing("=HYPERLINK(1)", "s1", "@cmd", 5, 7, metadata={"note": "-2+3", "delta": -4})
    manager.close()
    output = tmp_path / "records.csv"

    export(runner, base_path, output)

    row = read_csv(output)[0]
    assert row["client_id"] == "'=HYPERLINK(1)"
    assert row["worker_id"] == "'@cmd"
    assert row["metadata.note"] == "'-2+3"
    assert row["metadata.delta"] == "-4"
    assert row["orders_count"] == "5"

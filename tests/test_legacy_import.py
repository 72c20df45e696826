"""Import of v1 statistics files as they are found on the warehouse PCs."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from ufstats import StatsManager
from ufstats.cli import main
from ufstats.errors import LegacyImportError, ViewOwnershipError
from ufstats.layout import Layout
from ufstats.legacy import import_legacy
from ufstats.merge import run_merge
from ufstats.state import StatsState

DATA = Path(__file__).parent / "data"
KYIV = ZoneInfo("Europe/Kyiv")

SMALL_V1 = {
    "total_orders_analyzed": 30,
    "total_orders_packed": 12,
    "total_sessions": 3,
    "by_client": {
        "M": {"orders_analyzed": 20, "orders_packed": 12, "sessions": 3},
        "A": {"orders_analyzed": 10, "orders_packed": 0, "sessions": 0},
    },
    "analysis_history": [
        {"timestamp": "2025-01-10T09:00:00", "client_id": "M", "session_id": "2025-01-10_1", "orders_count": 20},
    ],
    "packing_history": [
        {
            "timestamp": "2025-01-10T12:00:00+02:00", "client_id": "M", "session_id": "2025-01-10_1",
            "worker_id": "001", "orders_count": 7, "items_count": 9,
        },
    ],
    "last_updated": "2025-01-10T12:00:00+02:00",
    "version": "1.0",
}


def write_json(path: Path, document, *, bom: bool = False, **dump_options) -> Path:
    text = json.dumps(document, ensure_ascii=False, indent=4, **dump_options)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path


def shard_files(base: Path) -> list[Path]:
    shards = base / "Stats" / "shards"
    return sorted(shards.iterdir()) if shards.exists() else []


def totals(base: Path) -> dict:
    stats = StatsManager(base, workstation="reader", spool=False)
    try:
        return {"global": stats.get_global_stats(), "clients": stats.get_all_clients_stats()}
    finally:
        stats.close()


def assert_rejected(base: Path, source: Path, *fragments: str) -> str:
    before = shard_files(base)
    with pytest.raises(LegacyImportError) as caught:
        import_legacy(Layout(base), source, "Europe/Kyiv")
    message = str(caught.value)
    assert isinstance(caught.value, ValueError)
    assert str(source) in message
    assert "Nothing was imported" in message
    for fragment in fragments:
        assert fragment in message
    assert shard_files(base) == before
    assert not list(base.rglob("*.tmp"))
    return message


# Exactness on the real v1 file ----------------------------------------------------------


def instant(timestamp: str) -> datetime:
    moment = datetime.fromisoformat(timestamp)
    return moment if moment.tzinfo else moment.replace(tzinfo=KYIV)


def test_real_file_exact(base_path):
    source_bytes = (DATA / "global_stats.json").read_bytes()
    source = json.loads(source_bytes)
    layout = Layout(base_path)

    result = import_legacy(layout, DATA / "global_stats.json", "Europe/Kyiv")
    assert result.schema == "v1"
    assert result.analysis_events == 1000
    assert result.packing_events == 1000
    run_merge(layout)
    view = json.loads(layout.view_file.read_bytes())

    for name in ("total_orders_analyzed", "total_orders_packed", "total_sessions"):
        assert view[name] == source[name], name
    assert set(view["by_client"]) == set(source["by_client"])
    for client_id, counters in source["by_client"].items():
        assert view["by_client"][client_id] == counters, client_id
    for kind in ("analysis", "packing"):
        entries = source[f"{kind}_history"]
        expected = sorted(entries, key=lambda entry: instant(entry["timestamp"]))
        assert view[f"{kind}_history"] == expected, kind
    assert (DATA / "global_stats.json").read_bytes() == source_bytes


def test_real_file_api_matches(base_path):
    source = json.loads((DATA / "global_stats.json").read_bytes())
    import_legacy(Layout(base_path), DATA / "global_stats.json", "Europe/Kyiv")
    stats = StatsManager(base_path, workstation="reader", spool=False)
    assert stats.get_global_stats()["total_orders_packed"] == source["total_orders_packed"]
    assert stats.get_client_stats("M") == source["by_client"]["M"]
    newest = max(source["packing_history"], key=lambda entry: instant(entry["timestamp"]))
    assert stats.get_packing_history(limit=1) == [newest]
    stats.close()


def test_import_twice_changes_nothing(base_path):
    layout = Layout(base_path)
    first = import_legacy(layout, DATA / "global_stats.json", "Europe/Kyiv")
    shard_bytes = first.shard.read_bytes()
    before = totals(base_path)

    second = import_legacy(layout, DATA / "global_stats.json", "Europe/Kyiv")

    assert second.already_imported
    assert second.shard == first.shard
    assert first.shard.read_bytes() == shard_bytes
    assert shard_files(base_path) == [first.shard]
    assert totals(base_path) == before


def test_import_twice_cli(base_path):
    runner = CliRunner()
    arguments = ["import-legacy", str(DATA / "global_stats.json"), "--base-path", str(base_path),
                 "--timezone", "Europe/Kyiv", "--quiet"]
    assert runner.invoke(main, arguments).exit_code == 0
    again = runner.invoke(main, arguments)
    assert again.exit_code == 0
    assert "was already imported" in again.output
    assert "nothing changed" in again.output


def test_import_other_timezone_rejected(base_path):
    layout = Layout(base_path)
    import_legacy(layout, DATA / "global_stats.json", "Europe/Kyiv")
    shard = shard_files(base_path)[0]
    before = shard.read_bytes()
    with pytest.raises(LegacyImportError, match="other settings"):
        import_legacy(layout, DATA / "global_stats.json", "UTC")
    assert shard.read_bytes() == before


def test_resaved_with_bom_counts_once(base_path, tmp_path):
    layout = Layout(base_path)
    plain = write_json(tmp_path / "plain.json", SMALL_V1)
    with_bom = write_json(tmp_path / "bom.json", SMALL_V1, bom=True)
    import_legacy(layout, plain, "Europe/Kyiv")
    before = totals(base_path)
    import_legacy(layout, with_bom, "Europe/Kyiv")
    # Another shard, but the same content-derived event ids: nothing counts twice.
    assert len(shard_files(base_path)) == 2
    assert totals(base_path) == before
    assert StatsState.scan(layout, history_limit=None).duplicates == 3


# What v1 tools wrote -------------------------------------------------------------------------


@pytest.mark.parametrize("bom", [False, True])
def test_utf8_with_and_without_bom(base_path, tmp_path, bom):
    document = dict(SMALL_V1, by_client={"Клієнт": {"orders_analyzed": 30, "orders_packed": 12, "sessions": 3}})
    for entry in document["analysis_history"] + document["packing_history"]:
        entry["client_id"] = "Клієнт"
    source = write_json(tmp_path / "global_stats.json", json.loads(json.dumps(document)), bom=bom)
    import_legacy(Layout(base_path), source, "Europe/Kyiv")
    assert totals(base_path)["clients"] == {"Клієнт": {"orders_analyzed": 30, "orders_packed": 12, "sessions": 3}}


def test_nan_and_infinity_tokens(base_path, tmp_path):
    document = json.loads(json.dumps(SMALL_V1))
    document["packing_history"][0]["metadata"] = {"duration_seconds": float("nan"), "rate": float("inf"), "low": float("-inf")}
    source = write_json(tmp_path / "global_stats.json", document)
    assert b"NaN" in source.read_bytes()
    assert b"-Infinity" in source.read_bytes()

    import_legacy(Layout(base_path), source, "Europe/Kyiv")
    stats = StatsManager(base_path, workstation="reader", spool=False)
    assert stats.get_packing_history()[0]["metadata"] == {"duration_seconds": None, "rate": None, "low": None}
    assert stats.get_global_stats()["total_orders_packed"] == 12
    stats.close()


def test_nan_count_rejected(base_path, tmp_path):
    document = json.loads(json.dumps(SMALL_V1))
    document["analysis_history"][0]["orders_count"] = float("nan")
    source = write_json(tmp_path / "global_stats.json", document)
    assert_rejected(base_path, source, "analysis_history[0].orders_count", "expected a whole number", "nan")


def test_numbers_where_strings_expected(base_path, tmp_path):
    document = json.loads(json.dumps(SMALL_V1))
    document["analysis_history"][0]["session_id"] = 20250110
    document["packing_history"][0]["session_id"] = 15.0
    document["packing_history"][0]["worker_id"] = 7
    document["packing_history"][0]["orders_count"] = 7.0
    document["packing_history"][0]["items_count"] = "9"
    source = write_json(tmp_path / "global_stats.json", document)
    import_legacy(Layout(base_path), source, "Europe/Kyiv")
    stats = StatsManager(base_path, workstation="reader", spool=False)
    analysis = stats.get_analysis_history()[0]
    packing = stats.get_packing_history()[0]
    assert analysis["session_id"] == "20250110"
    assert packing["session_id"] == "15"
    assert packing["worker_id"] == "7"
    assert packing["orders_count"] == 7
    assert packing["items_count"] == 9
    assert stats.get_global_stats()["total_orders_packed"] == 12
    stats.close()


def test_devenv_schema(base_path):
    result = import_legacy(Layout(base_path), DATA / "devenv_global_stats.json", "Europe/Kyiv")
    assert result.schema == "devenv"
    assert result.analysis_events == 0
    assert totals(base_path)["global"]["total_orders_analyzed"] == 0


def test_devenv_schema_with_counts(base_path, tmp_path):
    document = {
        "total_analyses": 2,
        "total_orders_analyzed": 40,
        "total_items_analyzed": 95,
        "clients": {"M": {"orders_analyzed": 25}, "A": {"orders_analyzed": 15}},
        "last_updated": "2025-11-03T09:12:44.120331",
    }
    source = write_json(tmp_path / "devenv.json", document)
    result = import_legacy(Layout(base_path), source, "Europe/Kyiv")
    assert result.schema == "devenv"
    assert any("total_analyses=2" in note for note in result.notes)
    assert any("total_items_analyzed=95" in note for note in result.notes)
    counted = totals(base_path)
    assert counted["global"]["total_orders_analyzed"] == 40
    assert counted["clients"]["M"] == {"orders_analyzed": 25, "orders_packed": 0, "sessions": 0}
    assert counted["clients"]["A"]["orders_analyzed"] == 15


# Broken files ---------------------------------------------------------------------------------


def test_truncated_file(base_path, tmp_path):
    text = (DATA / "global_stats.json").read_text(encoding="utf-8")
    cut = len(text) // 2
    source = tmp_path / "global_stats.json"
    source.write_text(text[:cut], encoding="utf-8")
    with pytest.raises(json.JSONDecodeError) as expected:
        json.loads(text[:cut])
    position = f"line {expected.value.lineno} column {expected.value.colno} (character {expected.value.pos})"
    assert_rejected(base_path, source, position, "truncated or damaged")


def test_truncated_after_bom(base_path, tmp_path):
    source = tmp_path / "global_stats.json"
    source.write_bytes(b'\xef\xbb\xbf{\n    "total_orders_analyzed": 5,\n    "by_client": {')
    assert_rejected(base_path, source, "line 3 column 19")


@pytest.mark.parametrize(
    ("content", "fragments"),
    [
        (b"", ("line 1", "the file is empty")),
        (b"  \n", ("the file is empty",)),
        (b"\xff\xfe{\x00}\x00", ("byte 0", "not UTF-8")),
        ('{"by_client": {"Müller": {}}}'.encode("cp1252"), ("byte 17", "not UTF-8")),
        (b"[1, 2]", ("top level", "expected a JSON object, found list")),
        (b'"text"', ("top level", "found str")),
        (b'{"orders": 5, "name": "x"}', ("not a v1 statistics file", "found name, orders")),
        (b"{}", ("not a v1 statistics file", "found none")),
        (b'{"total_orders_analyzed": 1,}', ("line 1 column 29", "invalid JSON")),
        (b'{"total_orders_analyzed": 1} trailing', ("line 1 column 30",)),
        (b'{"analysis_history": {}}', ("analysis_history", "expected a list, found dict")),
        (b'{"analysis_history": [5]}', ("analysis_history[0]", "expected an object, found int")),
        (b'{"by_client": []}', ("by_client", "expected an object, found list")),
        (b'{"by_client": {"M": 5}}', ("by_client['M']", "expected an object")),
        (b'{"total_orders_analyzed": "many"}', ("total_orders_analyzed", "expected a whole number")),
        (b'{"total_orders_analyzed": true}', ("total_orders_analyzed", "found True")),
        (
            b'{"analysis_history": [{"timestamp": "yesterday", "client_id": "M", "session_id": "s"}]}',
            ("analysis_history[0].timestamp", "invalid timestamp 'yesterday'"),
        ),
        (
            b'{"analysis_history": [{"timestamp": 1700000000, "client_id": "M", "session_id": "s"}]}',
            ("analysis_history[0].timestamp", "expected an ISO 8601 timestamp"),
        ),
        (
            b'{"packing_history": [{"timestamp": "2025-01-01T10:00:00", "client_id": "", "session_id": "s"}]}',
            ("packing_history[0].client_id", "expected a non-empty string id"),
        ),
        (
            b'{"packing_history": [{"timestamp": "2025-01-01T10:00:00", "client_id": "M", "session_id": null}]}',
            ("packing_history[0].session_id", "found None"),
        ),
        (
            b'{"analysis_history": [{"timestamp": "2025-01-01T10:00:00", "client_id": "M", "session_id": "s", '
            b'"orders_count": -3}]}',
            ("analysis_history[0].orders_count", "expected a count of 0 or more, found -3"),
        ),
        (
            b'{"analysis_history": [{"timestamp": "2025-01-01T10:00:00", "client_id": "M", "session_id": "s", '
            b'"metadata": [1]}]}',
            ("analysis_history[0].metadata", "expected an object"),
        ),
    ],
)
def test_broken_file_rejected(base_path, tmp_path, content, fragments):
    source = tmp_path / "global_stats.json"
    source.write_bytes(content)
    assert_rejected(base_path, source, *fragments)


def test_broken_entry_after_good_ones(base_path, tmp_path):
    document = json.loads((DATA / "global_stats.json").read_bytes())
    document["packing_history"][999]["items_count"] = "lots"
    source = write_json(tmp_path / "global_stats.json", document)
    assert_rejected(base_path, source, "packing_history[999].items_count")
    assert totals(base_path)["global"]["total_orders_analyzed"] == 0


def test_missing_file(base_path, tmp_path):
    with pytest.raises(LegacyImportError, match="file not found"):
        import_legacy(Layout(base_path), tmp_path / "nope.json")


def test_unknown_timezone(base_path):
    with pytest.raises(LegacyImportError, match="Unknown time zone 'Mars/Base'"):
        import_legacy(Layout(base_path), DATA / "global_stats.json", "Mars/Base")
    assert shard_files(base_path) == []


def test_broken_file_cli(base_path, tmp_path):
    source = tmp_path / "global_stats.json"
    source.write_bytes(b'{"total_orders_analyzed": 5, "by_client": {"M": {"orders_analyzed"')
    result = CliRunner().invoke(main, ["import-legacy", str(source), "--base-path", str(base_path), "--quiet"])
    assert result.exit_code == 1
    assert "line 1 column" in result.output
    assert "Nothing was imported." in result.output
    assert "Traceback" not in result.output
    assert shard_files(base_path) == []


def test_two_files_with_equal_differences_both_count(base_path, tmp_path):
    # Different counters and histories whose differences happen to match.
    def v1_file(name, counted, recorded):
        document = {
            "total_orders_analyzed": counted,
            "by_client": {"M": {"orders_analyzed": counted, "orders_packed": 0, "sessions": 0}},
            "analysis_history": [
                {"timestamp": "2025-01-10T09:00:00+02:00", "client_id": "M", "session_id": name, "orders_count": recorded},
            ],
        }
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(document), encoding="utf-8")
        return path

    layout = Layout(base_path)
    import_legacy(layout, v1_file("first", 10, 5))
    import_legacy(layout, v1_file("second", 15, 10))
    stats = StatsState.scan(layout).aggregate.global_stats()
    assert stats["total_orders_analyzed"] == 25


def test_merged_view_import_rejected(base_path):
    layout = Layout(base_path)
    import_legacy(layout, DATA / "global_stats.json", "Europe/Kyiv")
    run_merge(layout)
    before = shard_files(base_path)
    with pytest.raises(LegacyImportError, match="view that `ufstats merge` wrote last"):
        import_legacy(layout, layout.view_file, "Europe/Kyiv")
    assert shard_files(base_path) == before
    assert totals(base_path)["global"]["total_orders_analyzed"] == 146368


def test_same_bytes_other_name_already_imported(base_path, tmp_path):
    layout = Layout(base_path)
    copy = tmp_path / "copy_of_stats.json"
    copy.write_bytes((DATA / "global_stats.json").read_bytes())
    import_legacy(layout, DATA / "global_stats.json", "Europe/Kyiv")
    result = import_legacy(layout, copy, "Europe/Kyiv")
    assert result.already_imported
    assert totals(base_path)["global"]["total_orders_analyzed"] == 146368


def test_negative_counter_rejected(base_path, tmp_path):
    document = dict(SMALL_V1, total_orders_analyzed=-5)
    source = write_json(tmp_path / "negative.json", document)
    assert_rejected(base_path, source, "total_orders_analyzed", "found -5")


def v1_tool_records_into(view: Path, orders: int) -> None:
    """Do what a v1 tool does: add one packing entry and its counters to the file."""
    document = json.loads(view.read_text(encoding="utf-8"))
    document["packing_history"].append({
        "timestamp": "2026-12-04T10:00:00.000001+02:00", "client_id": "M", "session_id": "v1-pc",
        "worker_id": "007", "orders_count": orders, "items_count": 9, "metadata": {"pc_name": "OLD-PC"},
    })
    document["total_orders_packed"] += orders
    document["total_sessions"] += 1
    document["by_client"]["M"]["orders_packed"] += orders
    document["by_client"]["M"]["sessions"] += 1
    view.write_text(json.dumps(document, indent=4, ensure_ascii=False), encoding="utf-8")


def test_changed_view_imports_only_new_entries(base_path):
    layout = Layout(base_path)
    import_legacy(layout, DATA / "global_stats.json", "Europe/Kyiv")
    StatsManager(base_path, workstation="PC-1").record_packing("K", "new", "001", 3, 4)
    run_merge(layout)
    v1_tool_records_into(layout.view_file, 50)
    expected = json.loads(layout.view_file.read_text(encoding="utf-8"))

    with pytest.raises(ViewOwnershipError, match="changed since, probably by a v1 tool"):
        run_merge(layout)
    result = import_legacy(layout, layout.view_file)
    assert result.packing_events == 1
    assert result.analysis_events == 0
    run_merge(layout)

    merged = json.loads(layout.view_file.read_text(encoding="utf-8"))
    assert merged["total_orders_packed"] == expected["total_orders_packed"]
    assert merged["total_sessions"] == expected["total_sessions"]
    assert merged["by_client"] == expected["by_client"]
    assert "v1-pc" in [entry["session_id"] for entry in merged["packing_history"]]
    # Readers of the shards agree with the merged view.
    assert StatsManager(base_path, workstation="reader").get_global_stats()["total_sessions"] == expected["total_sessions"]


def test_unchanged_merged_view_import_rejected(base_path):
    layout = Layout(base_path)
    StatsManager(base_path, workstation="PC-1").record_packing("K", "new", "001", 3, 4)
    run_merge(layout)
    with pytest.raises(LegacyImportError, match="view that `ufstats merge` wrote last"):
        import_legacy(layout, layout.view_file)


def test_changed_view_uses_earlier_timezone(base_path):
    layout = Layout(base_path)
    import_legacy(layout, DATA / "global_stats.json", "Europe/Kyiv")
    run_merge(layout)
    document = json.loads(layout.view_file.read_text(encoding="utf-8"))
    # The v1 Shopify tool writes local time without an offset.
    document["analysis_history"].append(
        {"timestamp": "2026-12-01T09:30:00", "client_id": "M", "session_id": "v1-naive", "orders_count": 7}
    )
    document["total_orders_analyzed"] += 7
    document["by_client"]["M"]["orders_analyzed"] += 7
    layout.view_file.write_text(json.dumps(document, indent=4, ensure_ascii=False), encoding="utf-8")

    result = import_legacy(layout, layout.view_file)
    assert result.analysis_events == 1
    assert any("Europe/Kyiv" in note for note in result.notes)
    shard = result.shard.read_bytes().splitlines()
    imported = json.loads(shard[-1])
    assert imported["session_id"] == "v1-naive"
    assert imported["assumed_utc_offset"] == "+02:00"

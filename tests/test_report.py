"""The HTML report and the record selection behind it: totals, filters, escaping, errors."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from report_data import LEGACY_FILE, record, sample_events, write_shard
from ufstats.cli import main
from ufstats.errors import InvalidArgumentError
from ufstats.layout import Layout
from ufstats.legacy import import_legacy
from ufstats.manager import StatsManager
from ufstats.record_stats import per_hour, summarize_days, summarize_workers
from ufstats.selection import RecordFilter, select_records


@pytest.fixture
def runner():
    return CliRunner()


@pytest.fixture
def legacy(base_path):
    import_legacy(Layout(base_path), LEGACY_FILE, "Europe/Kyiv")
    write_shard(base_path, sample_events())
    return base_path


def report_html(runner, base_path, tmp_path, *options):
    output = tmp_path / "report.html"
    result = runner.invoke(main, ["report", "--base-path", str(base_path), "--html", str(output), *options])
    assert result.exit_code == 0, result.output
    return output.read_text(encoding="utf-8")


def headline(html):
    cards = re.findall(r'<div class="card"><b>([^<]*)</b><span>([^<]*)</span>', html)
    return {name: int(value.replace("\u202f", "")) for value, name in cards}


def test_report_totals_equal_show(runner, legacy, tmp_path):
    totals = StatsManager(legacy, workstation="reader", spool=False).get_global_stats()

    cards = headline(report_html(runner, legacy, tmp_path))

    assert cards["orders analysed"] == totals["total_orders_analyzed"]
    assert cards["orders packed"] == totals["total_orders_packed"]
    assert cards["packing sessions"] == totals["total_sessions"]


def test_report_client_totals_equal_show(runner, legacy, tmp_path):
    client = StatsManager(legacy, workstation="reader", spool=False).get_client_stats("M")

    cards = headline(report_html(runner, legacy, tmp_path, "--client", "M"))

    assert cards["orders analysed"] == client["orders_analyzed"]
    assert cards["orders packed"] == client["orders_packed"]
    assert cards["packing sessions"] == client["sessions"]
    assert cards["clients"] == 1


def test_report_date_filter_leaves_out_carried(runner, legacy, tmp_path):
    html = report_html(runner, legacy, tmp_path, "--from", "2026-04-18", "--to", "2026-04-18")

    cards = headline(html)
    selection = select_records(Layout(legacy), RecordFilter("2026-04-18", "2026-04-18"))
    assert {e.timestamp[:10] for e in selection.records} == {"2026-04-18"}
    assert cards["orders packed"] == sum(e.orders_count for e in selection.packing)
    assert "Not included because a date filter is set" in html


def test_filter_uses_local_date(base_path):
    write_shard(base_path, sample_events())

    day = select_records(Layout(base_path), RecordFilter.from_arguments("2026-04-17", "2026-04-17", None))

    assert [e.orders_count for e in day.records] == [100, 20, 60]
    assert day.totals() == [120, 60, 1]


def test_filter_from_only_and_client(base_path):
    write_shard(base_path, sample_events())

    selection = select_records(Layout(base_path), RecordFilter.from_arguments("2026-04-18", None, "K"))

    assert [(e.type, e.orders_count) for e in selection.records] == [("packing", 20)]


@pytest.mark.parametrize("value", ["2026-4-1", "18.04.2026", "2026-02-30", "yesterday"])
def test_filter_rejects_bad_date(value):
    with pytest.raises(InvalidArgumentError, match="YYYY-MM-DD"):
        RecordFilter.from_arguments(value, None, None)


def test_report_cli_bad_range(runner, base_path, tmp_path):
    result = runner.invoke(
        main, ["report", "--base-path", str(base_path), "--html", str(tmp_path / "r.html"),
               "--from", "2026-04-18", "--to", "2026-04-01"],
    )
    assert result.exit_code == 1
    assert "--from is after --to" in result.output
    assert not (tmp_path / "r.html").exists()


def test_report_cli_unwritable_output(runner, base_path, tmp_path):
    output = tmp_path / "missing-folder" / "r.html"
    result = runner.invoke(main, ["report", "--base-path", str(base_path), "--html", str(output)])
    assert result.exit_code == 1
    assert f"Cannot write the report to {output}" in result.output


def test_report_escapes_names(runner, base_path, tmp_path):
    hostile = '<img src=x onerror=alert(1)>"&'
    write_shard(base_path, [
        record("analysis", "2026-04-17T09:00:00+03:00", hostile, 5),
        record("packing", "2026-04-17T10:00:00+03:00", hostile, 5, 9, hostile,
               {"duration_seconds": 60, "worker_name": "</svg></section><script>x()</script>"}),
    ])

    html = report_html(runner, base_path, tmp_path, "--client", hostile)

    assert "<img" not in html
    assert "<script" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;&quot;&amp;" in html
    assert html.count("<section>") == html.count("</section>") == 4


def test_report_is_self_contained(runner, legacy, tmp_path):
    html = report_html(runner, legacy, tmp_path)

    assert "http:" not in html.lower()
    assert "https:" not in html.lower()
    assert "url(" not in html
    assert "<script" not in html
    assert "<link" not in html
    assert "default-src 'none'" in html


def test_report_empty_base_path(runner, base_path, tmp_path):
    html = report_html(runner, base_path, tmp_path)

    assert headline(html)["orders analysed"] == 0
    assert "No records in this range." in html
    assert "<svg" not in html


def test_workers_use_timed_sessions_only(base_path):
    write_shard(base_path, sample_events())
    records = select_records(Layout(base_path)).records

    workers = {w.worker_id: w for w in summarize_workers(records)}

    assert workers["001"].worker_name == "Олена"
    assert workers["001"].orders_per_hour == pytest.approx(60 * 3600 / 1800.5)
    assert workers["002"].orders_per_hour is None
    assert workers[None].items_per_hour == pytest.approx(35 * 4)
    assert per_hour(5, 0) is None


def test_days_fill_gaps(base_path):
    write_shard(base_path, [
        record("analysis", "2026-04-01T09:00:00+03:00", "M", 3),
        record("packing", "2026-04-04T09:00:00+03:00", "M", 2, 4, "001"),
    ])
    records = select_records(Layout(base_path)).records

    days = summarize_days(records, fill_gaps=True)

    assert [d.date for d in days] == ["2026-04-01", "2026-04-02", "2026-04-03", "2026-04-04"]
    assert [(d.orders_analyzed, d.orders_packed) for d in days] == [(3, 0), (0, 0), (0, 0), (0, 2)]

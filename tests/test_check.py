"""`ufstats check`: every kind of finding, exit codes, JSON output and baselines."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import time
from datetime import datetime, timedelta

import pytest
from click.testing import CliRunner

from ufstats import StatsManager
from ufstats.cli import main
from ufstats.events import Event, encode_line, new_event_id, now_timestamp
from ufstats.layout import Layout
from ufstats.merge import run_merge


def event_line(session: str, workstation: str = "PC-1", **fields) -> bytes:
    event = Event(
        format=1,
        id=fields.pop("id", new_event_id()),
        type="analysis",
        workstation=workstation,
        timestamp=fields.pop("timestamp", now_timestamp()),
        client_id="M",
        session_id=session,
        orders_count=1,
        **fields,
    )
    return encode_line(event)


def append_shard(base_path, name: str, data: bytes):
    shard = Layout(base_path).shards_dir / f"{name}.jsonl"
    shard.parent.mkdir(parents=True, exist_ok=True)
    with open(shard, "ab") as handle:
        handle.write(data)
    return shard


def run_check(base_path, *options):
    return CliRunner().invoke(main, ["check", "--base-path", str(base_path), *options])


def check_json(base_path, *options):
    result = run_check(base_path, "--json", *options)
    return result.exit_code, json.loads(result.stdout)


def kinds(report):
    return [finding["kind"] for finding in report["findings"]]


@pytest.fixture
def healthy(base_path):
    StatsManager(base_path, workstation="PC-1").record_analysis("M", "a1", 2)
    StatsManager(base_path, workstation="PC-2").record_packing("M", "p1", "001", 1, 1)
    run_merge(Layout(base_path))
    return base_path


def test_check_healthy_exits_zero(healthy):
    result = run_check(healthy)
    assert result.exit_code == 0, result.output
    assert "Checked 2 shards (2 lines, 2 events)" in result.output
    assert "All is well." in result.output


def test_check_empty_shards_folder_is_well(base_path):
    Layout(base_path).shards_dir.mkdir(parents=True)
    result = run_check(base_path)
    assert result.exit_code == 0, result.output
    assert "Checked 0 shards" in result.output


def test_check_json_healthy(healthy):
    status, report = check_json(healthy)
    assert status == 0
    assert report["ok"] is True
    assert report["shards"] == 2
    assert report["events"] == 2
    assert report["findings"] == []
    assert report["counts"] == {}


def test_check_damaged_line(healthy):
    append_shard(healthy, "PC-1", b"not json\n" + event_line("a2"))
    run_merge(Layout(healthy))
    result = run_check(healthy)
    assert result.exit_code == 1
    assert "damaged-line: PC-1 line 2 (byte " in result.output
    assert "1 finding needs attention." in result.output


def test_check_invalid_event(healthy):
    append_shard(healthy, "PC-1", event_line("a2", timestamp="yesterday"))
    run_merge(Layout(healthy))
    status, report = check_json(healthy)
    assert status == 1
    assert kinds(report) == ["damaged-line"]
    assert report["findings"][0]["line"] == 2
    assert "invalid timestamp" in report["findings"][0]["message"]


def test_check_incomplete_tail(healthy):
    append_shard(healthy, "PC-1", event_line("a2")[:30])
    status, report = check_json(healthy)
    assert status == 1
    assert kinds(report) == ["incomplete-tail"]
    assert report["findings"][0]["shard"] == "PC-1"


def test_check_duplicate_id(healthy):
    line = event_line("a2", id="0123456789abcdef0123456789abcdef")
    append_shard(healthy, "PC-1", line + line)
    run_merge(Layout(healthy))
    status, report = check_json(healthy)
    assert status == 1
    assert kinds(report) == ["duplicate-id"]
    finding = report["findings"][0]
    assert (finding["shard"], finding["line"]) == ("PC-1", 3)
    assert "also at PC-1 line 2" in finding["message"]


def test_check_foreign_workstation(healthy):
    append_shard(healthy, "PC-1", event_line("a2", workstation="PC-7"))
    run_merge(Layout(healthy))
    status, report = check_json(healthy)
    assert status == 1
    assert kinds(report) == ["foreign-line"]
    assert "'PC-7'" in report["findings"][0]["message"]


def test_check_second_machine(healthy):
    append_shard(healthy, "PC-3", event_line("a2", workstation="PC-3", machine="aaaa"))
    append_shard(healthy, "PC-3", event_line("a3", workstation="PC-3", machine="bbbb"))
    append_shard(healthy, "PC-3", event_line("a4", workstation="PC-3", machine="aaaa"))
    run_merge(Layout(healthy))
    status, report = check_json(healthy)
    assert status == 1
    assert kinds(report) == ["second-machine"]
    assert (report["findings"][0]["shard"], report["findings"][0]["line"]) == ("PC-3", 2)


def test_check_future_timestamp(healthy):
    ahead = (datetime.now().astimezone() + timedelta(hours=3)).isoformat()
    near = (datetime.now().astimezone() + timedelta(minutes=20)).isoformat()
    append_shard(healthy, "PC-1", event_line("a2", timestamp=ahead) + event_line("a3", timestamp=near))
    run_merge(Layout(healthy))
    status, report = check_json(healthy)
    assert status == 1
    assert kinds(report) == ["future-timestamp"]
    assert report["findings"][0]["line"] == 2
    status, report = check_json(healthy, "--future-minutes", "240")
    assert status == 0


def test_check_unexpected_files(healthy):
    shards = Layout(healthy).shards_dir
    (shards / "notes.txt").write_text("hello", encoding="utf-8")
    (shards / "bad name.jsonl").write_text("", encoding="utf-8")
    (shards / "old").mkdir()
    status, report = check_json(healthy)
    assert status == 1
    assert kinds(report) == ["unexpected-file"] * 3
    assert sorted(f["shard"] for f in report["findings"]) == ["bad name.jsonl", "notes.txt", "old"]


def test_check_view_missing(base_path):
    StatsManager(base_path, workstation="PC-1").record_analysis("M", "a1", 2)
    status, report = check_json(base_path)
    assert status == 1
    assert kinds(report) == ["view-missing"]


def test_check_view_stale(healthy):
    view = Layout(healthy).view_file
    two_hours_ago = time.time() - 7200
    os.utime(view, (two_hours_ago, two_hours_ago))
    status, report = check_json(healthy)
    assert status == 1
    assert kinds(report) == ["view-stale"]
    status, report = check_json(healthy, "--view-max-age", "180")
    assert status == 0


def test_check_view_damaged(healthy):
    Layout(healthy).view_file.write_bytes(b'{"total_orders')
    status, report = check_json(healthy)
    assert status == 1
    assert kinds(report) == ["view-damaged"]


def test_check_view_not_written_by_merge(healthy):
    view = Layout(healthy).view_file
    document = json.loads(view.read_text(encoding="utf-8"))
    document["total_sessions"] = 99
    view.write_text(json.dumps(document), encoding="utf-8")
    status, report = check_json(healthy)
    assert status == 1
    assert kinds(report) == ["view-not-merged"]


def test_check_epoch_damaged(healthy):
    layout = Layout(healthy)
    layout.epochs_dir.mkdir(parents=True, exist_ok=True)
    (layout.epochs_dir / "000001-20260101T000000.000-abcd.json").write_bytes(b"{")
    status, report = check_json(healthy)
    assert status == 1
    assert kinds(report) == ["epoch-damaged"]
    assert "ufstats reset --restore" in report["findings"][0]["message"]


def test_check_spool_pending(healthy, monkeypatch):
    def unreachable(*args, **kwargs):
        raise OSError(errno.EHOSTDOWN, "Host is down")

    monkeypatch.setattr("ufstats.recorder.append_lines", unreachable)
    manager = StatsManager(healthy, workstation="PC-1")
    manager.record_analysis("M", "a2", 2)
    assert manager.pending_count() == 1
    status, report = check_json(healthy)
    assert status == 1
    assert kinds(report) == ["spool-pending"]
    assert "ufstats flush" in report["findings"][0]["message"]


def test_check_baseline_marks_known(healthy, tmp_path):
    append_shard(healthy, "PC-1", b"not json\n")
    run_merge(Layout(healthy))
    status, report = check_json(healthy)
    assert status == 1
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps(report), encoding="utf-8")

    result = run_check(healthy, "--baseline", str(baseline))
    assert result.exit_code == 0, result.output
    assert "known: PC-1 line 2" in result.output
    assert "All is well." in result.output

    append_shard(healthy, "PC-1", b"\0\0\0\n")
    run_merge(Layout(healthy))
    status, report = check_json(healthy, "--baseline", str(baseline))
    assert status == 1
    assert [f["known"] for f in report["findings"]] == [True, False]
    assert report["counts"] == {"damaged-line": 1}


def test_check_bad_baseline(healthy, tmp_path):
    baseline = tmp_path / "baseline.json"
    baseline.write_text("[]", encoding="utf-8")
    result = run_check(healthy, "--baseline", str(baseline))
    assert result.exit_code == 1
    assert "Invalid baseline" in result.output


def test_check_changes_nothing(healthy):
    append_shard(healthy, "PC-1", b"not json\n" + event_line("a2")[:20])
    files = sorted(p for p in Layout(healthy).stats_dir.rglob("*") if p.is_file())
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
    run_check(healthy)
    after = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
    assert after == before
    assert sorted(p for p in Layout(healthy).stats_dir.rglob("*") if p.is_file()) == files


def test_check_missing_base_path(tmp_path):
    result = run_check(tmp_path / "nowhere")
    assert result.exit_code == 1
    assert "does not exist" in result.output


def test_check_unreadable_shard(healthy, monkeypatch):
    from ufstats import check as check_module
    from ufstats.shard_reader import ShardScan

    class UnreadablePC2(ShardScan):
        def blocks(self):
            if self.name == "PC-2":
                raise PermissionError(13, "Permission denied", str(self.path))
            return super().blocks()

    monkeypatch.setattr(check_module, "ShardScan", UnreadablePC2)
    status, report = check_json(healthy)
    assert status == 1
    assert kinds(report) == ["shard-unreadable"]
    assert report["findings"][0]["message"].startswith("PC-2: cannot be read (Permission denied)")
    assert report["events"] == 1

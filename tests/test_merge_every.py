"""`ufstats merge --every`: interval parsing, the loop, and stopping a real process by signal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from ufstats.cli import main
from ufstats.schedule import parse_interval, run_every

PROCESS_TIMEOUT = 60


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("5m", 300), ("1h", 3600), (" 2M ", 120), ("168h", 604800)])
def test_parse_interval_units(text, seconds):
    assert parse_interval(text) == seconds


@pytest.mark.parametrize("text", ["0s", "0m", "5", "5 m", "m", "-5m", "1.5m", "5d", "five", "", "169h"])
def test_parse_interval_rejects(text):
    with pytest.raises(ValueError, match="invalid interval"):
        parse_interval(text)


@pytest.mark.parametrize("text", ["0", "0s", "soon"])
def test_merge_every_usage_error(base_path, text):
    result = CliRunner().invoke(main, ["merge", "--base-path", str(base_path), "--every", text])
    assert result.exit_code == 2
    assert "Invalid value for '--every'" in result.output


def test_merge_every_rejects_json(base_path):
    result = CliRunner().invoke(main, ["merge", "--base-path", str(base_path), "--every", "5m", "--json"])
    assert result.exit_code == 2
    assert "--json cannot be combined with --every" in result.output


def test_run_every_survives_failed_round():
    lines: list[str] = []
    calls = []

    def merge_once():
        calls.append(1)
        raise OSError("server unreachable")

    rounds = run_every(1, merge_once, lines.append, max_rounds=2)
    assert rounds == 2
    failures = [line for line in lines if "merge failed: OSError: server unreachable" in line]
    assert len(failures) == 2


def start_loop(base_path: Path, interval: str = "1s") -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [sys.executable, "-m", "ufstats", "merge", "--base-path", str(base_path), "--every", interval],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
        encoding="utf-8",
    )


def wait_for_lines(process: subprocess.Popen, needle: str, count: int) -> list[str]:
    """Read stderr lines until `count` of them contain `needle`; bounded by PROCESS_TIMEOUT."""
    deadline = time.monotonic() + PROCESS_TIMEOUT
    lines: list[str] = []
    assert process.stderr is not None
    while sum(needle in line for line in lines) < count:
        if time.monotonic() > deadline or process.poll() is not None:
            break
        line = process.stderr.readline()
        if line:
            lines.append(line)
    return lines


def stop(process: subprocess.Popen, signum: int) -> tuple[int, str]:
    process.send_signal(signum)
    try:
        _, rest = process.communicate(timeout=PROCESS_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        pytest.fail("merge --every did not stop after the signal")
    return process.returncode, rest


@pytest.mark.skipif(os.name == "nt", reason="POSIX signals")
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_merge_every_stops_on_signal(base_path, signum):
    shards = base_path / "Stats" / "shards"
    shards.mkdir(parents=True)
    (shards / "pc1.jsonl").write_text(
        '{"format":1,"id":"e1","type":"analysis","workstation":"pc1",'
        '"timestamp":"2026-04-01T09:00:00+03:00","client_id":"M","session_id":"s","orders_count":5}\n'
        "not json\n",
        encoding="utf-8",
    )
    process = start_loop(base_path)
    lines = wait_for_lines(process, "merged 1 events", 2)
    returncode, rest = stop(process, signum)
    merged = [line for line in lines if "merged 1 events from 1 shards" in line]
    assert len(merged) == 2, "".join(lines) + rest
    assert "1 damaged lines, 0 duplicates" in merged[0]
    # Each line starts with an ISO 8601 timestamp.
    assert merged[0][:4].isdigit()
    assert merged[0][10] == "T"
    assert returncode == 0, rest
    assert f"received {signal.Signals(signum).name}" in rest
    assert "Traceback" not in rest
    assert (base_path / "Stats" / "global_stats.json").is_file()


@pytest.mark.skipif(os.name == "nt", reason="POSIX signals")
def test_merge_every_keeps_going_after_failure(base_path):
    stats = base_path / "Stats"
    (stats / "shards").mkdir(parents=True)
    foreign_view = stats / "global_stats.json"
    foreign_view.write_text('{"total_orders_analyzed": 1}', encoding="utf-8")
    process = start_loop(base_path)
    failed = wait_for_lines(process, "merge failed", 1)
    # Remove the obstacle: the next round succeeds in the same process.
    foreign_view.unlink()
    merged = wait_for_lines(process, "merged 0 events", 1)
    returncode, rest = stop(process, signal.SIGINT)
    assert any("merge failed: ViewOwnershipError" in line for line in failed), "".join(failed) + rest
    assert any("merged 0 events" in line for line in merged), "".join(merged) + rest
    assert returncode == 0

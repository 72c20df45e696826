"""The crash harness at a small size: SIGKILLed writers lose no acknowledged record."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HARNESS = Path(__file__).resolve().parent.parent / "tools" / "crash_harness.py"

pytestmark = pytest.mark.skipif(os.name != "posix", reason="the crash harness sends SIGKILL (POSIX only)")


def run_harness(folder: Path, *options: str) -> tuple[int, dict]:
    command = [sys.executable, str(HARNESS), "--folder", str(folder), "--json", *options]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=120)
    return completed.returncode, json.loads(completed.stdout)


def test_harness_small_run(tmp_path):
    status, report = run_harness(
        tmp_path / "run",
        "--kills", "12",
        "--workstations", "2",
        "--writers-per-workstation", "2",
        "--mean-interval", "0.1",
        "--torn-tails",
        "--max-seconds", "60",
    )
    assert status == 0, report
    assert report["ok"] is True
    assert report["finished"] is True
    assert report["kills"] == 12
    assert report["lost"] == []
    assert report["duplicated"] == []
    assert report["unexpected"] == []
    assert report["altered_shards"] == []
    assert report["writer_errors"] == []
    assert report["acknowledged"] > 0
    assert report["counted"] >= report["acknowledged"]
    assert report["counted"] - report["acknowledged"] == report["in_flight_counted"]


def test_harness_detects_lost_record(tmp_path):
    folder = tmp_path / "run"
    status, report = run_harness(folder, "--kills", "2", "--workstations", "1", "--max-seconds", "60")
    assert status == 0, report
    # Acknowledge a record that no writer ever made: the check must call it lost.
    with open(folder / "acks" / "w0-i1.txt", "a", encoding="ascii") as handle:
        handle.write("ok w0-i1-n999999\n")
    from importlib import util

    spec = util.spec_from_file_location("crash_harness", HARNESS)
    harness_module = util.module_from_spec(spec)
    sys.modules["crash_harness"] = harness_module
    spec.loader.exec_module(harness_module)
    options = harness_module.parse_arguments(["--workstations", "1", "--folder", str(folder)])
    harness = harness_module.Harness(options, folder)
    harness.verify()
    assert harness.report.lost == ["w0-i1-n999999"]
    assert harness.report.ok is False

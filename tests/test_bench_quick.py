"""The benchmark's quick mode runs to the end and prints every target (timings are not checked)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "tools" / "bench.py"

TARGET_ROWS = [
    "record latency, 20k events / empty folder",
    "record speedup over single file, 5k history",
    "record latency / bare open+write+fsync+close",
    "merge 20k events in 10 shards / msgspec decode",
    "same, msgspec decoding into dicts",
    "same, merge in one process",
    # Without /proc the benchmark can measure only the largest merge process.
    "merge 20k events, peak memory, all processes"
    if Path("/proc/self/status").exists()
    else "merge 20k events, peak memory, largest process",
    "read after one record, 20k / 1k events",
    "read after one record, 20k events",
    "cold first read after merge, 20k / 1k events",
    "cold history query (limit 100), 20k / 1k events",
    "incremental and cold reads equal a full scan",
    "8 writers / 1 writer throughput, ufstats",
    "8 writers / 1 writer throughput, single file",
    "8 writers / 1 writer throughput, bare append",
]


@pytest.mark.slow
def test_bench_quick_prints_every_target(tmp_path):
    completed = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    rows = [line for line in completed.stdout.splitlines() if line.startswith("| ")]
    names = [row.split("|")[1].strip() for row in rows[1:]]
    assert names == TARGET_ROWS
    for row in rows[1:]:
        assert row.rstrip(" |").split("|")[-1].strip() in ("PASS", "FAIL", "info"), row
    assert list(tmp_path.iterdir()) == [], "the benchmark left its data behind"

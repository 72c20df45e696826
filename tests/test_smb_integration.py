"""Integration test of ufstats against a real SMB3 share (Samba served, smbnetfs mounted).

Four processes, each its own workstation, record at the same time into one
0UFulfilment folder on the share. The parent then reads the totals back
through the share and checks that every record is counted exactly once.
The test skips when no share can be mounted (see smb_support).
"""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import pytest
import smb_support
from smb_support import server_side_path

ufstats = pytest.importorskip("ufstats")
from ufstats import StatsManager

# Makes the fixture available to the test of this module.
smb_share_path = smb_support.smb_share_path

pytestmark = pytest.mark.slow

WRITER_COUNT = 4
RECORDS_PER_KIND = 25
JOIN_TIMEOUT_SECONDS = 180.0


def workstation_id(writer: int) -> str:
    return f"ws-{writer + 1}"


def session_id(writer: int, index: int) -> str:
    return f"{workstation_id(writer)}-session-{index:02d}"


def packing_counts(writer: int, index: int) -> tuple[int, int]:
    """Return (orders_count, items_count) of one packing record, distinct enough to catch mix-ups."""
    orders = 1 + (writer * RECORDS_PER_KIND + index) % 7
    return orders, orders * 3 + writer


def analysis_orders(writer: int, index: int) -> int:
    return 2 + (writer * RECORDS_PER_KIND + index) % 5


def record_as_workstation(base_path: str, writer: int) -> None:
    """Record RECORDS_PER_KIND packing and analysis records as one workstation, then close the manager.

    Runs in a spawned process. An exception makes its exit code non-zero.
    """
    manager = StatsManager(base_path, workstation=workstation_id(writer))
    try:
        for index in range(RECORDS_PER_KIND):
            client = "client-a" if index % 2 == 0 else "client-b"
            orders, items = packing_counts(writer, index)
            # Analysis and packing of one session share its id, so the session
            # total is the packing count whichever record kind counts sessions.
            manager.record_analysis(
                client,
                session_id(writer, index),
                analysis_orders(writer, index),
                metadata={"writer": writer, "index": index},
            )
            manager.record_packing(
                client,
                session_id(writer, index),
                f"worker-{writer}",
                orders,
                items,
                metadata={"writer": writer, "index": index} if index % 3 == 0 else None,
            )
        # A record that failed to reach the share waits in the local spool
        # instead of raising, so check that none is left behind.
        pending = manager.pending_count()
        if pending != 0:
            raise RuntimeError(f"{pending} records of {workstation_id(writer)} stayed in the local spool")
    finally:
        manager.close()


def test_four_workstations_counted_once(smb_share_path: Path) -> None:
    base_path = smb_share_path / "0UFulfilment"
    base_path.mkdir()
    context = multiprocessing.get_context("spawn")
    writers = [
        context.Process(
            target=record_as_workstation, args=(str(base_path), writer), name=workstation_id(writer)
        )
        for writer in range(WRITER_COUNT)
    ]

    started = time.monotonic()
    for process in writers:
        process.start()
    deadline = started + JOIN_TIMEOUT_SECONDS
    for process in writers:
        process.join(max(0.0, deadline - time.monotonic()))
    still_running = [process.name for process in writers if process.is_alive()]
    for process in writers:
        if process.is_alive():
            process.kill()
            process.join()

    assert still_running == [], f"writers still running after {JOIN_TIMEOUT_SECONDS} s: {still_running}"
    assert {process.name: process.exitcode for process in writers} == {
        workstation_id(writer): 0 for writer in range(WRITER_COUNT)
    }

    shards = server_side_path(smb_share_path) / "0UFulfilment" / "Stats" / "shards"
    for writer in range(WRITER_COUNT):
        assert (shards / f"{workstation_id(writer)}.jsonl").is_file()

    expected_analyzed = sum(
        analysis_orders(writer, index) for writer in range(WRITER_COUNT) for index in range(RECORDS_PER_KIND)
    )
    expected_packed = sum(
        packing_counts(writer, index)[0]
        for writer in range(WRITER_COUNT)
        for index in range(RECORDS_PER_KIND)
    )
    reader = StatsManager(base_path, workstation="checker")
    try:
        totals = reader.get_global_stats()
    finally:
        reader.close()
    assert totals["total_orders_analyzed"] == expected_analyzed
    assert totals["total_orders_packed"] == expected_packed
    assert totals["total_sessions"] == WRITER_COUNT * RECORDS_PER_KIND

"""Records from many processes and threads are all counted, once each."""

from __future__ import annotations

import multiprocessing
import threading

from ufstats import StatsManager
from ufstats.layout import Layout
from ufstats.merge import run_merge

RECORDS_PER_WRITER = 40


def write_records(base_path: str, workstation: str, local_dir: str, writer_number: int) -> None:
    import os

    os.environ["UFSTATS_LOCAL_DIR"] = local_dir
    manager = StatsManager(base_path, workstation=workstation, spool=False)
    for number in range(RECORDS_PER_WRITER):
        session = f"{workstation}-{writer_number}-{number}"
        manager.record_analysis("M", session, 2)
        manager.record_packing("K", session, "001", 1, 3)
    manager.close()


def run_processes(base_path, local_dir, workstations):
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=write_records, args=(str(base_path), ws, str(local_dir), i))
        for i, ws in enumerate(workstations)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0


def expected_totals(writers):
    return {
        "total_orders_analyzed": 2 * RECORDS_PER_WRITER * writers,
        "total_orders_packed": RECORDS_PER_WRITER * writers,
        "total_sessions": RECORDS_PER_WRITER * writers,
    }


def totals_of(manager):
    stats = manager.get_global_stats()
    del stats["last_updated"]
    return stats


def test_processes_with_distinct_workstations(base_path, isolated_local_state):
    workstations = [f"PC-{n}" for n in range(4)]
    run_processes(base_path, isolated_local_state, workstations)
    reader = StatsManager(base_path, workstation="reader")
    assert totals_of(reader) == expected_totals(4)
    assert Layout(base_path).shard_names() == sorted(workstations)
    result = run_merge(Layout(base_path))
    assert result.events == 4 * 2 * RECORDS_PER_WRITER
    assert result.duplicates == 0
    assert result.damage == []


def test_processes_sharing_one_workstation(base_path, isolated_local_state):
    # Two copies of a tool on one PC write the same shard under the local lock.
    run_processes(base_path, isolated_local_state, ["PC-1", "PC-1", "PC-1"])
    reader = StatsManager(base_path, workstation="reader")
    assert totals_of(reader) == expected_totals(3)
    result = run_merge(Layout(base_path))
    assert result.damage == []


def test_threads_in_one_process(base_path):
    manager = StatsManager(base_path, workstation="PC-1")
    other_manager = StatsManager(base_path, workstation="PC-1")
    errors = []

    def work(target, number):
        try:
            for index in range(RECORDS_PER_WRITER):
                session = f"t{number}-{index}"
                target.record_analysis("M", session, 2)
                target.record_packing("K", session, "001", 1, 3)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(manager if n % 2 else other_manager, n)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert totals_of(manager) == expected_totals(6)
    assert run_merge(Layout(base_path)).damage == []

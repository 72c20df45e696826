"""The v1 StatsManager API, used exactly as v1 callers use it.

These tests touch only what the published v1 class offered, so they show
that a caller changes nothing but its import line.
"""

from __future__ import annotations

from ufstats import FileLockError, StatsManager, StatsManagerError


def record_sample(manager):
    manager.record_analysis(client_id="M", session_id="2025-11-05_1", orders_count=150,
                            metadata={"fulfillable_orders": 142, "courier_breakdown": {"DHL": 80, "DPD": 62}})
    manager.record_packing(client_id="M", session_id="2025-11-05_1", worker_id="001",
                           orders_count=142, items_count=450, metadata={"duration_seconds": 9000})
    manager.record_analysis("A", "2025-11-05_1", 20)
    manager.record_packing("A", "2025-11-05_1", "002", 18, 40)
    manager.record_packing("A", "2025-11-05_2", None, 2, 3)


def test_constructor_signature_and_attributes(base_path):
    manager = StatsManager(str(base_path), max_retries=3, retry_delay=0.01)
    assert manager.max_retries == 3
    assert manager.retry_delay == 0.01
    assert manager.stats_file == base_path / "Stats" / "global_stats.json"
    assert (base_path / "Stats").is_dir()


def test_global_stats_counting_rules(base_path):
    manager = StatsManager(base_path)
    record_sample(manager)
    stats = manager.get_global_stats()
    assert set(stats) == {"total_orders_analyzed", "total_orders_packed", "total_sessions", "last_updated"}
    assert stats["total_orders_analyzed"] == 170
    assert stats["total_orders_packed"] == 162
    assert stats["total_sessions"] == 3
    assert isinstance(stats["last_updated"], str)


def test_client_stats_and_unknown_client(base_path):
    manager = StatsManager(base_path)
    record_sample(manager)
    assert manager.get_client_stats("M") == {"orders_analyzed": 150, "orders_packed": 142, "sessions": 1}
    assert manager.get_client_stats("A") == {"orders_analyzed": 20, "orders_packed": 20, "sessions": 2}
    assert manager.get_client_stats("nobody") == {"orders_analyzed": 0, "orders_packed": 0, "sessions": 0}


def test_all_clients_stats(base_path):
    manager = StatsManager(base_path)
    record_sample(manager)
    assert manager.get_all_clients_stats() == {
        "M": {"orders_analyzed": 150, "orders_packed": 142, "sessions": 1},
        "A": {"orders_analyzed": 20, "orders_packed": 20, "sessions": 2},
    }


def test_empty_folder_reads_zeros(base_path):
    manager = StatsManager(base_path)
    stats = manager.get_global_stats()
    assert stats["total_orders_analyzed"] == 0
    assert stats["total_orders_packed"] == 0
    assert stats["total_sessions"] == 0
    assert manager.get_all_clients_stats() == {}
    assert manager.get_analysis_history() == []
    assert manager.get_packing_history() == []


def test_history_entry_shapes(base_path):
    manager = StatsManager(base_path)
    record_sample(manager)
    analysis = manager.get_analysis_history(client_id="M")
    assert len(analysis) == 1
    entry = analysis[0]
    assert set(entry) == {"timestamp", "client_id", "session_id", "orders_count", "metadata"}
    assert entry["metadata"] == {"fulfillable_orders": 142, "courier_breakdown": {"DHL": 80, "DPD": 62}}
    packing = manager.get_packing_history(worker_id="001")
    assert set(packing[0]) == {
        "timestamp", "client_id", "session_id", "worker_id", "orders_count", "items_count", "metadata",
    }
    assert packing[0]["items_count"] == 450
    without_metadata = manager.get_analysis_history(client_id="A")[0]
    assert "metadata" not in without_metadata


def test_history_newest_first_and_limit(base_path):
    manager = StatsManager(base_path)
    for number in range(5):
        manager.record_analysis("M", f"s{number}", number)
    history = manager.get_analysis_history()
    assert [h["session_id"] for h in history] == ["s4", "s3", "s2", "s1", "s0"]
    assert [h["session_id"] for h in manager.get_analysis_history(limit=2)] == ["s4", "s3"]
    # v1 treated a falsy limit as "no limit".
    assert len(manager.get_analysis_history(limit=0)) == 5


def test_packing_history_filters_combine(base_path):
    manager = StatsManager(base_path)
    record_sample(manager)
    assert len(manager.get_packing_history()) == 3
    assert len(manager.get_packing_history(client_id="A")) == 2
    assert len(manager.get_packing_history(client_id="A", worker_id="002")) == 1
    assert manager.get_packing_history(client_id="M", worker_id="002") == []
    assert manager.get_packing_history(client_id="A", worker_id="002", limit=5)[0]["orders_count"] == 18


def test_worker_id_none_is_kept(base_path):
    manager = StatsManager(base_path)
    manager.record_packing("A", "s1", None, 2, 3)
    assert manager.get_packing_history()[0]["worker_id"] is None


def test_second_manager_sees_first_managers_records(base_path):
    writer = StatsManager(base_path)
    reader = StatsManager(base_path)
    writer.record_analysis("M", "s1", 10)
    assert reader.get_global_stats()["total_orders_analyzed"] == 10
    writer.record_analysis("M", "s2", 5)
    assert reader.get_global_stats()["total_orders_analyzed"] == 15


def test_reset_stats_reads_zeros(base_path):
    manager = StatsManager(base_path)
    record_sample(manager)
    manager.reset_stats()
    stats = manager.get_global_stats()
    assert stats["total_orders_analyzed"] == 0
    assert stats["total_sessions"] == 0
    assert manager.get_all_clients_stats() == {}
    manager.record_analysis("M", "after", 7)
    assert manager.get_global_stats()["total_orders_analyzed"] == 7


def test_exceptions_are_importable_and_related():
    assert issubclass(FileLockError, StatsManagerError)
    assert issubclass(StatsManagerError, Exception)


def test_bad_count_raises_stats_manager_error(base_path):
    manager = StatsManager(base_path)
    try:
        manager.record_analysis("M", "s1", -1)
    except StatsManagerError as exc:
        assert "orders_count" in str(exc)
    else:
        raise AssertionError("negative count was accepted")
    assert manager.get_global_stats()["total_orders_analyzed"] == 0

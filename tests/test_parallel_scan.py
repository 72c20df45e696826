"""Merge reading shards in several processes counts what one process counts."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest
from click.testing import CliRunner

from test_incremental_reads import append, lines, make_event, snapshot
from ufstats import parallel_scan
from ufstats import state as state_module
from ufstats.cli import main
from ufstats.errors import InvalidArgumentError
from ufstats.events import encode_line
from ufstats.layout import Layout
from ufstats.merge import run_merge
from ufstats.parallel_scan import scan_shards, split_into_runs
from ufstats.reset import reset
from ufstats.state import StatsState


@pytest.fixture
def small_runs(monkeypatch):
    """Let a few kilobytes of shards fill a run, so tests start processes."""
    monkeypatch.setattr(parallel_scan, "MIN_BYTES_PER_PROCESS", 1)


def comparable(state: StatsState) -> dict:
    result = snapshot(state)
    # Float sums of durations may differ in the last bits when added in another order.
    result["workers"] = {key: [round(value, 6) for value in counters] for key, counters in result["workers"].items()}
    result["duplicates"] = state.duplicates
    result["damage"] = [damage.describe() for damage in state.damage]
    result["positions"] = {name: (p.position, p.line, p.head) for name, p in state.shards.items()}
    result["events"] = state.aggregate.events
    result["history_totals"] = (state.aggregate.analysis.total, state.aggregate.packing.total)
    result["imported_sources"] = state.aggregate.imported_sources
    result["newest"] = state.aggregate.newest
    return result


def fill_shards(base_path) -> None:
    for index, name in enumerate(["PC-1", "PC-2", "PC-3", "PC-4"]):
        append(base_path, name, lines(index * 100, 100, name))
    # A damaged line and a record delivered twice in one shard.
    append(base_path, "PC-2", b"{not json\n" + encode_line(make_event(150, "PC-2")))
    # A timed packing session and the counters of an imported v1 file.
    append(base_path, "PC-4", encode_line(make_event(999, "PC-4", metadata=msgspec.Raw(b'{"duration_seconds": 12.5}'))))
    adjustment = make_event(
        998, "PC-3", type="adjustment", totals={"orders_analyzed": 5}, by_client={"C9": {"sessions": 2}},
        source_sha256="f" * 64,
    )
    append(base_path, "PC-3", encode_line(adjustment))


def test_split_keeps_small_folders_in_one_run():
    sizes = [("a", 1000), ("b", 1000), ("c", 1000)]
    assert split_into_runs(sizes, 4) == [["a", "b", "c"]]


def test_split_cuts_in_name_order(monkeypatch):
    monkeypatch.setattr(parallel_scan, "MIN_BYTES_PER_PROCESS", 10)
    sizes = [(name, 100) for name in "abcdefghij"]
    runs = split_into_runs(sizes, 2)
    assert runs == [list("abcde"), list("fghij")]


def test_split_never_makes_more_runs_than_shards(monkeypatch):
    monkeypatch.setattr(parallel_scan, "MIN_BYTES_PER_PROCESS", 1)
    runs = split_into_runs([("a", 5), ("b", 500)], 4)
    assert runs == [["a"], ["b"]]


def test_split_with_no_shards():
    assert split_into_runs([], 4) == [[]]


def test_parallel_scan_equals_one_process(base_path, small_runs, caplog):
    fill_shards(base_path)
    layout = Layout(base_path)
    chunks: list[int] = []
    with caplog.at_level("INFO", logger="ufstats"):
        parallel = scan_shards(layout, 50, processes=3, on_chunk=chunks.append)
    assert "one process" not in caplog.text
    single = StatsState.scan(layout, 50)
    assert comparable(parallel) == comparable(single)
    assert parallel.seen_ids == single.seen_ids
    assert sum(chunks) == single.bytes_read
    assert parallel.duplicates == 1
    assert len(parallel.damage) == 1


def test_parallel_scan_starts_at_reset_offsets(base_path, small_runs):
    fill_shards(base_path)
    layout = Layout(base_path)
    reset(layout)
    append(base_path, "PC-1", lines(500, 7, "PC-1"))
    append(base_path, "PC-3", lines(600, 9, "PC-3"))
    parallel = scan_shards(layout, None, processes=2)
    assert comparable(parallel) == comparable(StatsState.scan(layout, None))
    assert parallel.aggregate.events == 16


def test_event_in_two_runs_is_counted_once(base_path, small_runs, caplog):
    fill_shards(base_path)
    # PC-1's first record copied into PC-4, which another process reads.
    copied = make_event(0, "PC-1")
    append(base_path, "PC-4", encode_line(copied))
    layout = Layout(base_path)
    with caplog.at_level("WARNING", logger="ufstats"):
        parallel = scan_shards(layout, 50, processes=2)
    assert comparable(parallel) == comparable(StatsState.scan(layout, 50))
    assert parallel.duplicates == 2
    assert f"event id {copied.id} occurs in shards that different merge processes read" in caplog.text
    assert "reading shards from PC-3 on in this process" in caplog.text


def test_failed_child_run_read_here(base_path, small_runs, monkeypatch, caplog):
    fill_shards(base_path)
    monkeypatch.setattr(parallel_scan, "_CHILD_CODE", "import sys; sys.stderr.write('disk on fire\\n'); sys.exit(3)")
    layout = Layout(base_path)
    with caplog.at_level("WARNING", logger="ufstats"):
        state = scan_shards(layout, 50, processes=2)
    assert comparable(state) == comparable(StatsState.scan(layout, 50))
    assert "failed (exit status 3: disk on fire); reading shards from PC-3 on in this process" in caplog.text


def test_unstartable_child_run_read_here(base_path, small_runs, monkeypatch, caplog):
    fill_shards(base_path)

    def fail_to_start(*args, **kwargs):
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(parallel_scan.subprocess, "Popen", fail_to_start)
    layout = Layout(base_path)
    with caplog.at_level("WARNING", logger="ufstats"):
        state = scan_shards(layout, 50, processes=2)
    assert comparable(state) == comparable(StatsState.scan(layout, 50))
    assert "cannot start it: [Errno 11] Resource temporarily unavailable" in caplog.text


def test_frozen_app_starts_no_child(base_path, small_runs, monkeypatch):
    fill_shards(base_path)
    monkeypatch.setattr(parallel_scan.sys, "frozen", True, raising=False)

    def no_child(*args, **kwargs):
        raise AssertionError("a frozen application must not start child processes")

    monkeypatch.setattr(parallel_scan, "_ChildScan", no_child)
    layout = Layout(base_path)
    state = scan_shards(layout, 50, processes=2)
    assert comparable(state) == comparable(StatsState.scan(layout, 50))


def test_unguarded_script_runs_once(base_path, tmp_path):
    fill_shards(base_path)
    script = tmp_path / "record_then_merge.py"
    script.write_text(
        "import sys\n"
        "from ufstats import StatsManager, parallel_scan\n"
        "from ufstats.layout import Layout\n"
        "from ufstats.merge import run_merge\n"
        "parallel_scan.MIN_BYTES_PER_PROCESS = 1\n"
        "base = sys.argv[1]\n"
        "manager = StatsManager(base, workstation='PC-9')\n"
        "manager.record_packing('C1', 'script-session', 'w1', 2, 3)\n"
        "manager.close()\n"
        "print('recorded')\n"
        "print(run_merge(Layout.for_base_path(base), processes=2).events)\n"
    )
    completed = subprocess.run(
        [sys.executable, str(script), str(base_path)], capture_output=True, text=True, timeout=120, check=False
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split() == ["recorded", "403"]
    assert completed.stderr == ""
    shard = Layout(base_path).shards_dir / "PC-9.jsonl"
    assert len(shard.read_bytes().splitlines()) == 1


def test_state_pickles_ids_with_newlines():
    state = StatsState(Layout.for_base_path("/nonexistent"))
    state.seen_ids = {"a", "b\nc", "d"}
    assert pickle.loads(pickle.dumps(state)).seen_ids == {"a", "b\nc", "d"}
    state.seen_ids = {"a", "b"}
    assert pickle.loads(pickle.dumps(state)).seen_ids == {"a", "b"}
    state.seen_ids = set()
    assert pickle.loads(pickle.dumps(state)).seen_ids == set()


def test_merge_processes_write_same_view(base_path, small_runs):
    fill_shards(base_path)
    layout = Layout(base_path)
    run_merge(layout, processes=1)
    single_view = layout.view_file.read_bytes()
    result = run_merge(layout, processes=2)
    assert layout.view_file.read_bytes() == single_view
    assert result.events == 402
    assert result.shards == 4


@pytest.mark.parametrize("processes", [0, -1, "2", 2.5, True])
def test_run_merge_rejects_bad_processes(base_path, processes):
    with pytest.raises(InvalidArgumentError, match=f"Invalid processes={processes!r}: give a whole number"):
        run_merge(Layout(base_path), processes=processes)


def test_run_merge_none_means_default(base_path, small_runs):
    fill_shards(base_path)
    assert run_merge(Layout(base_path), processes=None).events == 402


def test_cli_merge_processes_option(base_path, small_runs):
    fill_shards(base_path)
    result = CliRunner().invoke(main, ["merge", "--base-path", str(base_path), "--processes", "2", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["events"] == 402


@pytest.mark.parametrize(
    "value, message",
    [("0", "0 is less than 1; give 1 or more processes"), ("abc", "'abc' is not a valid integer")],
)
def test_cli_merge_rejects_bad_processes(base_path, value, message):
    result = CliRunner().invoke(main, ["merge", "--base-path", str(base_path), "--processes", value])
    assert result.exit_code == 2
    assert f"Invalid value for '--processes': {message}" in result.output


def test_default_processes_is_one_when_frozen(monkeypatch):
    monkeypatch.setattr(parallel_scan.sys, "frozen", True, raising=False)
    assert parallel_scan.default_processes() == 1


def test_merge_process_imports_stay_small():
    # A merge child process imports parallel_scan only; StatsManager, click
    # and portalocker would add to the start-up of every such process.
    code = (
        "import sys, ufstats.parallel_scan; "
        "print(sorted(m for m in ('ufstats.manager', 'click', 'portalocker') if m in sys.modules))"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert completed.stdout.strip() == "[]"


def test_package_still_exports_manager():
    import ufstats

    assert ufstats.StatsManager.__name__ == "StatsManager"
    assert ufstats.StatsReader.__name__ == "StatsReader"
    with pytest.raises(AttributeError, match="no attribute 'Missing'"):
        ufstats.Missing  # noqa: B018


def child_code_with(prefix: str = "", suffix: str = "") -> str:
    return prefix + parallel_scan._CHILD_CODE + suffix


def test_output_before_marker_skipped(base_path, small_runs, monkeypatch, caplog):
    fill_shards(base_path)
    # A site hook that prints at start-up, beginning with a letter that is also a frame tag.
    code = child_code_with(prefix="import sys; sys.stdout.write('Ready: hooks loaded\\n'); sys.stdout.flush(); ")
    monkeypatch.setattr(parallel_scan, "_CHILD_CODE", code)
    layout = Layout(base_path)
    with caplog.at_level("INFO", logger="ufstats"):
        state = scan_shards(layout, 50, processes=2)
    assert comparable(state) == comparable(StatsState.scan(layout, 50))
    assert "in this process" not in caplog.text


def test_output_after_result_rejected(base_path, small_runs, monkeypatch, caplog):
    fill_shards(base_path)
    code = child_code_with(suffix="; sys.stdout.buffer.write(b'bye'); sys.stdout.flush()")
    monkeypatch.setattr(parallel_scan, "_CHILD_CODE", code)
    layout = Layout(base_path)
    with caplog.at_level("WARNING", logger="ufstats"):
        state = scan_shards(layout, 50, processes=2)
    assert comparable(state) == comparable(StatsState.scan(layout, 50))
    assert "failed (unexpected output after its result)" in caplog.text


def test_working_folder_modules_not_imported(base_path, small_runs, tmp_path, monkeypatch, caplog):
    fill_shards(base_path)
    folder = tmp_path / "working"
    folder.mkdir()
    for module in ("struct", "signal", "pickle", "ufstats"):
        (folder / f"{module}.py").write_text(f"raise ImportError('{module}.py of the working folder was imported')\n")
    monkeypatch.chdir(folder)
    layout = Layout(base_path)
    with caplog.at_level("WARNING", logger="ufstats"):
        state = scan_shards(layout, 50, processes=2)
    assert comparable(state) == comparable(StatsState.scan(layout, 50))
    assert "working folder" not in caplog.text


def test_embedded_python_starts_no_child(base_path, small_runs, monkeypatch):
    fill_shards(base_path)
    monkeypatch.setattr(parallel_scan.sys, "executable", "/opt/warehouse/packing-tool")
    assert not parallel_scan.can_start_processes()
    assert parallel_scan.default_processes() == 1

    def no_child(*args, **kwargs):
        raise AssertionError("an embedding application must not be started as a child process")

    monkeypatch.setattr(parallel_scan, "_ChildScan", no_child)
    layout = Layout(base_path)
    assert comparable(scan_shards(layout, 50, processes=2)) == comparable(StatsState.scan(layout, 50))


@pytest.mark.skipif(os.name == "nt", reason="os.kill with SIGINT ends the process on Windows")
def test_child_ignores_interrupts():
    # The child's first statements, then it signals itself as a terminal or service manager would.
    setup = parallel_scan._CHILD_CODE.split("import pickle")[0]
    code = setup + "import os; os.kill(os.getpid(), signal.SIGINT); os.kill(os.getpid(), signal.SIGTERM); print('alive')"
    completed = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "alive"


def vanishing_shard(monkeypatch, name: str) -> None:
    """Make the first head digest of shard `name` find the file gone, as if it was moved mid-read."""
    original = state_module.head_digest

    def digest(path, length):
        if Path(path).stem == name and Path(path).exists():
            Path(path).unlink()
            raise FileNotFoundError(2, "No such file or directory", str(path))
        return original(path, length)

    monkeypatch.setattr(state_module, "head_digest", digest)


@pytest.mark.parametrize("processes", [1, 2])
def test_shard_gone_during_merge(base_path, small_runs, monkeypatch, processes):
    fill_shards(base_path)
    vanishing_shard(monkeypatch, "PC-2")
    result = run_merge(Layout(base_path), processes=processes)
    assert not (Layout(base_path).shards_dir / "PC-2.jsonl").exists()
    assert result.shards == 3
    assert comparable(StatsState.scan(Layout(base_path), 1000))["events"] == result.events

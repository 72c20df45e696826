"""Setup mistakes: bad optional config files, files where folders belong, wrong flag types."""

from __future__ import annotations

import logging

import pytest
from click.testing import CliRunner

from ufstats import InvalidArgumentError, StatsFolderError, StatsManager
from ufstats import config as config_module
from ufstats.cli import main
from ufstats.config import effective_settings, user_config_file


def write_base_file(base_path, text):
    path = base_path / "ufstats.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('workstation = "X"\n', "key 'workstation' (value 'X')"),
        ('history_limit = "abc"\n', "invalid history_limit = 'abc'"),
        ("history_limit = \n", "is not valid TOML"),
        ('spool_dir = "relative/dir"\n', "invalid spool_dir = 'relative/dir': must be an absolute path"),
    ],
)
def test_manager_bad_base_file_warns(base_path, caplog, text, expected):
    path = write_base_file(base_path, text)
    with caplog.at_level(logging.WARNING, logger="ufstats"):
        manager = StatsManager(base_path, workstation="PC-1")
    try:
        manager.record_analysis("M", "s1", 3)
        assert manager.get_global_stats()["total_orders_analyzed"] == 3
        # The default spool folder, never one inside the base folder.
        assert base_path not in manager._recorder.spool.path.parents
    finally:
        manager.close()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(str(path) in message and expected in message for message in warnings), warnings


def test_manager_bad_user_file_warns(base_path, caplog):
    path = user_config_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("workstation = 'bad name'\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="ufstats"):
        manager = StatsManager(base_path)
    manager.close()
    assert manager.workstation != "bad name"
    assert any(str(path) in r.getMessage() and "'bad name'" in r.getMessage() for r in caplog.records)


def test_manager_skips_config_when_given(base_path, tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("configuration was read")

    monkeypatch.setattr(config_module, "effective_settings", fail)
    manager = StatsManager(base_path, workstation="PC-1", spool_dir=tmp_path / "spool")
    manager.record_analysis("M", "s1", 1)
    manager.close()


def test_base_file_relative_spool_dir_rejected(base_path):
    path = write_base_file(base_path, 'spool_dir = "relative/dir"\n')
    with pytest.raises(InvalidArgumentError) as caught:
        effective_settings(base_path=base_path)
    assert str(path) in str(caught.value)
    assert "spool_dir = 'relative/dir'" in str(caught.value)


def test_cli_bad_base_file_is_error(base_path):
    path = write_base_file(base_path, 'spool_dir = "relative/dir"\n')
    result = CliRunner().invoke(main, ["config", "--base-path", str(base_path)])
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: Configuration file {path}: invalid spool_dir = 'relative/dir'")


@pytest.mark.parametrize("argument", ["spool", "background"])
@pytest.mark.parametrize("value", ["no", 0, None])
def test_manager_flags_must_be_bool(base_path, argument, value):
    with pytest.raises(InvalidArgumentError, match=f"Invalid {argument}={value!r}: must be True or False"):
        StatsManager(base_path, workstation="PC-1", **{argument: value})


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"max_retries": 101}, "Invalid max_retries=101: must be an integer from 1 to 100"),
        ({"retry_delay": 61}, "Invalid retry_delay=61: must be a finite number of seconds from 0 to 60"),
        ({"lock_timeout": -1}, "Invalid lock_timeout=-1: must be a finite number of seconds from 0 to 3600"),
    ],
)
def test_manager_number_bounds_message(base_path, arguments, expected):
    with pytest.raises(InvalidArgumentError) as caught:
        StatsManager(base_path, workstation="PC-1", **arguments)
    assert str(caught.value) == expected


def blocking_layouts(base_path):
    """Yield (base path to use, the file in the way) for each place a file can block."""
    as_file = base_path.parent / "a-file"
    as_file.write_text("x", encoding="utf-8")
    yield as_file, as_file
    (base_path / "Stats").write_text("x", encoding="utf-8")
    yield base_path, base_path / "Stats"
    other = base_path.parent / "other"
    (other / "Stats").mkdir(parents=True)
    (other / "Stats" / "shards").write_text("x", encoding="utf-8")
    yield other, other / "Stats" / "shards"


@pytest.mark.parametrize("spool", [True, False])
def test_record_file_in_the_way_raises(base_path, spool):
    for folder, blocking in blocking_layouts(base_path):
        manager = StatsManager(folder, workstation="PC-1", spool=spool)
        try:
            with pytest.raises(StatsFolderError) as caught:
                manager.record_packing("M", "s1", "001", 1, 2)
            assert f"{blocking} is a file, not a folder" in str(caught.value)
            assert manager.pending_count() == 0
        finally:
            manager.close()
        assert blocking.read_text(encoding="utf-8") == "x"


def test_check_stats_file_finding(base_path):
    (base_path / "Stats").write_text("x", encoding="utf-8")
    result = CliRunner().invoke(main, ["check", "--base-path", str(base_path)])
    assert result.exit_code == 1
    assert f"not-a-folder: {base_path / 'Stats'} is a file, not a folder" in result.output
    assert "Not a directory" not in result.output


def test_flush_missing_base_path(tmp_path):
    missing = tmp_path / "nonexistent"
    result = CliRunner().invoke(main, ["flush", "--base-path", str(missing)])
    assert result.exit_code == 1
    assert f"Base path {missing} does not exist" in result.output
    assert "no spooled records" not in result.output


def test_flush_existing_base_path_empty(base_path):
    result = CliRunner().invoke(main, ["flush", "--base-path", str(base_path)])
    assert result.exit_code == 0
    assert result.output == "no spooled records\n"

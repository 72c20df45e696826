"""`ufstats.toml` settings: precedence, validation, `ufstats config`, and their use."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from ufstats import InvalidArgumentError, StatsManager
from ufstats.cli import main
from ufstats.config import effective_settings, user_config_file


def write_user_file(text: str) -> Path:
    path = user_config_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_files():
    settings = effective_settings()
    assert settings["base_path"].value is None
    assert settings["history_limit"].value == 1000
    assert settings["history_limit"].source == "default"
    assert settings["workstation"].source.startswith("default")


def test_precedence_order(base_path, monkeypatch):
    user = write_user_file(f'base_path = "{base_path.as_posix()}"\nhistory_limit = 10\nspool_dir = "user-spool"\nworkstation = "pc-user"\n')
    base_file = base_path / "ufstats.toml"
    base_spool = (base_path.parent / "base-spool").as_posix()
    base_file.write_text(f"history_limit = 20\nspool_dir = '{base_spool}'\n", encoding="utf-8")

    settings = effective_settings()
    assert settings["base_path"].value == base_path
    assert settings["base_path"].source == f"file {user}"
    assert settings["history_limit"].value == 20
    assert settings["history_limit"].source == f"file {base_file}"
    assert settings["spool_dir"].value == Path(base_spool)
    assert settings["workstation"].value == "pc-user"

    # A relative path in the user file is taken relative to that file's folder.
    base_file.write_text("history_limit = 20\n", encoding="utf-8")
    assert effective_settings()["spool_dir"].value == user.parent / "user-spool"

    monkeypatch.setenv("UFSTATS_HISTORY_LIMIT", "30")
    monkeypatch.setenv("UFSTATS_HOST", "pc-env")
    settings = effective_settings()
    assert settings["history_limit"].value == 30
    assert settings["history_limit"].source == "environment variable UFSTATS_HISTORY_LIMIT"
    assert settings["workstation"].value == "pc-env"

    settings = effective_settings({"history_limit": 40})
    assert settings["history_limit"].value == 40
    assert settings["history_limit"].source == "command line"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("history_limit = -1", "invalid history_limit = -1"),
        ("history_limit = true", "invalid history_limit = True"),
        ("history_limit = 'many'", "invalid history_limit = 'many'"),
        ("workstation = 'bad name'", "invalid workstation = 'bad name'"),
        ("spool_dir = ''", "invalid spool_dir = ''"),
        ("base_path = 5", "invalid base_path = 5"),
        ("histroy_limit = 5", "unknown key 'histroy_limit' (value 5)"),
        ("history_limit = ", "is not valid TOML"),
    ],
)
def test_invalid_user_file(text, expected):
    path = write_user_file(text + "\n")
    with pytest.raises(InvalidArgumentError) as caught:
        effective_settings()
    assert str(path) in str(caught.value)
    assert expected in str(caught.value)


@pytest.mark.parametrize("key", ["workstation", "base_path"])
def test_base_file_rejects_key(base_path, key):
    (base_path / "ufstats.toml").write_text(f'{key} = "pc1"\n', encoding="utf-8")
    with pytest.raises(InvalidArgumentError, match=f"key '{key}'.*cannot be set in the base folder"):
        effective_settings(base_path=base_path)


def test_invalid_environment_variable(monkeypatch):
    monkeypatch.setenv("UFSTATS_HISTORY_LIMIT", "lots")
    with pytest.raises(InvalidArgumentError, match="UFSTATS_HISTORY_LIMIT='lots'"):
        effective_settings()


def test_not_utf8_file():
    path = user_config_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes("workstation = 'Склад'\n".encode("cp1251"))
    with pytest.raises(InvalidArgumentError, match="not UTF-8"):
        effective_settings()


def test_cli_base_path_from_user_file(base_path):
    write_user_file(f"base_path = '{base_path}'\n")
    (base_path / "Stats").mkdir()  # Without it, show warns on stderr, which CliRunner mixes into output.
    result = CliRunner().invoke(main, ["show", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["total_sessions"] == 0


def test_cli_base_path_missing_everywhere():
    result = CliRunner().invoke(main, ["show"])
    assert result.exit_code == 2
    assert "--base-path" in result.output
    assert str(user_config_file()) in result.output


def test_cli_invalid_file_is_one_line_error():
    path = write_user_file("history_limit = -5\n")
    result = CliRunner().invoke(main, ["show"])
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: Configuration file {path}: invalid history_limit = -5")


def test_merge_uses_configured_history_limit(base_path, monkeypatch):
    (base_path / "ufstats.toml").write_text("history_limit = 1\n", encoding="utf-8")
    manager = StatsManager(base_path, workstation="pc1", spool=False)
    for number in range(3):
        manager.record_analysis("M", f"s{number}", 1)
    manager.close()
    runner = CliRunner()
    assert runner.invoke(main, ["merge", "--base-path", str(base_path)]).exit_code == 0
    view = json.loads((base_path / "Stats" / "global_stats.json").read_text(encoding="utf-8"))
    assert len(view["analysis_history"]) == 1
    assert runner.invoke(main, ["merge", "--base-path", str(base_path), "--history-limit", "2"]).exit_code == 0
    view = json.loads((base_path / "Stats" / "global_stats.json").read_text(encoding="utf-8"))
    assert len(view["analysis_history"]) == 2


def test_manager_reads_workstation_and_spool_dir(base_path, tmp_path):
    write_user_file("workstation = 'pc-from-file'\n")
    (base_path / "ufstats.toml").write_text(f"spool_dir = '{(tmp_path / 'spool').as_posix()}'\n", encoding="utf-8")
    manager = StatsManager(base_path, spool=True)
    try:
        assert manager.workstation == "pc-from-file"
        assert manager._recorder.spool.path.parent == tmp_path / "spool"
    finally:
        manager.close()
    explicit = StatsManager(base_path, workstation="pc-arg", spool=False)
    assert explicit.workstation == "pc-arg"
    explicit.close()


def test_manager_ignores_missing_base_folder(tmp_path):
    manager = StatsManager(tmp_path / "offline", spool=False)
    assert manager.workstation
    manager.close()


def test_cli_config_table_and_json(base_path, monkeypatch):
    user = write_user_file("history_limit = 7\n")
    monkeypatch.setenv("UFSTATS_HOST", "pc-env")
    runner = CliRunner()
    table = runner.invoke(main, ["config", "--base-path", str(base_path)])
    assert table.exit_code == 0, table.output
    rows = {line.split()[0]: line for line in table.output.splitlines()[2:6]}
    assert rows["history_limit"].split()[1] == "7"
    assert rows["history_limit"].endswith(f"file {user}")
    assert rows["workstation"].endswith("environment variable UFSTATS_HOST")
    assert rows["base_path"].endswith("command line")
    assert f"user file: {user} (found)" in table.output

    as_json = runner.invoke(main, ["config", "--json"], env={"UFSTATS_BASE_PATH": str(base_path)})
    assert as_json.exit_code == 0, as_json.output
    document = json.loads(as_json.output)
    assert document["settings"]["base_path"] == {
        "value": str(base_path), "source": "environment variable UFSTATS_BASE_PATH",
    }
    assert document["settings"]["history_limit"]["value"] == 7
    assert document["files"]["base"] == {"path": str(base_path / "ufstats.toml"), "exists": False}


def test_manager_ignores_invalid_unrelated_variable(base_path, monkeypatch):
    # The manager reads only workstation and spool_dir; a bad history limit
    # matters to merge, not to recording.
    monkeypatch.setenv("UFSTATS_HISTORY_LIMIT", "lots")
    manager = StatsManager(base_path, workstation="PC-1")
    manager.record_analysis("M", "s1", 3)
    assert manager.get_global_stats()["total_orders_analyzed"] == 3

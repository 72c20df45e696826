"""Invalid `ufstats.toml` files: `check` reports them, reading commands warn and go on working."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from ufstats import StatsManager
from ufstats.cli import main
from ufstats.config import config_problems, user_config_file
from ufstats.merge import run_merge
from ufstats.layout import Layout


@pytest.fixture
def recorded(base_path):
    """A base folder with one record on each kind and a merged view."""
    manager = StatsManager(base_path, workstation="PC-1", spool=False)
    manager.record_analysis("M", "a1", 2)
    manager.record_packing("M", "p1", "001", 1, 3)
    manager.close()
    run_merge(Layout(base_path))
    return base_path


def check_json(base_path):
    result = CliRunner().invoke(main, ["check", "--base-path", str(base_path), "--json"])
    return result.exit_code, json.loads(result.stdout)


def config_findings(report):
    return [finding for finding in report["findings"] if finding["kind"] == "config-invalid"]


def test_check_base_file_invalid_value(recorded):
    base_file = recorded / "ufstats.toml"
    base_file.write_text('history_limit = "abc"\n', encoding="utf-8")
    status, report = check_json(recorded)
    assert status == 1
    findings = config_findings(report)
    assert len(findings) == 1
    assert str(base_file) in findings[0]["message"]
    assert "invalid history_limit = 'abc'" in findings[0]["message"]


def test_check_base_file_syntax_error(recorded):
    base_file = recorded / "ufstats.toml"
    base_file.write_text("history_limit = \n", encoding="utf-8")
    status, report = check_json(recorded)
    assert status == 1
    findings = config_findings(report)
    assert len(findings) == 1
    assert f"Configuration file {base_file} is not valid TOML" in findings[0]["message"]


def test_check_base_file_every_problem(recorded):
    (recorded / "ufstats.toml").write_text('history_limit = -1\nworkstation = "PC-9"\ncolour = 1\n', encoding="utf-8")
    status, report = check_json(recorded)
    assert status == 1
    messages = [finding["message"] for finding in config_findings(report)]
    assert len(messages) == 3
    assert "invalid history_limit = -1" in messages[0]
    assert "key 'workstation' (value 'PC-9') cannot be set in the base folder's file" in messages[1]
    assert "unknown key 'colour'" in messages[2]


def test_check_user_file_invalid(recorded):
    user_file = user_config_file()
    user_file.parent.mkdir(parents=True)
    user_file.write_text('workstation = "bad name"\n', encoding="utf-8")
    status, report = check_json(recorded)
    assert status == 1
    findings = config_findings(report)
    assert len(findings) == 1
    assert str(user_file) in findings[0]["message"]
    assert "invalid workstation = 'bad name'" in findings[0]["message"]


def test_check_valid_files_are_well(recorded):
    (recorded / "ufstats.toml").write_text("history_limit = 5\n", encoding="utf-8")
    status, report = check_json(recorded)
    assert status == 0, report
    assert config_findings(report) == []


def test_config_problems_unreachable_base(tmp_path):
    assert config_problems(tmp_path / "missing") == []


READING_COMMANDS = [
    ["show"],
    ["history", "packing"],
    ["workers"],
    ["workers", "--client", "M"],
    ["daily"],
    ["export", "--output", "{out}/records.csv"],
    ["report", "--html", "{out}/report.html"],
]


@pytest.mark.parametrize("command", READING_COMMANDS, ids=lambda command: " ".join(command[:2]))
def test_reading_command_warns(recorded, tmp_path, command):
    base_file = recorded / "ufstats.toml"
    base_file.write_text('history_limit = "abc"\n', encoding="utf-8")
    arguments = [argument.replace("{out}", str(tmp_path)) for argument in command]
    result = CliRunner().invoke(main, [*arguments, "--base-path", str(recorded)])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert warnings == [
        f"warning: Configuration file {base_file}: invalid history_limit = 'abc': "
        "must be a whole number >= 0 (0 keeps all)"
    ]
    assert "warning" not in result.stdout


def test_reading_command_quiet_when_valid(recorded):
    (recorded / "ufstats.toml").write_text("history_limit = 5\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["show", "--base-path", str(recorded)])
    assert result.exit_code == 0, result.output
    assert result.stderr == ""

"""What `export --output` and `report --html` do with a path that is not a plain new or regular file."""

from __future__ import annotations

import os
import stat
import sys

import pytest
from click.testing import CliRunner

from ufstats import StatsManager
from ufstats.cli import main

COMMANDS = {
    "export": ["export", "--output"],
    "report": ["report", "--html"],
}


@pytest.fixture
def recorded(base_path):
    manager = StatsManager(base_path, workstation="PC-1", spool=False)
    manager.record_analysis("M", "s1", 10)
    manager.close()
    return base_path


def run(command, base_path, path):
    return CliRunner().invoke(main, [*COMMANDS[command], str(path), "--base-path", str(base_path)])


@pytest.mark.skipif(sys.platform == "win32", reason="named pipes in the file system are POSIX only")
@pytest.mark.parametrize("command", COMMANDS)
def test_output_fifo_rejected(recorded, tmp_path, command):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    result = run(command, recorded, fifo)
    assert result.exit_code == 1
    assert f"{fifo}: it exists and is a named pipe, which ufstats will not replace" in result.output
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


@pytest.mark.skipif(sys.platform == "win32", reason="named pipes in the file system are POSIX only")
@pytest.mark.parametrize("command", COMMANDS)
def test_output_link_to_fifo_rejected(recorded, tmp_path, command):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    link = tmp_path / "link"
    link.symlink_to(fifo)
    result = run(command, recorded, link)
    assert result.exit_code == 1
    assert f"{link} (a link to {fifo})" in result.output
    assert link.is_symlink()


@pytest.mark.parametrize("command", COMMANDS)
def test_output_folder_rejected(recorded, tmp_path, command):
    folder = tmp_path / "folder"
    folder.mkdir()
    result = run(command, recorded, folder)
    assert result.exit_code == 2  # click's dir_okay=False check
    assert folder.is_dir()


@pytest.mark.parametrize("command", COMMANDS)
def test_output_link_writes_target(recorded, tmp_path, command):
    target = tmp_path / "real" / "file.out"
    target.parent.mkdir()
    target.write_text("old", encoding="utf-8")
    link = tmp_path / "link.out"
    try:
        link.symlink_to(target)
    except OSError:
        pytest.skip("creating symbolic links is not allowed here")
    result = run(command, recorded, link)
    assert result.exit_code == 0, result.output
    assert link.is_symlink()
    assert os.readlink(link) == str(target)
    assert target.read_text(encoding="utf-8-sig") != "old"


@pytest.mark.parametrize("command", COMMANDS)
def test_output_dash_rejected(recorded, tmp_path, command, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run(command, recorded, "-")
    assert result.exit_code == 1
    assert "'-': writing to standard output is not supported; give a file name" in result.output
    assert not (tmp_path / "-").exists()

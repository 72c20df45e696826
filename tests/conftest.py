"""Shared fixtures: every test gets its own local state folder and base path."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def isolated_local_state(tmp_path_factory, monkeypatch):
    """Keep spools and lock files of each test in a private folder."""
    local = tmp_path_factory.mktemp("local-state")
    monkeypatch.setenv("UFSTATS_LOCAL_DIR", str(local))
    monkeypatch.delenv("UFSTATS_HOST", raising=False)
    monkeypatch.delenv("UFSTATS_BASE_PATH", raising=False)
    monkeypatch.delenv("UFSTATS_MACHINE_ID", raising=False)
    # No ufstats.toml of the person running the tests may change their settings.
    monkeypatch.setenv("XDG_CONFIG_HOME", str(local / "config"))
    monkeypatch.setenv("APPDATA", str(local / "config"))
    monkeypatch.delenv("UFSTATS_HISTORY_LIMIT", raising=False)
    monkeypatch.delenv("UFSTATS_SPOOL_DIR", raising=False)
    return local


@pytest.fixture
def base_path(tmp_path):
    """An empty 0UFulfilment folder."""
    folder = tmp_path / "0UFulfilment"
    folder.mkdir()
    return folder

"""Event ids and timestamps that records get."""

from __future__ import annotations

import re
import time
import uuid
from datetime import datetime

import pytest

from ufstats.events import new_event_id, now_timestamp


def test_event_id_is_uuid4_hex():
    for _ in range(2000):
        event_id = new_event_id()
        parsed = uuid.UUID(hex=event_id)
        assert parsed.hex == event_id
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122


def test_event_ids_differ():
    ids = {new_event_id() for _ in range(10000)}
    assert len(ids) == 10000


@pytest.mark.skipif(not hasattr(time, "tzset"), reason="time.tzset exists on POSIX only")
@pytest.mark.parametrize("zone", ["UTC", "Europe/Kyiv", "America/St_Johns", "Asia/Kathmandu"])
def test_timestamp_matches_local_zone(monkeypatch, zone):
    monkeypatch.setenv("TZ", zone)
    time.tzset()
    try:
        before = datetime.now().astimezone()
        text = now_timestamp()
        after = datetime.now().astimezone()
    finally:
        monkeypatch.undo()
        time.tzset()
    stamp = datetime.fromisoformat(text)
    assert before <= stamp <= after
    assert stamp.utcoffset() == before.utcoffset()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?[+-]\d\d:\d\d", text)

"""Bulk generation of shard histories for the benchmark.

Lines are encoded with `ufstats.events.encode_line` and written straight into
the shard files, so a million events take seconds instead of a million
record calls. The events look like real ones: both kinds, 20 clients,
30 workers, metadata with a packing duration, timestamps with a UTC offset
spread over about three years, in order within each shard.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

import msgspec

from ufstats.events import FORMAT_VERSION, Event, encode_line
from ufstats.layout import Layout

CLIENTS = [f"CL{number:03d}" for number in range(1, 21)]
WORKERS = [f"worker-{number:02d}" for number in range(1, 31)]
HISTORY_SPAN = timedelta(days=3 * 365)
# Europe/Kyiv in summer; a fixed offset keeps generation fast and the instants exact.
UTC_OFFSET = timezone(timedelta(hours=3))
FIRST_INSTANT = datetime(2023, 1, 2, 8, 0, tzinfo=UTC_OFFSET)
WRITE_BLOCK_EVENTS = 20_000


def shard_name(index: int) -> str:
    """Return the workstation id of generated shard number `index`."""
    return f"bench-ws{index + 1:02d}"


def _event(rng: random.Random, workstation: str, machine: str, instant: datetime, number: int) -> Event:
    client = CLIENTS[number % len(CLIENTS)]
    session = f"{client}-{workstation}-{number}"
    orders = rng.randint(1, 80)
    if number % 2:
        metadata = {"duration_seconds": round(rng.uniform(60, 3600), 1), "packing_list": f"PL-{number}"}
        return Event(
            format=FORMAT_VERSION,
            id=f"{rng.getrandbits(128):032x}",
            type="packing",
            workstation=workstation,
            machine=machine,
            timestamp=instant.isoformat(),
            client_id=client,
            session_id=session,
            worker_id=WORKERS[number % len(WORKERS)],
            orders_count=orders,
            items_count=orders * rng.randint(1, 4),
            metadata=msgspec.Raw(msgspec.json.encode(metadata)),
        )
    metadata = {"fulfillable_orders": orders, "courier": "DHL" if number % 3 else "PostOne"}
    return Event(
        format=FORMAT_VERSION,
        id=f"{rng.getrandbits(128):032x}",
        type="analysis",
        workstation=workstation,
        machine=machine,
        timestamp=instant.isoformat(),
        client_id=client,
        session_id=session,
        orders_count=orders,
        metadata=msgspec.Raw(msgspec.json.encode(metadata)),
    )


def generate_history(base_path: Path, events: int, shards: int, machine: str, seed: int = 1) -> int:
    """Write `events` events spread evenly over `shards` new shard files.

    Every line names `machine` as its writer, so a process with that machine
    id (`UFSTATS_MACHINE_ID`) may append to the shards. Returns the number
    of bytes written. Existing shards of the same names are replaced.
    """
    layout = Layout.for_base_path(base_path)
    layout.shards_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    written = 0
    for index in range(shards):
        workstation = shard_name(index)
        count = events // shards + (1 if index < events % shards else 0)
        step = HISTORY_SPAN / max(count, 1)
        # Shards are offset by a few seconds so that instants rarely tie.
        instant = FIRST_INSTANT + timedelta(seconds=index * 7)
        with open(layout.shard_path(workstation), "wb") as handle:
            block: list[bytes] = []
            for number in range(count):
                block.append(encode_line(_event(rng, workstation, machine, instant, number)))
                instant += step
                if len(block) == WRITE_BLOCK_EVENTS:
                    written += handle.write(b"".join(block))
                    block.clear()
            written += handle.write(b"".join(block))
    return written

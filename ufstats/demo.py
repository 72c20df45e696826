"""`ufstats demo`: several simulated workstations record a day of work at once.

Each workstation runs in its own process and uses the real `StatsManager`,
so the demo exercises the same shard writing, merge and reading code as the
warehouse PCs.
"""

from __future__ import annotations

import multiprocessing
import random
from datetime import datetime, timedelta
from pathlib import Path

from .manager import StatsManager

CLIENTS = ("M", "A", "B", "K")
WORKERS = (("001", "Olena"), ("002", "Andrii"), ("003", "Iryna"), ("004", "Bohdan"))


def simulate_workstation(base_path: str, index: int, sessions: int, seed: int) -> tuple[int, int, int]:
    """Record one workstation's day; return (orders analysed, orders packed, sessions)."""
    rng = random.Random(seed * 1000 + index)
    workstation = f"DEMO-PC-{index + 1:02d}"
    manager = StatsManager(base_path, workstation=workstation, spool=False)
    analysed = packed = 0
    day = datetime.now().replace(hour=8, minute=0, second=0, microsecond=0)
    for number in range(1, sessions + 1):
        client = rng.choice(CLIENTS)
        session_id = f"{day:%Y-%m-%d}_{workstation}_{number}"
        orders = rng.randint(20, 300)
        manager.record_analysis(
            client, session_id, orders,
            metadata={"fulfillable_orders": orders - rng.randint(0, 10), "pc_name": workstation},
        )
        analysed += orders
        worker_id, worker_name = rng.choice(WORKERS)
        packed_orders = orders - rng.randint(0, 5)
        duration = rng.randint(600, 7200)
        started = day + timedelta(minutes=rng.randint(0, 480))
        manager.record_packing(
            client, session_id, worker_id, packed_orders, packed_orders * rng.randint(1, 4),
            metadata={
                "duration_seconds": duration,
                "started_at": started.isoformat(),
                "completed_at": (started + timedelta(seconds=duration)).isoformat(),
                "worker_name": worker_name,
                "pc_name": workstation,
            },
        )
        packed += packed_orders
    manager.close()
    return analysed, packed, sessions


def run_demo(folder: Path, workstations: int, sessions: int, seed: int) -> tuple[int, int, int]:
    """Run the workstations in parallel processes; return the expected totals."""
    context = multiprocessing.get_context("spawn")
    jobs = [(str(folder), index, sessions, seed) for index in range(workstations)]
    with context.Pool(processes=min(workstations, 8)) as pool:
        results = pool.starmap(simulate_workstation, jobs)
    return (
        sum(r[0] for r in results),
        sum(r[1] for r in results),
        sum(r[2] for r in results),
    )

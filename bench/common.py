"""What the benches share: fresh databases, PostgreSQL set-up, calld's ingest as the daemon wires it, percentiles."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from calld.adapters.port import SwitchPort
from calld.config import Config, DatabaseConfig, IngestConfig
from calld.daemon import Daemon
from calld.domain.events import SwitchEvent
from calld.ingest.switch_ingest import Outcome
from calld.storage.database import Database
from calld.storage.models import Base

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/calld_bench"


async def ensure_pg(url: str) -> None:
    """Create the PostgreSQL database ``url`` names if it does not exist (no-op for SQLite)."""
    if not url.startswith("postgresql"):
        return
    from tests.support import ensure_pg_database

    await ensure_pg_database(url)


async def fresh(url: str, pool_size: int = 5) -> Database:
    """A migrated database at ``url`` with every calld table emptied."""
    await ensure_pg(url)
    db = Database(url, pool_size=pool_size)
    await db.migrate()
    async with db.write() as session:
        if db.is_sqlite:
            for table in reversed(Base.metadata.sorted_tables):
                await session.execute(table.delete())
            # Deleting calls fired the rollup's and the running total's triggers (negative
            # counts): empty them last.
            await session.execute(sa.text("DELETE FROM call_stats_buckets"))
            await session.execute(sa.text("DELETE FROM call_totals"))
        else:
            tables = ", ".join(t.name for t in reversed(Base.metadata.sorted_tables))
            await session.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    return db


def daemon_ingest(url: str, switch: SwitchPort) -> Daemon:
    """A ``Daemon`` for ``switch`` and the database at ``url``, not started: its ``ingest`` and
    ``ingest_queue`` are the daemon's own (every hook a stored call event runs in production:
    outbound webhook outbox, live updates, metrics), without the HTTP server or a spill file.
    Close ``daemon.db`` when done."""
    config = Config(database=DatabaseConfig(url=url, pool_size=5), ingest=IngestConfig(spill_path=""))
    return Daemon(config, switch=switch)


@dataclass
class Run:
    """One timed run: how long, how many switch messages it took in, how many call events it stored."""

    seconds: float
    messages: int
    stored: int = 0


def line(name: str, run: Run, base: Run | None) -> str:
    """A table row: time, messages/s, call events stored/s, ratio baseline time / time."""
    ratio = f"{base.seconds / run.seconds:6.3f}" if base is not None else " 1.000"
    stored = f"{run.stored / run.seconds:10,.0f}" if run.stored else f"{'-':>10}"
    return f"{name:<26} {run.seconds * 1000:9.1f} ms {run.messages / run.seconds:12,.0f} {stored} {ratio}"


async def adapter_only(adapter: SwitchPort, call_events: int) -> float:
    """Seconds from ``adapter.run`` until it has handed over ``call_events`` call events (to a sink
    that only counts them): the switch side of ingest."""
    done = asyncio.Event()
    handled = 0

    async def sink(event: SwitchEvent) -> None:
        nonlocal handled
        handled += 1
        if handled == call_events:
            done.set()

    started = time.perf_counter()
    task = asyncio.create_task(adapter.run(sink))
    await asyncio.wait_for(done.wait(), 600)
    seconds = time.perf_counter() - started
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return seconds


async def through_daemon(
    url: str,
    adapter: SwitchPort,
    call_events: int,
    on_commit: Callable[[Sequence[SwitchEvent]], None] = lambda _events: None,
) -> tuple[float, int]:
    """(seconds, stored) from ``adapter.run`` into the daemon's own ingest (``daemon_ingest``) on
    the emptied database at ``url`` until ``call_events`` call events are committed; ``on_commit``
    is told of each committed batch."""
    await (await fresh(url)).close()
    daemon = daemon_ingest(url, adapter)
    ingest, queue = daemon.ingest, daemon.ingest_queue
    assert ingest is not None and ingest.on_committed is not None and queue is not None
    count_batch = ingest.on_committed
    committed = 0
    all_committed = asyncio.Event()

    def on_committed(switch: str, events: Sequence[SwitchEvent], outcomes: Sequence[Outcome]) -> None:
        nonlocal committed
        count_batch(switch, events, outcomes)  # the daemon's metrics, as in production
        on_commit(events)
        committed += len(events)
        if committed >= call_events:
            all_committed.set()

    ingest.on_committed = on_committed
    try:
        started = time.perf_counter()
        task = asyncio.create_task(adapter.run(queue))
        await asyncio.wait_for(all_committed.wait(), 600)
        seconds = time.perf_counter() - started
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await queue.close()
    finally:
        await daemon.db.close()
    if ingest.stored != call_events:
        raise RuntimeError(f"stored {ingest.stored} of {call_events} call events ({ingest.refused} refused)")
    return seconds, ingest.stored


def percentile(values: list[float], pct: float) -> float:
    """The ``pct`` percentile (nearest rank) of ``values``."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]

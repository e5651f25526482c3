"""What the benches share: fresh databases, PostgreSQL set-up, calld's ingest as the daemon wires it, percentiles."""

from __future__ import annotations

import sqlalchemy as sa

from calld.adapters.port import SwitchPort
from calld.config import Config, DatabaseConfig, IngestConfig
from calld.daemon import Daemon
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
            # Deleting calls fired the rollup's triggers (negative buckets): empty it last.
            await session.execute(sa.text("DELETE FROM call_stats_buckets"))
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


def percentile(values: list[float], pct: float) -> float:
    """The ``pct`` percentile (nearest rank) of ``values``."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]

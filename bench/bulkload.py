"""Bulk loader: writes N realistic call logs straight into a migrated calld database.

``calld seed`` goes through the ORM and the call store (a few hundred calls/s); benches need
millions, so this writes rows directly: ``COPY`` on PostgreSQL, ``executemany`` in one
transaction on SQLite. Secondary indexes and triggers on ``call_logs`` are dropped while loading
and rebuilt afterwards (much faster than maintaining them row by row), then derived tables
(the statistics rollup and the running total of calls, if the schema has them) are rebuilt and
the tables analysed.

Rows: one year of calls ending now, evenly spread with jitter; 55 % inbound; 70 % answered and
ended (ring 2-20 s, exponential talk time, mean 3 min), the rest missed, no answer, busy, cancelled
or failed; calls of the last five minutes are still live; 40 % belong to one of ``clients`` clients.
No call events are loaded (the statistics and list queries do not read them).

Usage: .venv/bin/python bench/bulkload.py URL COUNT
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg
from sqlalchemy.engine import make_url

COLUMNS = (
    "id", "direction", "call_type", "status", "caller_number", "recipient_number", "sip_call_id",
    "client_id", "sip_configuration_id", "switch_name", "switch_call_ref", "started_at", "ringing_at",
    "answered_at", "ended_at", "held_since", "last_event_at", "duration_seconds", "ring_seconds",
    "hold_seconds", "recording", "transfer_target", "call_quality_score", "notes", "seeded",
    "created_at", "updated_at",
)  # fmt: skip
OUTCOMES = (
    ("ended",) * 70 + ("missed",) * 12 + ("no_answer",) * 6 + ("busy",) * 5 + ("cancelled",) * 4 + ("failed",) * 3
)
SPAN = timedelta(days=365)
LIVE = timedelta(minutes=5)
CHUNK = 50_000


def client_ids(clients: int, seed: int = 7) -> list[uuid.UUID]:
    """The clients' ids, the same for the same seed (so a bench can name one without asking)."""
    rnd = random.Random(seed)
    return [uuid.UUID(int=rnd.getrandbits(128), version=4) for _ in range(clients)]


def rows(count: int, now: datetime, clients: list[uuid.UUID], seed: int = 1) -> Iterator[tuple[Any, ...]]:
    """``count`` call rows in started_at order, the last one a few seconds before ``now``."""
    rnd = random.Random(seed)
    first = now - SPAN
    step = (SPAN - timedelta(seconds=10)).total_seconds() / count
    live_from = now - LIVE
    for i in range(count):
        started = first + timedelta(seconds=(i + rnd.random()) * step)
        inbound = rnd.random() < 0.55
        ext = f"1{rnd.randrange(100):03d}"
        far = f"+1415555{rnd.randrange(10000):04d}"
        caller, recipient = (far, ext) if inbound else (ext, far)
        client = clients[rnd.randrange(len(clients))] if rnd.random() < 0.4 else None
        ring = 2 + rnd.random() * 18
        ringing_at = started + timedelta(seconds=1)
        answered_at = ended_at = duration = ring_seconds = None
        if started >= live_from:
            status = "answered"
            answered_at = started + timedelta(seconds=ring)
            ring_seconds = ring
            last = answered_at
        else:
            status = OUTCOMES[rnd.randrange(len(OUTCOMES))]
            if status == "ended":
                answered_at = started + timedelta(seconds=ring)
                duration = rnd.expovariate(1 / 180)
                ended_at = answered_at + timedelta(seconds=duration)
                ring_seconds = ring
            elif status == "failed":
                ringing_at = None
                ended_at = started + timedelta(seconds=1)
            else:
                ended_at = started + timedelta(seconds=ring)
            last = ended_at
        call_id = uuid.UUID(int=rnd.getrandbits(128), version=4)
        yield (
            call_id, "inbound" if inbound else "outbound", "voice", status, caller, recipient, None,
            client, None, "freeswitch", str(call_id), started, ringing_at,
            answered_at, ended_at, None, last, duration, ring_seconds,
            0.0, False, None, None, "", False,
            started, last,
        )  # fmt: skip


def _sqlite_value(value: Any) -> Any:
    # As SQLAlchemy stores them on SQLite: naive UTC text, 32-hex uuids, 0/1 booleans.
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, uuid.UUID):
        return value.hex
    return value


def clients_rows(clients: list[uuid.UUID], now: datetime) -> Iterator[tuple[Any, ...]]:
    for n, client_id in enumerate(clients):
        yield (client_id, f"Client {n}", None, None, "", False, now, now)


CLIENT_COLUMNS = ("id", "name", "email", "company", "notes", "seeded", "created_at", "updated_at")


def load_sqlite(path: str, count: int, clients: list[uuid.UUID], now: datetime) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-1000000")
    saved = conn.execute(
        "SELECT type, name, sql FROM sqlite_master WHERE tbl_name = 'call_logs' AND type IN ('index', 'trigger') "
        "AND sql IS NOT NULL"
    ).fetchall()
    for kind, name, _ in saved:
        conn.execute(f'DROP {kind.upper()} "{name}"')
    conn.executemany(
        f"INSERT INTO clients ({', '.join(CLIENT_COLUMNS)}) VALUES ({', '.join('?' * len(CLIENT_COLUMNS))})",
        ([_sqlite_value(v) for v in row] for row in clients_rows(clients, now)),
    )
    insert = f"INSERT INTO call_logs ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
    conn.executemany(insert, ([_sqlite_value(v) for v in row] for row in rows(count, now, clients)))
    conn.commit()
    for _, _, sql in saved:
        conn.execute(sql)
    _rebuild_rollup_sqlite(conn)
    conn.execute("ANALYZE")
    conn.commit()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def _rebuild_rollup_sqlite(conn: sqlite3.Connection) -> None:
    names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "call_stats_buckets" in names:
        from calld.storage.rollup import REBUILD_SQL

        conn.execute("DELETE FROM call_stats_buckets")
        conn.execute(REBUILD_SQL["sqlite"])
    if "call_totals" in names:
        from calld.storage.rollup import REBUILD_TOTAL_SQL

        conn.execute(REBUILD_TOTAL_SQL["sqlite"])
    if "call_stats_groups" in names:
        from calld.storage.rollup import groups_rebuild_sql

        conn.execute("DELETE FROM call_stats_groups")
        for statement in groups_rebuild_sql("sqlite"):
            conn.execute(statement)
    if "call_stats_hours" in names:
        from calld.storage.rollup import hours_rebuild_sql

        conn.execute("DELETE FROM call_stats_hours")
        conn.execute(hours_rebuild_sql())
    conn.commit()


async def load_postgres(url: str, count: int, clients: list[uuid.UUID], now: datetime) -> None:
    conn = await asyncpg.connect(url)
    try:
        saved = await conn.fetch(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.tablename = 'call_logs' "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)"
        )
        for record in saved:
            await conn.execute(f'DROP INDEX "{record["indexname"]}"')
        await conn.execute("ALTER TABLE call_logs DISABLE TRIGGER USER")
        await conn.copy_records_to_table("clients", records=list(clients_rows(clients, now)), columns=CLIENT_COLUMNS)
        batch: list[tuple[Any, ...]] = []
        for row in rows(count, now, clients):
            batch.append(row)
            if len(batch) == CHUNK:
                await conn.copy_records_to_table("call_logs", records=batch, columns=COLUMNS)
                batch = []
        if batch:
            await conn.copy_records_to_table("call_logs", records=batch, columns=COLUMNS)
        await conn.execute("ALTER TABLE call_logs ENABLE TRIGGER USER")
        await conn.execute("SET maintenance_work_mem = '1GB'")
        for record in saved:
            await conn.execute(record["indexdef"])
        if await conn.fetchval("SELECT to_regclass('call_stats_buckets') IS NOT NULL"):
            from calld.storage.rollup import REBUILD_SQL

            await conn.execute("DELETE FROM call_stats_buckets")
            await conn.execute(REBUILD_SQL["postgresql"])
        if await conn.fetchval("SELECT to_regclass('call_totals') IS NOT NULL"):
            from calld.storage.rollup import REBUILD_TOTAL_SQL

            await conn.execute(REBUILD_TOTAL_SQL["postgresql"])
        if await conn.fetchval("SELECT to_regclass('call_stats_groups') IS NOT NULL"):
            from calld.storage.rollup import groups_rebuild_sql

            await conn.execute("DELETE FROM call_stats_groups")
            for statement in groups_rebuild_sql("postgresql"):
                await conn.execute(statement)
        if await conn.fetchval("SELECT to_regclass('call_stats_hours') IS NOT NULL"):
            from calld.storage.rollup import hours_rebuild_sql

            await conn.execute("DELETE FROM call_stats_hours")
            await conn.execute(hours_rebuild_sql())
            await conn.execute("VACUUM ANALYZE call_stats_hours")
        await conn.execute("VACUUM ANALYZE call_logs")
        if await conn.fetchval("SELECT to_regclass('call_stats_groups') IS NOT NULL"):
            # Filled in one go: without statistics the planner scans the whole table for a range.
            await conn.execute("VACUUM ANALYZE call_stats_groups")
        await conn.execute("VACUUM ANALYZE clients")
    finally:
        await conn.close()


async def empty_database(url: str) -> None:
    """Migrate ``url`` and empty every table calld has."""
    from bench.common import fresh

    db = await fresh(url)
    await db.close()


async def load(url: str, count: int, clients: int = 10_000, now: datetime | None = None) -> list[uuid.UUID]:
    """Make ``url`` a migrated database holding exactly ``count`` calls; the clients' ids."""
    now = now or datetime.now(UTC)
    ids = client_ids(clients)
    await empty_database(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        await asyncio.to_thread(load_sqlite, str(parsed.database), count, ids, now)
    else:
        await load_postgres(url, count, ids, now)
    return ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url")
    parser.add_argument("count", type=int)
    args = parser.parse_args()
    started = time.perf_counter()
    asyncio.run(load(args.url, args.count))
    print(f"{args.count:,} calls loaded in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()

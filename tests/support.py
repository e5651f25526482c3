"""Helpers shared by tests: a settable clock and database set-up for SQLite and PostgreSQL."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import asyncpg
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from calld.daemon import Daemon
from calld.storage.database import Database
from calld.storage.models import Base

PG_URL = os.environ.get("CALLD_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/calld_test")


class SettableClock:
    """A clock the test moves by hand, injected where calld takes a clock."""

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or datetime(2026, 11, 24, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


async def ensure_pg_database(url: str = PG_URL) -> None:
    """Create the PostgreSQL test database if it does not exist (CI starts from an empty server)."""
    parsed = make_url(url)
    admin = parsed.set(database="postgres").render_as_string(hide_password=False)
    try:
        conn = await asyncpg.connect(admin.replace("postgresql+asyncpg://", "postgresql://"))
    except (OSError, asyncpg.PostgresError) as exc:
        raise RuntimeError(
            f"PostgreSQL is required for the test suite and is not reachable at {admin}: {exc}. "
            "Start it (see .ci/run) or point CALLD_TEST_PG_URL at one."
        ) from exc
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", parsed.database)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{parsed.database}"')
    finally:
        await conn.close()


async def fresh_database(kind: str, tmp_path: Path) -> Database:
    """A migrated, empty database of ``kind`` ("sqlite" file or "postgres")."""
    if kind == "sqlite":
        db = Database(f"sqlite:///{tmp_path / 'calld-test.db'}")
        await db.migrate()
        return db
    db = Database(PG_URL, pool_size=5)
    await db.migrate()
    tables = ", ".join(t.name for t in reversed(Base.metadata.sorted_tables))
    async with db.write() as session:
        await session.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    return db


def api_session(daemon: Daemon) -> aiohttp.ClientSession:
    """An HTTP client for a running in-process ``Daemon``'s REST API (close it after use).

    Every test that talks to a live daemon over HTTP gets its client here, so what the API
    requires of every caller (credentials, once it has them) is set up in one place.
    """
    return aiohttp.ClientSession(base_url=f"http://127.0.0.1:{daemon.port}")

"""PostgreSQL connections the server drops (a restart, an idle timeout, pg_terminate_backend) are
replaced without a failed request, reads and writes alike, although calld does not ping a
connection before each use."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from calld.storage.database import Database
from tests.support import PG_URL, AppClient

POOLED = 3


async def _pooled_backend_pids(db: Database) -> set[int]:
    """The server pids of ``POOLED`` connections checked out at once, then back in the pool."""
    pids: set[int] = set()
    ready = asyncio.Event()

    async def hold() -> None:
        async with db.engine.connect() as conn:
            pids.add(int((await conn.execute(sa.text("SELECT pg_backend_pid()"))).scalar_one()))
            if len(pids) == POOLED:
                ready.set()
            await ready.wait()

    await asyncio.gather(*(hold() for _ in range(POOLED)))
    return pids


async def _terminate(pids: set[int]) -> None:
    """Drop those backends from the server side and wait until they are gone."""
    url = make_url(PG_URL)
    admin = await asyncpg.connect(
        host=url.host, port=url.port, user=url.username, password=url.password, database=url.database
    )
    try:
        await admin.execute("SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid", list(pids))
        for _ in range(200):
            alive = await admin.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1::int[])", list(pids))
            if alive == 0:
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError("the backends were not terminated")
    finally:
        await admin.close()
    await asyncio.sleep(0.05)  # the client side reads the server's goodbye


async def test_requests_after_the_server_dropped_pooled_connections_succeed(api: AppClient, db: Database) -> None:
    if db.is_sqlite:
        pytest.skip("PostgreSQL only: SQLite has no server to drop connections")
    created = await api.post(
        "/api/call-logs/", json={"direction": "inbound", "caller_number": "+14155550100", "recipient_number": "1001"}
    )
    assert created.status == 201
    call_id = (await created.json())["id"]

    await _terminate(await _pooled_backend_pids(db))
    detail = await api.get(f"/api/call-logs/{call_id}/")  # auth and the page: the read path
    assert detail.status == 200, await detail.text()
    assert (await detail.json())["id"] == call_id

    await _terminate(await _pooled_backend_pids(db))
    patched = await api.patch(f"/api/call-logs/{call_id}/", json={"notes": "still here"})  # a write transaction
    assert patched.status == 200, await patched.text()

    await _terminate(await _pooled_backend_pids(db))
    listed = await api.get("/api/call-logs/?limit=5")
    assert listed.status == 200, await listed.text()
    assert [row["id"] for row in (await listed.json())["results"]] == [call_id]


async def test_a_write_transaction_after_the_server_dropped_pooled_connections_succeeds(db: Database) -> None:
    if db.is_sqlite:
        pytest.skip("PostgreSQL only")
    await _terminate(await _pooled_backend_pids(db))
    async with db.write() as session:  # no read before it to notice the drop
        await session.execute(sa.text("SELECT 1"))


async def test_a_read_after_the_server_dropped_pooled_connections_succeeds(db: Database) -> None:
    if db.is_sqlite:
        pytest.skip("PostgreSQL only")
    await _terminate(await _pooled_backend_pids(db))

    def backend_pid(conn: sa.Connection) -> int:
        return int(conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())

    assert await db.query(backend_pid) > 0

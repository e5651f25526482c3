"""The running total of calls (migration 0005) on both databases: equal to ``count(*)`` after API
creates and deletes, the switch ingest's batches, rolled-back work, a bulk load and a migration
from 0004 with calls already stored; the unfiltered list reads it, a filtered list still counts."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from bench.bulkload import load
from calld.domain.call import NewCall
from calld.domain.call_filter import CallFilter
from calld.domain.vocabulary import CallDirection, EventSource
from calld.ingest.switch_ingest import SwitchIngest
from calld.storage.call_queries import call_page
from calld.storage.calls import CallStore
from calld.storage.database import Database, alembic_config
from calld.storage.models import CallLog, CallTotal
from tests.fakes.esl_capture import mapped
from tests.support import PG_URL, AppClient, SettableClock, insert_call_sql, rebuilt_rollup, rollup_calls, rollup_rows


async def _counts(db: Database) -> tuple[int, int | None]:
    """``count(*)`` of the calls, and the running total (None when its row is missing)."""
    async with db.read() as s:
        counted = (await s.execute(sa.select(sa.func.count()).select_from(CallLog))).scalar_one()
        total = (await s.execute(sa.select(CallTotal.calls).where(CallTotal.id == 1))).scalar_one_or_none()
    return counted, total


async def _listed_count(api: AppClient, query: str = "") -> int:
    response = await api.get(f"/api/call-logs/?limit=5{query}")
    assert response.status == 200
    count: int = (await response.json())["count"]
    return count


async def test_api_creates_and_deletes_keep_the_total(db: Database, api: AppClient) -> None:
    ids = []
    for n in range(7):
        response = await api.post(
            "/api/call-logs/",
            json={"direction": "inbound" if n % 2 else "outbound", "caller_number": "+14155550100",
                  "recipient_number": "1001"},
        )  # fmt: skip
        assert response.status == 201
        ids.append((await response.json())["id"])
    assert await _counts(db) == (7, 7)
    assert await _listed_count(api) == 7
    for call_id in ids[:3]:
        assert (await api.delete(f"/api/call-logs/{call_id}/")).status == 204
    assert await _counts(db) == (4, 4)
    assert await _listed_count(api) == 4
    # A filtered list counts its matches, as before.
    assert await _listed_count(api, "&direction=inbound") == sum(1 for n in range(3, 7) if n % 2)


async def test_calls_taken_through_their_lifecycle_keep_the_total(db: Database, clock: SettableClock) -> None:
    made = await rollup_calls(db, clock, 25)
    assert await _counts(db) == (25, 25)
    async with db.write() as s:  # one statement deleting several calls; updates change nothing
        await s.execute(sa.delete(CallLog).where(CallLog.id.in_([c.id for c in made[:6]])))
        await s.execute(sa.update(CallLog).where(CallLog.id == made[7].id).values(notes="x"))
    assert await _counts(db) == (19, 19)
    total, _ = await db.query(call_page, CallFilter(), ordering="-started_at", limit=5, offset=0)
    assert total == 19
    flt = CallFilter(directions=(CallDirection.OUTBOUND,))
    filtered, rows = await db.query(call_page, flt, ordering="-started_at", limit=50, offset=0)
    async with db.read() as s:
        outbound = (
            await s.execute(
                sa.select(sa.func.count()).select_from(CallLog).where(CallLog.direction == CallDirection.OUTBOUND)
            )
        ).scalar_one()
    assert filtered == outbound == len(rows) < 19


async def test_switch_ingest_batches_keep_the_total(db: Database, clock: SettableClock) -> None:
    """200 real calls of the load capture in batches of 37: new calls are multi-row inserts."""
    events = mapped("j_load.json")
    ingest = SwitchIngest(db, CallStore(clock=clock), "freeswitch")
    for start in range(0, len(events), 37):
        await ingest.store_batch(events[start : start + 37])
    assert await _counts(db) == (200, 200)
    assert await rollup_rows(db) == await rebuilt_rollup(db)


async def test_rolled_back_work_leaves_the_total(db: Database, clock: SettableClock) -> None:
    store = CallStore(clock=clock)
    new = NewCall(CallDirection.INBOUND, "+14155550100", "1001")
    async with db.write() as s:
        await store.create(s, new, EventSource.API)
    try:
        async with db.write() as s:
            await store.create(s, new, EventSource.API)
            raise RuntimeError("abandon the transaction")
    except RuntimeError:
        pass
    async with db.write() as s:
        kept = await store.create(s, new, EventSource.API)
        savepoint = await s.begin_nested()
        await store.create(s, new, EventSource.API)
        await s.execute(sa.delete(CallLog).where(CallLog.id == kept.id))
        await savepoint.rollback()
        await store.create(s, new, EventSource.API)
    assert await _counts(db) == (3, 3)


async def test_postgresql_writes_the_total_once_per_transaction(db: Database) -> None:
    """Many inserted calls (an executemany: one execution per row) make one row version, at commit."""
    if db.is_sqlite:
        pytest.skip("PostgreSQL only: SQLite's row triggers update a cached page, no row versions")
    started = SettableClock().now
    rows = [
        {"direction": "inbound", "call_type": "voice", "status": "initiated", "caller_number": "+14155550100",
         "recipient_number": "1001", "started_at": started + timedelta(seconds=n),
         "last_event_at": started + timedelta(seconds=n), "switch_call_ref": f"r{n}"}
        for n in range(41)
    ]  # fmt: skip
    written = sa.text("SELECT n_tup_ins + n_tup_upd FROM pg_stat_xact_user_tables WHERE relname = 'call_totals'")
    async with db.write() as s:
        await s.execute(sa.insert(CallLog), rows[:40])
        await s.execute(sa.delete(CallLog).where(CallLog.switch_call_ref.in_(["r1", "r2"])))
        assert (await s.execute(written)).scalar_one() == 0  # nothing yet: applied at commit
        await s.execute(sa.text("SET CONSTRAINTS ALL IMMEDIATE"))  # what commit does, observable
        assert (await s.execute(written)).scalar_one() == 1
        await s.execute(sa.insert(CallLog), rows[40:])  # queues the commit's firing again
    assert await _counts(db) == (39, 39)


async def test_bulk_load_keeps_the_total(db: Database, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bulk.db'}" if db.is_sqlite else PG_URL
    await load(url, 300, clients=10)
    loaded = Database(url)
    try:
        assert await _counts(loaded) == (300, 300)
        async with loaded.write() as s:  # the triggers are back after the load
            await s.execute(sa.delete(CallLog).where(CallLog.id.in_(sa.select(CallLog.id).limit(4))))
        assert await _counts(loaded) == (296, 296)
    finally:
        await loaded.close()


def _to(connection: sa.Connection, revision: str, upgrade: bool) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    (command.upgrade if upgrade else command.downgrade)(cfg, revision)


async def test_migration_from_0004_backfills_the_total(db: Database, clock: SettableClock) -> None:
    async with db.engine.begin() as conn:
        await conn.run_sync(_to, "0004", False)
        assert not await conn.run_sync(lambda c: sa.inspect(c).has_table("call_totals"))
    # Stored by 0004's schema (the rollup only), in its SQL: today's models name columns it lacks.
    made = [await insert_call_sql(db, clock.now + timedelta(minutes=n)) for n in range(12)]
    async with db.write() as s:
        await s.execute(sa.delete(CallLog).where(CallLog.id == made[0]))
    async with db.engine.begin() as conn:
        await conn.run_sync(_to, "head", True)
    assert await _counts(db) == (11, 11)
    async with db.write() as s:
        await CallStore(clock=clock).create(s, NewCall(CallDirection.OUTBOUND, "1001", "+14155550100"), EventSource.API)
    assert await _counts(db) == (12, 12)


async def test_downgrade_removes_the_total_and_its_triggers(db: Database, clock: SettableClock) -> None:
    await rollup_calls(db, clock, 3)
    async with db.engine.begin() as conn:
        await conn.run_sync(_to, "0004", False)
    await insert_call_sql(db)  # no trigger left writing to a missing table
    async with db.engine.begin() as conn:
        await conn.run_sync(_to, "head", True)
    assert await _counts(db) == (4, 4)

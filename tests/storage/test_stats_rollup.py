"""The statistics rollup on both databases: kept right by the triggers through inserts, status
changes and deletes, and statistics over it equal to an aggregate over every call."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from calld.ingest.switch_ingest import SwitchIngest
from calld.storage.call_queries import _in_range, _raw_statistics, call_statistics
from calld.storage.calls import CallStore
from calld.storage.database import Database
from calld.storage.models import CallLog
from calld.storage.rollup import covered
from tests.fakes.esl_capture import mapped
from tests.support import SettableClock, rebuilt_rollup, rollup_calls, rollup_rows


async def test_triggers_keep_the_rollup_equal_to_a_rebuild(db: Database, clock: SettableClock) -> None:
    made = await rollup_calls(db, clock, 40)
    assert await rollup_rows(db) == await rebuilt_rollup(db)
    async with db.write() as s:  # deletes subtract, moving a call's start moves it between buckets
        await s.execute(sa.delete(CallLog).where(CallLog.id.in_([c.id for c in made[:5]])))
        await s.execute(
            sa.update(CallLog)
            .where(CallLog.id == made[6].id)
            .values(started_at=made[6].started_at - timedelta(hours=3))
        )
    assert await rollup_rows(db) == await rebuilt_rollup(db)


async def test_statistics_over_the_rollup_equal_an_aggregate_over_every_call(
    db: Database, clock: SettableClock
) -> None:
    clock.now = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)
    await rollup_calls(db, clock, 30)
    base = datetime(2026, 11, 23, tzinfo=UTC)
    ranges = [
        (base, base + timedelta(days=3)),  # whole buckets
        (base + timedelta(minutes=7, seconds=0.5), base + timedelta(days=1, minutes=52)),  # ragged ends
        (base + timedelta(hours=5, minutes=1), base + timedelta(hours=5, minutes=10)),  # inside one bucket
    ]
    for start, end in ranges:
        got = await db.query(call_statistics, start, end)
        async with db.read() as s:
            total, answered, missed, inbound, outbound, dsum, dcount = (
                await s.execute(_raw_statistics(_in_range(start, end)))
            ).one()
        assert (got.total_calls, got.answered_calls, got.missed_calls, got.inbound_calls, got.outbound_calls) == (
            total,
            answered,
            missed,
            inbound,
            outbound,
        )
        assert got.average_duration_seconds == (round(float(dsum) / dcount, 2) if dcount else 0.0)


def test_covered_buckets_are_whole_quarter_hours_inside_the_range() -> None:
    t = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    assert covered(t, t + timedelta(minutes=14)) is None
    first, last = covered(t + timedelta(microseconds=1), t + timedelta(minutes=46)) or (0, 0)
    assert (datetime.fromtimestamp(first, UTC), datetime.fromtimestamp(last, UTC)) == (
        t + timedelta(minutes=15),
        t + timedelta(minutes=45),
    )
    assert covered(t, t + timedelta(minutes=15)) == (int(t.timestamp()), int(t.timestamp()) + 900)


async def test_switch_ingest_batches_keep_the_rollup_equal_to_a_rebuild(db: Database, clock: SettableClock) -> None:
    """The ingest's multi-row writes (calls inserted already ended, others updated across batches)
    fire the same triggers: 200 real calls of the load capture in batches of 37."""
    events = mapped("j_load.json")
    ingest = SwitchIngest(db, CallStore(clock=clock), "freeswitch")
    for start in range(0, len(events), 37):
        await ingest.store_batch(events[start : start + 37])
    assert ingest.stored == len(events)
    rollup = await rollup_rows(db)
    assert rollup == await rebuilt_rollup(db)
    assert sum(bucket[0] for bucket in rollup.values()) == 200

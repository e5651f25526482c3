"""Fencing on PostgreSQL: an ingest transaction writes only while its epoch is the PBX's newest."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from calld.ingest.switch_ingest import BatchedIngest, SwitchIngest
from calld.storage.calls import CallStore
from calld.storage.cluster import NotLeader, check_fence
from calld.storage.database import Database
from calld.storage.models import CallEvent, PbxLeader
from tests.fakes.esl_capture import mapped


async def elect(db: Database, epoch: int, holder: str) -> None:
    async with db.write() as session:
        await session.merge(PbxLeader(pbx="freeswitch", epoch=epoch, holder=holder, elected_at=sa.func.now()))


def fenced_at(epoch: int) -> Callable[[Session], None]:
    def fence(session: Session) -> None:
        check_fence(session, "freeswitch", epoch)

    return fence


async def stored(db: Database) -> int:
    async with db.read() as session:
        return int((await session.execute(sa.select(sa.func.count()).select_from(CallEvent))).scalar_one())


async def test_the_current_leader_writes_and_a_deposed_one_writes_nothing(pg: Database) -> None:
    events = mapped("d_hold")
    await elect(pg, 1, "a")
    old = SwitchIngest(pg, CallStore(), "freeswitch", fence=fenced_at(1))
    await old.store_batch(events[:2])
    assert await stored(pg) == 2
    await elect(pg, 2, "b")  # b took over
    with pytest.raises(NotLeader):
        await old.store_batch(events[2:])
    assert await stored(pg) == 2
    queue = BatchedIngest(old, batch_size=10)  # the daemon's queue drops a deposed leader's events
    for event in events[2:]:
        await queue(event)
    await queue.close(10)
    assert queue.fenced == len(events) - 2 and queue.failed == 0
    new = SwitchIngest(pg, CallStore(), "freeswitch", fence=fenced_at(2))
    await new.store_batch(events[2:])
    assert await stored(pg) == len(events)


async def test_no_leader_row_is_no_leadership(pg: Database) -> None:
    ingest = SwitchIngest(pg, CallStore(), "freeswitch", fence=fenced_at(1))
    with pytest.raises(NotLeader):
        await ingest.store_batch(mapped("d_hold")[:1])

"""The call store on both databases: creation, events, derived timestamps, locking by id."""

from __future__ import annotations

import pytest

from calld.domain.call import NewCall
from calld.domain.errors import IllegalTransition
from calld.domain.vocabulary import CallDirection, CallStatus, EventSource, EventType
from calld.storage.call_queries import call_detail
from calld.storage.calls import CallStore
from calld.storage.database import Database
from calld.storage.models import Client, ClientPhoneNumber
from tests.support import SettableClock


async def test_inbound_call_lifecycle_derives_timestamps(db: Database, clock: SettableClock) -> None:
    store = CallStore(clock=clock)
    async with db.write() as s:
        call = await store.create(
            s, NewCall(CallDirection.INBOUND, "+14155550100", "+14155550199", sip_call_id="abc@pbx"), EventSource.API
        )
        call_id = call.id
    for event, seconds in (
        (EventType.RINGING, 1),
        (EventType.ANSWERED, 4),
        (EventType.HOLD, 10),
        (EventType.UNHOLD, 5),
    ):
        clock.advance(seconds)
        async with db.write() as s:
            locked = await store.get_for_update(s, call_id)
            assert locked is not None
            await store.apply(s, locked, event, EventSource.API)
    clock.advance(20)
    async with db.write() as s:
        locked = await store.get_for_update(s, call_id)
        assert locked is not None
        await store.apply(s, locked, EventType.ENDED, EventSource.API)
    async with db.read() as s:
        found = await store.find_by(s, sip_call_id="abc@pbx")
        assert found is not None
        assert found.status is CallStatus.ENDED
        assert found.ring_seconds == 4.0
        assert found.hold_seconds == 5.0
        assert found.duration_seconds == 35.0
        assert found.ended_at is not None and found.answered_at is not None
        assert (found.ended_at - found.answered_at).total_seconds() == 35.0
    found_detail = await db.query(call_detail, call_id)
    assert found_detail is not None
    events = found_detail.events
    assert [e.event_type for e in events] == [
        EventType.INITIATED,
        EventType.RINGING,
        EventType.ANSWERED,
        EventType.HOLD,
        EventType.UNHOLD,
        EventType.ENDED,
    ]


async def test_illegal_event_changes_nothing(db: Database, clock: SettableClock) -> None:
    store = CallStore(clock=clock)
    async with db.write() as s:
        call = await store.create(s, NewCall(CallDirection.OUTBOUND, "1001", "+14155550199"), EventSource.API)
        await store.apply(s, call, EventType.ENDED, EventSource.API)
        call_id = call.id
    with pytest.raises(IllegalTransition):
        async with db.write() as s:
            locked = await store.get_for_update(s, call_id)
            assert locked is not None
            await store.apply(s, locked, EventType.ANSWERED, EventSource.API)
    detail = await db.query(call_detail, call_id)
    assert detail is not None
    assert [e.event_type for e in detail.events] == [EventType.INITIATED, EventType.ENDED]
    assert detail.events[-1].meta == {}


async def test_new_call_is_matched_to_client_by_far_number(db: Database, clock: SettableClock) -> None:
    store = CallStore(clock=clock)
    async with db.write() as s:
        client = Client(name="Acme", phone_numbers=[ClientPhoneNumber(number="+14155550100")])
        s.add(client)
        await s.flush()
        inbound = await store.create(s, NewCall(CallDirection.INBOUND, "+14155550100", "1001"), EventSource.API)
        outbound = await store.create(s, NewCall(CallDirection.OUTBOUND, "1001", "+14155550100"), EventSource.API)
        other = await store.create(s, NewCall(CallDirection.OUTBOUND, "1001", "+14155550111"), EventSource.API)
        assert inbound.client_id == client.id
        assert outbound.client_id == client.id
        assert other.client_id is None

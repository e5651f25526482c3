"""The daemon's ingest queue: real captured traffic stored in batches, on both databases."""

from __future__ import annotations

from dataclasses import replace

from calld.domain.vocabulary import EventType
from calld.ingest.switch_ingest import BatchedIngest, SwitchIngest
from calld.storage.calls import CallStore
from calld.storage.database import Database
from tests.fakes.esl_capture import mapped
from tests.support import SettableClock, keys_by_call, stored_keys_by_call


async def test_a_burst_is_stored_in_few_transactions_in_order(db: Database, clock: SettableClock) -> None:
    events = mapped("j_load.json")  # 200 calls
    ingest = SwitchIngest(db, CallStore(clock=clock), "freeswitch")
    queue = BatchedIngest(ingest, batch_size=100)
    for event in events:
        await queue(event)
    await queue.close()
    assert ingest.stored == len(events) == 600 and ingest.refused == 0 and queue.failed == 0
    assert 6 <= queue.batches < 100  # shared commits, none larger than batch_size
    assert await stored_keys_by_call(db) == keys_by_call(events)  # every call's events in switch order


async def test_replayed_events_in_one_batch_are_stored_once(db: Database, clock: SettableClock) -> None:
    events = mapped("d_hold")
    ingest = SwitchIngest(db, CallStore(clock=clock), "freeswitch")
    queue = BatchedIngest(ingest)
    for event in [*events, *events]:
        await queue(event)
    await queue.close()
    assert (ingest.stored, ingest.duplicates) == (len(events), len(events))
    assert await stored_keys_by_call(db) == keys_by_call(events)


async def test_a_full_queue_makes_the_adapter_wait(db: Database, clock: SettableClock) -> None:
    events = mapped("a2_bridged") + mapped("d_hold") + mapped("g_recording")
    queue = BatchedIngest(SwitchIngest(db, CallStore(clock=clock), "freeswitch"), max_pending=3, batch_size=2)
    highest = 0
    for event in events:
        await queue(event)
        highest = max(highest, queue.pending)
    await queue.close()
    assert highest <= 3 + 2  # queued, and the batch being stored
    assert queue.ingest.stored == len(events)


async def test_an_event_the_database_refuses_loses_only_itself(db: Database, clock: SettableClock) -> None:
    events = mapped("a2_bridged")
    # A DTMF after the answer whose payload cannot be stored, in the middle of the call's batch.
    unstorable = replace(events[2], event_type=EventType.DTMF, key="bad-dtmf", metadata={"digit": object()})
    ingest = SwitchIngest(db, CallStore(clock=clock), "freeswitch")
    queue = BatchedIngest(ingest)
    for event in [*events[:3], unstorable, *events[3:]]:
        await queue(event)
    await queue.close()
    assert queue.failed == 1 and ingest.stored == len(events)
    assert await stored_keys_by_call(db) == keys_by_call(events)

"""The switch seam through the service layer: hold toggle, transfer and recording, with the switch
double and without a switch, on real databases; and a slow switch never holds storage up."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import sqlalchemy as sa

from calld.adapters.port import SwitchError
from calld.config import Config
from calld.domain.call import NewCall
from calld.domain.controls import Party
from calld.domain.errors import IllegalTransition, NotFound
from calld.domain.vocabulary import CallDirection, CallStatus, CallType, EventSource, EventType, RecordingStatus
from calld.ingest.switch_ingest import SwitchIngest
from calld.service.calls import CallChanges
from calld.service.wiring import Services
from calld.storage.calls import CallStore
from calld.storage.database import Database
from calld.storage.models import CallLog, CallRecording
from tests.fakes.esl_capture import mapped
from tests.fakes.switch import FakeSwitch
from tests.support import SettableClock

NO_CHANGES = CallChanges()


def with_switch(db: Database, config: Config, clock: SettableClock, switch: FakeSwitch | None) -> Services:
    return Services(config=config, db=db, calls=CallStore(clock=clock), switch=switch)


async def answered_call(svc: Services) -> uuid.UUID:
    """A call placed through the service (on the switch, if there is one) and then answered."""
    detail = await svc.call_log.initiate("1002", CallType.VOICE, None, "1001")
    call_id = uuid.UUID(detail["id"])
    await svc.call_log.set_status(call_id, CallStatus.RINGING, NO_CHANGES)
    await svc.call_log.set_status(call_id, CallStatus.ANSWERED, NO_CHANGES)
    return call_id


async def recordings(db: Database, call_id: uuid.UUID) -> list[tuple[RecordingStatus, str | None]]:
    async with db.read() as session:
        rows = await session.execute(
            sa.select(CallRecording.status, CallRecording.local_path)
            .where(CallRecording.call_id == call_id)
            .order_by(CallRecording.created_at)
        )
        return [(RecordingStatus(status), path) for status, path in rows]


async def test_without_a_switch_the_hold_toggle_holds_then_resumes(
    db: Database, config: Config, clock: SettableClock
) -> None:
    svc = with_switch(db, config, clock, None)
    call_id = await answered_call(svc)
    assert (await svc.control.toggle_hold(call_id))["status"] == "on_hold"
    assert (await svc.control.toggle_hold(call_id))["status"] == "answered"
    ended = await svc.control.end(call_id)
    assert ended["status"] == "ended"
    with pytest.raises(IllegalTransition):
        await svc.control.toggle_hold(call_id)
    with pytest.raises(NotFound):
        await svc.control.toggle_hold(uuid.uuid4())


async def test_with_a_switch_the_switch_is_asked_and_storage_waits_for_its_events(
    db: Database, config: Config, clock: SettableClock
) -> None:
    switch = FakeSwitch()
    svc = with_switch(db, config, clock, switch)
    call_id = await answered_call(svc)
    assert switch.requests == [("originate", str(call_id), "1002", "1001")]

    held = await svc.control.toggle_hold(call_id)
    assert held["status"] == "answered"  # the switch's own hold event will change it
    transferred = await svc.control.transfer(call_id, "1003", attended=False)
    assert transferred["transfer_target"] is None
    await svc.control.start_recording(call_id)
    assert switch.requests[1:] == [
        ("hold", "ref-1"),
        ("transfer", "ref-1", "1003", False),
        ("start_recording", "ref-1", f"{call_id}.wav"),
    ]
    # The recording the switch was asked for waits, pending, for the switch to confirm it.
    assert await recordings(db, call_id) == [(RecordingStatus.PENDING, f"{call_id}.wav")]


async def test_a_refused_recording_leaves_its_row_failed_and_the_call_as_it_was(
    db: Database, config: Config, clock: SettableClock
) -> None:
    switch = FakeSwitch()
    svc = with_switch(db, config, clock, switch)
    call_id = await answered_call(svc)
    switch.refuse = True
    with pytest.raises(SwitchError):
        await svc.control.start_recording(call_id)
    assert await recordings(db, call_id) == [(RecordingStatus.FAILED, f"{call_id}.wav")]
    with pytest.raises(SwitchError):
        await svc.control.toggle_hold(call_id)
    switch.refuse = False
    await svc.control.start_recording(call_id)  # the second attempt is the call's second file
    assert (await recordings(db, call_id))[-1] == (RecordingStatus.PENDING, f"{call_id}-2.wav")
    async with db.read() as session:
        call = await session.get(CallLog, call_id)
        assert call is not None and call.status is CallStatus.ANSWERED


async def test_a_slow_switch_command_does_not_hold_up_switch_event_ingest(
    db: Database, config: Config, clock: SettableClock
) -> None:
    """On SQLite the write lock is one for the whole database: a hold the switch takes 5 s to answer
    must not keep switch events from being stored meanwhile."""
    if db.dialect != "sqlite":
        pytest.skip("the single write lock is SQLite's")
    switch = FakeSwitch()
    svc = with_switch(db, config, clock, switch)
    call_id = await answered_call(svc)
    switch.delay_seconds = 5.0
    hold = asyncio.create_task(svc.control.toggle_hold(call_id))
    await asyncio.wait_for(switch.asked.wait(), 10)

    ingest = SwitchIngest(db, CallStore(clock=clock), "freeswitch")
    events = mapped("a2_bridged")
    for event in events:
        await ingest(event)
    # Every event of another call is committed (readable) while the switch is still answering the hold.
    async with db.read() as session:
        stored = (await session.execute(sa.select(sa.func.count()).select_from(CallLog))).scalar_one()
    assert not hold.done(), "the switch answered before ingest finished: the test proves nothing"
    assert ingest.stored == len(events) and stored == 2
    await hold
    assert switch.requests[-1] == ("hold", "ref-1")


async def test_mute_and_dtmf_without_a_switch_are_stored_naming_the_party(
    db: Database, config: Config, clock: SettableClock
) -> None:
    svc = with_switch(db, config, clock, None)
    ringing = await svc.call_log.initiate("1002", CallType.VOICE, None, "1001")
    with pytest.raises(IllegalTransition, match="initiated"):
        await svc.control.mute(uuid.UUID(ringing["id"]), None, True)
    call_id = await answered_call(svc)  # outbound: calld's user is the caller
    muted = await svc.control.mute(call_id, None, True)
    assert muted["events"][-1]["event_type"] == "muted"
    assert muted["events"][-1]["metadata"] == {"party": "callee"}
    unmuted = await svc.control.mute(call_id, Party.CALLER, False)
    assert (unmuted["events"][-1]["event_type"], unmuted["events"][-1]["metadata"]) == ("unmuted", {"party": "caller"})
    sent = await svc.control.send_dtmf(call_id, "12#", 200)
    assert sent["events"][-1]["metadata"] == {
        "digits": "12#",
        "direction": "sent",
        "duration_ms": 200,
        "party": "callee",
    }
    assert sent["status"] == "answered"
    await svc.control.end(call_id)
    with pytest.raises(IllegalTransition, match="ended"):
        await svc.control.send_dtmf(call_id, "1", None)


async def test_mute_and_dtmf_with_a_switch_ask_it_for_the_right_leg_and_store_nothing(
    db: Database, config: Config, clock: SettableClock
) -> None:
    switch = FakeSwitch()
    svc = with_switch(db, config, clock, switch)
    call_id = await answered_call(svc)  # outbound: the caller is calld's user, the near leg
    await svc.control.mute(call_id, None, True)
    await svc.control.mute(call_id, Party.CALLER, False)
    detail = await svc.control.send_dtmf(call_id, "9", None, Party.CALLEE)
    assert switch.requests[1:] == [
        ("mute", "ref-1", False),
        ("unmute", "ref-1", True),
        ("send_dtmf", "ref-1", False, "9", None),
    ]
    # The switch's own reports (adapters) store the events; nothing is stored on asking.
    assert [e["event_type"] for e in detail["events"]] == ["initiated", "ringing", "answered"]
    switch.refuse = True
    with pytest.raises(SwitchError, match="no such extension"):
        await svc.control.send_dtmf(call_id, "1", None)


async def test_pausing_a_recording_without_a_switch_keeps_the_span(
    db: Database, config: Config, clock: SettableClock
) -> None:
    svc = with_switch(db, config, clock, None)
    call_id = await answered_call(svc)
    with pytest.raises(IllegalTransition, match="not recording"):
        await svc.control.pause_recording(call_id, True)
    await svc.control.start_recording(call_id)
    clock.advance(5)
    paused = await svc.control.pause_recording(call_id, True)
    assert paused["recording_paused"] is True and paused["status"] == "recording"
    with pytest.raises(IllegalTransition, match="already paused"):
        await svc.control.pause_recording(call_id, True)
    clock.advance(7)
    resumed = await svc.control.pause_recording(call_id, False)
    assert resumed["recording_paused"] is False
    with pytest.raises(IllegalTransition, match="not paused"):
        await svc.control.pause_recording(call_id, False)
    [span] = resumed["recording"]["paused_spans"]
    pause_at, resume_at = (e["timestamp"] for e in resumed["events"][-2:])
    assert (span["paused_at"], span["resumed_at"]) == (pause_at, resume_at)
    clock.advance(1)
    await svc.control.pause_recording(call_id, True)
    clock.advance(1)
    ended = await svc.control.end(call_id)  # ends paused: the span closes at the end
    spans = ended["recording"]["paused_spans"]
    assert len(spans) == 2 and spans[1]["resumed_at"] == ended["ended_at"]
    assert ended["recording_paused"] is False


async def test_pausing_with_a_switch_asks_it_for_the_recording_s_file(
    db: Database, config: Config, clock: SettableClock
) -> None:
    switch = FakeSwitch()
    svc = with_switch(db, config, clock, switch)
    call_id = await answered_call(svc)
    await svc.control.start_recording(call_id)
    with pytest.raises(IllegalTransition, match="not recording"):  # the switch has not confirmed it yet
        await svc.control.pause_recording(call_id, True)
    await svc.call_log.set_status(call_id, CallStatus.RECORDING, NO_CHANGES)  # stands for its confirmation
    detail = await svc.control.pause_recording(call_id, True)
    assert detail["recording_paused"] is False  # until the switch reports it
    assert switch.requests[1:] == [
        ("start_recording", "ref-1", f"{call_id}.wav"),
        ("pause_recording", "ref-1", f"{call_id}.wav"),
    ]


async def incoming(svc: Services, caller: str) -> uuid.UUID:
    logged = await svc.call_log.log(NewCall(CallDirection.INBOUND, caller, "1001"))
    return uuid.UUID(logged.detail["id"])


async def test_answer_and_reject_take_a_ringing_inbound_call_only(
    db: Database, config: Config, clock: SettableClock
) -> None:
    svc = with_switch(db, config, clock, None)
    outbound = await svc.call_log.initiate("1002", CallType.VOICE, None, "1001")
    with pytest.raises(IllegalTransition, match="only an inbound or internal call"):
        await svc.control.answer(uuid.UUID(outbound["id"]))
    first, second = await incoming(svc, "+14155550100"), await incoming(svc, "+14155550101")
    answered = await svc.control.answer(first)
    assert answered["status"] == "answered"
    with pytest.raises(IllegalTransition, match=r"only a ringing call.*answered"):
        await svc.control.reject(first)
    rejected = await svc.control.reject(second)
    assert rejected["status"] == "busy" and rejected["events"][-1]["metadata"]["reason"] == "rejected"


async def test_park_and_pickup_with_a_switch_ask_it_and_store_nothing(
    db: Database, config: Config, clock: SettableClock
) -> None:
    switch = FakeSwitch()
    svc = with_switch(db, config, clock, switch)
    call_id = await answered_call(svc)
    detail = await svc.control.park(call_id, None)  # the switch's default slot
    assert detail["status"] == "answered" and detail["parked"] is None  # until the switch reports it
    with pytest.raises(IllegalTransition, match="not parked"):
        await svc.control.pickup(call_id, "1003")
    # The switch's park report: a hold naming the slot (what both adapters map ParkedCall/valet hold to).
    async with db.write() as session:
        call = await session.get(CallLog, call_id)
        assert call is not None
        await svc.calls.apply(session, call, EventType.HOLD, EventSource.SWITCH, metadata={"parked": "701"})
    await svc.control.pickup(call_id, "1003")
    assert switch.requests[1:] == [("park", "ref-1", None), ("pickup", "ref-1", "701", "1003")]
    with pytest.raises(IllegalTransition, match="on_hold"):
        await svc.control.park(call_id, "702")
    switch.refuse = True
    with pytest.raises(SwitchError, match="no such extension"):
        await svc.control.pickup(call_id, "1003")

"""Real captured switch traffic, mapped and stored through SwitchIngest, on both databases."""

from __future__ import annotations

import uuid
import wave
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from calld.domain.call import NewCall
from calld.domain.events import CallParties, SwitchEvent
from calld.domain.numbers import NumberPolicy
from calld.domain.vanished import VanishedWhile, vanished_end
from calld.domain.vocabulary import CallDirection, CallStatus, EventSource, EventType, RecordingStatus
from calld.ingest.switch_ingest import SwitchIngest
from calld.storage.calls import CallStore
from calld.storage.database import Database
from calld.storage.models import CallEvent, CallLog, CallRecording, Client, ClientPhoneNumber
from calld.storage.recording_files import RecordingFiles
from tests.fakes.esl_capture import mapped
from tests.support import SettableClock


async def ingest_all(db: Database, events: list[SwitchEvent], clock: SettableClock) -> SwitchIngest:
    ingest = SwitchIngest(db, CallStore(clock=clock), "freeswitch")
    for event in events:
        await ingest(event)
    return ingest


async def stored(db: Database) -> list[tuple[CallLog, list[EventType]]]:
    async with db.read() as s:
        calls = list((await s.execute(sa.select(CallLog).order_by(CallLog.started_at))).scalars())
        result = []
        for call in calls:
            rows = await s.execute(
                sa.select(CallEvent.event_type).where(CallEvent.call_id == call.id).order_by(CallEvent.id)
            )
            result.append((call, list(rows.scalars())))
    return result


async def test_bridged_call_is_one_answered_call_with_switch_timing(db: Database, clock: SettableClock) -> None:
    events = mapped("a2_bridged")
    ingest = await ingest_all(db, events, clock)
    [(call, types)] = await stored(db)
    assert types == [EventType.INITIATED, EventType.RINGING, EventType.ANSWERED, EventType.ENDED]
    assert call.status is CallStatus.ENDED
    assert (call.caller_number, call.recipient_number) == ("1000", "1001")
    assert call.switch_name == "freeswitch" and call.switch_call_ref == events[0].call_ref
    # Times come from the switch's own event timestamps, not from calld's clock.
    by_type = {e.event_type: e.timestamp for e in events}
    assert call.started_at == by_type[EventType.INITIATED]
    assert call.answered_at == by_type[EventType.ANSWERED]
    assert call.ended_at == by_type[EventType.ENDED]
    assert call.duration_seconds == (call.ended_at - call.answered_at).total_seconds()
    assert 3.5 < call.duration_seconds < 6  # the capture's call talked for about 4 s
    assert ingest.stored == 4 and ingest.refused == 0


async def test_replaying_the_same_events_stores_nothing_twice(db: Database, clock: SettableClock) -> None:
    events = mapped("d_hold")
    await ingest_all(db, events, clock)
    again = await ingest_all(db, events, clock)
    assert again.stored == 0 and again.duplicates == len(events)
    [(call, types)] = await stored(db)
    assert types.count(EventType.HOLD) == 2 and types.count(EventType.UNHOLD) == 2
    assert call.hold_seconds > 0


async def test_busy_bridge_is_stored_busy(db: Database, clock: SettableClock) -> None:
    await ingest_all(db, mapped("c_busy"), clock)
    statuses = sorted(call.status.value for call, _ in await stored(db))
    assert statuses == ["busy", "busy", "busy"]


async def test_events_for_a_call_calld_originated_join_it(db: Database, clock: SettableClock) -> None:
    """calld stores the call first; the switch's events name it by its id (as origination uuid)."""
    events = mapped("a_answered")
    store = CallStore(clock=clock)
    async with db.write() as s:
        ours = await store.create(s, NewCall(CallDirection.OUTBOUND, "9000", "1000"), EventSource.API)
    ref = events[0].call_ref
    renamed = [replace(e, call_ref=str(ours.id)) if e.call_ref == ref else e for e in events]
    await ingest_all(db, renamed, clock)
    [(call, types)] = await stored(db)
    assert call.id == ours.id
    assert types == [EventType.INITIATED, EventType.RINGING, EventType.ANSWERED, EventType.ENDED]
    assert call.switch_call_ref == str(ours.id)


async def test_event_for_an_unknown_call_is_dropped_not_fatal(db: Database, clock: SettableClock) -> None:
    events = mapped("a2_bridged")
    orphan = replace(events[2], call_ref=str(uuid.uuid4()), key="orphan")
    ingest = await ingest_all(db, [orphan, *events], clock)
    assert ingest.refused == 1
    assert len(await stored(db)) == 1


async def test_an_event_the_state_machine_refuses_is_skipped(db: Database, clock: SettableClock) -> None:
    events = mapped("a2_bridged")
    extra_answer = replace(events[2], key="second-answer")
    ingest = await ingest_all(db, [*events[:3], extra_answer, *events[3:]], clock)
    assert ingest.refused == 1
    [(_call, types)] = await stored(db)
    assert types == [EventType.INITIATED, EventType.RINGING, EventType.ANSWERED, EventType.ENDED]


async def test_a_whole_call_in_one_batch_shows_each_hook_the_call_right_after_its_event(
    db: Database, clock: SettableClock
) -> None:
    """One transaction, one statement per kind of row: each hook still sees the call as it was
    right after its own event, and each event with the id it was stored under."""
    seen: list[tuple[str, CallStatus, int]] = []

    def hook(session: Session, call: CallLog, event: CallEvent) -> None:
        seen.append((event.event_type.value, call.status, event.id))

    events = mapped("d_hold")
    ingest = SwitchIngest(db, CallStore(clock=clock, hooks=[hook]), "freeswitch")
    await ingest.store_batch(events)
    [(call, types)] = await stored(db)
    async with db.read() as s:
        ids = list((await s.execute(sa.select(CallEvent.id).order_by(CallEvent.id))).scalars())
    assert [kind for kind, _, _ in seen] == [t.value for t in types]
    assert [event_id for _, _, event_id in seen] == ids
    statuses = [status for _, status, _ in seen]
    assert statuses[:3] == [CallStatus.INITIATED, CallStatus.RINGING, CallStatus.ANSWERED]
    assert statuses.count(CallStatus.ON_HOLD) == 2 and statuses[-1] is CallStatus.ENDED is call.status


async def test_a_recording_started_and_stopped_in_one_batch_is_one_recording(
    db: Database, clock: SettableClock
) -> None:
    events = mapped("g_recording")
    assert [e.event_type for e in events].count(EventType.RECORDING_STARTED) == 2
    await SwitchIngest(db, CallStore(clock=clock), "freeswitch").store_batch(events)
    async with db.read() as s:
        rows = (await s.execute(sa.select(CallRecording.status, CallRecording.local_path))).all()
    assert sorted(status for status, _ in rows) == [RecordingStatus.COMPLETED] * 2  # RECORD_STOP's figures
    assert all(path and path.endswith(".wav") for _, path in rows)


async def test_freeswitch_recordings_complete_with_the_switchs_size_and_length(
    db: Database, clock: SettableClock
) -> None:
    """g_recording: a 4 s recording stopped by the API, a second one running into the hangup. Both
    rows complete with RECORD_STOP's size and length (variable_record_ms / variable_record_file_size:
    the second RECORD_START still carries the first's figures, which are not taken)."""
    for capture, first_size in (("g_recording", 128044), ("g_recording.json", 128684)):
        await ingest_all(db, mapped(capture), clock)
        async with db.read() as s:
            rows = (
                await s.execute(
                    sa.select(CallRecording)
                    .join(CallLog, CallLog.id == CallRecording.call_id)
                    .where(CallLog.switch_call_ref == mapped(capture)[0].call_ref)
                    .order_by(CallRecording.started_at)
                )
            ).scalars()
            found = [(r.status, r.file_size, r.duration_seconds, r.local_path.endswith("-2.wav")) for r in rows]
        assert found[1] == (RecordingStatus.COMPLETED, 65324, 2.04, True)
        assert found[0][:2] == (RecordingStatus.COMPLETED, first_size) and 4.0 <= found[0][2] <= 4.02
    types = (await stored(db))[0][1]
    assert types.count(EventType.RECORDING_STOPPED) == 2 and types[-1] is EventType.ENDED


async def test_a_recording_file_beside_calld_completes_a_stop_that_says_nothing(
    db: Database, clock: SettableClock, tmp_path: Path
) -> None:
    """A switch stop without figures (Asterisk's MixMonitorStop, or the call ending while recording):
    calld reads the file where it sees the switch's files (calls.recordings_root)."""
    spool = tmp_path / "var" / "spool" / "asterisk" / "monitor"
    spool.mkdir(parents=True)
    with wave.open(str(spool / "r.wav"), "wb") as audio:
        audio.setnchannels(1)
        audio.setsampwidth(2)
        audio.setframerate(8000)
        audio.writeframes(b"\0\0" * 8000 * 3)  # 3 s
    store = CallStore(clock=clock, files=RecordingFiles(str(tmp_path)))
    first = mapped("a_answered")
    ingest = SwitchIngest(db, store, "freeswitch")
    answered = [e for e in first if e.event_type in (EventType.INITIATED, EventType.RINGING, EventType.ANSWERED)]
    for event in answered:
        await ingest(event)
    at = answered[-1].timestamp
    started = replace(
        answered[-1],
        event_type=EventType.RECORDING_STARTED,
        key="rec-start",
        timestamp=at + timedelta(seconds=1),
        metadata={"path": "/var/spool/asterisk/monitor/r.wav"},
    )
    ended = replace(answered[-1], event_type=EventType.ENDED, key="end", timestamp=at + timedelta(seconds=4.5))
    await ingest(started)
    await ingest(ended)
    async with db.read() as s:
        recording = (await s.execute(sa.select(CallRecording))).scalar_one()
        types = list((await s.execute(sa.select(CallEvent.event_type).order_by(CallEvent.id))).scalars())
    assert types[-2:] == [EventType.RECORDING_STOPPED, EventType.ENDED]  # implied by the end, stored first
    assert (recording.status, recording.file_size, recording.duration_seconds) == (
        RecordingStatus.COMPLETED,
        44 + 2 * 8000 * 3,
        3.0,
    )
    assert recording.stopped_at == ended.timestamp and recording.started_at == started.timestamp


async def test_events_of_many_calls_in_one_batch_are_stored_as_one_by_one(db: Database, clock: SettableClock) -> None:
    """The batch path and event-at-a-time storing give the same rows (the load capture, 200 calls)."""
    events = mapped("j_load.json")
    one_by_one = await ingest_all(db, events, clock)
    expected = [(c.status, c.answered_at, c.ended_at, c.duration_seconds, t) for c, t in await stored(db)]
    async with db.write() as s:
        for table in (CallEvent, CallLog):
            await s.execute(sa.delete(table))
    batched = SwitchIngest(db, CallStore(clock=clock), "freeswitch")
    for start in range(0, len(events), 97):
        await batched.store_batch(events[start : start + 97])
    got = [(c.status, c.answered_at, c.ended_at, c.duration_seconds, t) for c, t in await stored(db)]
    assert got == expected and batched.stored == one_by_one.stored == len(events)


async def test_a_vanished_call_storage_knows_answered_is_closed_ended(db: Database, clock: SettableClock) -> None:
    """The link was down while the call was answered: the answer came from the switch's records, the
    adapter's shadow state never saw it and closes the call ``failed``; storage knows better."""
    t0 = datetime(2026, 12, 3, 9, 6, 50, tzinfo=UTC)
    parties = CallParties(CallDirection.INBOUND, "1001", "9001")
    adapter_close = vanished_end(False, VanishedWhile.DISCONNECTED, "call no longer on the switch after reconnect")
    events = [
        SwitchEvent("1.73", EventType.INITIATED, t0, "1.73:init", {}, parties),
        SwitchEvent("1.73", EventType.ANSWERED, t0 + timedelta(seconds=2), "1.73:cel:answer", {}, None, None, "cel"),
        SwitchEvent("1.73", adapter_close.event_type, t0 + timedelta(seconds=4), "1.73:lost", adapter_close.metadata),
    ]
    ingest = await ingest_all(db, events, clock)
    [(call, types)] = await stored(db)
    assert types == [EventType.INITIATED, EventType.ANSWERED, EventType.ENDED]
    assert call.status is CallStatus.ENDED and call.duration_seconds == 2.0
    assert ingest.stored == 3


async def test_a_hangup_that_says_missed_for_a_call_storage_knows_answered_ends_it(
    db: Database, clock: SettableClock
) -> None:
    """Seen live after an AMI link cut: CEL stored the answer, the adapter (which saw only the ringing)
    reported the Hangup as missed; refused, the call would have stayed answered forever."""
    t0 = datetime(2026, 12, 3, 9, 17, 53, tzinfo=UTC)
    parties = CallParties(CallDirection.INBOUND, "1001", "9001")
    events = [
        SwitchEvent("2.73", EventType.INITIATED, t0, "2.73:init", {}, parties),
        SwitchEvent("2.73", EventType.RINGING, t0, "2.73:ring", {}),
        SwitchEvent("2.73", EventType.ANSWERED, t0 + timedelta(seconds=1), "2.73:cel:answer", {}, None, None, "cel"),
        SwitchEvent("2.73", EventType.ENDED, t0 + timedelta(seconds=3), "2.73:hangup", {"outcome": "missed"}),
    ]
    await ingest_all(db, events, clock)
    [(call, types)] = await stored(db)
    assert types == [EventType.INITIATED, EventType.RINGING, EventType.ANSWERED, EventType.ENDED]
    assert call.status is CallStatus.ENDED and call.duration_seconds == 2.0


async def test_switch_numbers_follow_the_number_policy(db: Database, clock: SettableClock) -> None:
    """The p3_trunk_answered capture: an outside caller through a trunk. The stored caller number is
    E.164 and matches the client; the presentation is kept; a national or withheld caller ID
    presented by a switch is read the same way (calls.default_region DE)."""
    async with db.write() as s:
        s.add(Client(name="Berlin", phone_numbers=[ClientPhoneNumber(number="+4930123456")]))
    store = CallStore(clock=clock, numbers=NumberPolicy("DE"))
    ingest = SwitchIngest(db, store, "freeswitch")
    for event in mapped("p3_trunk_answered"):
        await ingest(event)
    first = mapped("a_answered")
    for presented, ref in (("030 123456", "national"), ("anonymous", "withheld")):
        parties = replace(first[0].parties, caller_number=presented) if first[0].parties else None
        await ingest(replace(first[0], call_ref=ref, key=f"{ref}-initiated", parties=parties))
    async with db.read() as s:
        client_id = (await s.execute(sa.select(Client.id))).scalar_one()
        calls = {c.switch_call_ref: c for c in (await s.execute(sa.select(CallLog))).scalars()}
    trunk = next(c for ref, c in calls.items() if ref not in ("national", "withheld"))
    assert (trunk.caller_number, trunk.caller_number_raw, trunk.client_id) == ("+4930123456", "+4930123456", client_id)
    assert (trunk.recipient_number_raw, trunk.caller_withheld) == ("5551001", False)
    national = calls["national"]
    assert (national.caller_number, national.caller_number_raw, national.client_id) == (
        "+4930123456",
        "030 123456",
        client_id,
    )
    withheld = calls["withheld"]
    assert (withheld.caller_number, withheld.caller_withheld, withheld.client_id) == ("anonymous", True, None)

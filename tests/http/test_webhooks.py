"""Inbound webhooks over real HTTP on both databases: SIP provider call events and recording results."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from calld.domain.call import NewCall
from calld.domain.vocabulary import CallDirection, CallStatus, EventSource, EventType, RecordingStatus
from calld.service.provider import SipEventType
from calld.storage.calls import CallStore
from calld.storage.database import Database
from calld.storage.models import CallEvent, CallLog, CallRecording
from tests.support import AppClient, SettableClock


@pytest.fixture
def api(signed_webhook_api: AppClient) -> AppClient:
    return signed_webhook_api


SIP = "/api/webhooks/sip/"
RECORDING = "/api/webhooks/recording/"


def at(clock: SettableClock, seconds: float = 0) -> str:
    return (clock.now + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def sip_event(clock: SettableClock, event_type: str, seconds: float = 0, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "event_type": event_type,
        "sip_call_id": "a84b4c76e66710@pbx.provider.example",
        "caller_number": "(415) 555-0100",
        "recipient_number": "+1 212 555 0143",
        "timestamp": at(clock, seconds),
    }
    body.update(extra)
    return body


async def post(api: AppClient, path: str, body: Any, status: int) -> Any:
    resp = await api.post(path, json=body)
    data = await resp.json()
    assert resp.status == status, data
    return data


async def stored_events(db: Database) -> list[CallEvent]:
    async with db.read() as s:
        return list((await s.execute(sa.select(CallEvent).order_by(CallEvent.id))).scalars())


async def stored_calls(db: Database) -> list[CallLog]:
    async with db.read() as s:
        return list((await s.execute(sa.select(CallLog))).scalars())


async def test_sip_lifecycle_creates_and_updates_the_call(api: AppClient, db: Database, clock: SettableClock) -> None:
    first = await post(api, SIP, sip_event(clock, "call_initiated", delivery_id="d-1"), 200)
    assert first["status"] == "stored"
    call_id = first["call"]
    for n, (event, seconds) in enumerate(
        [("call_ringing", 2), ("call_answered", 6), ("call_held", 30), ("call_resumed", 40), ("call_ended", 100)],
        start=2,
    ):
        answer = await post(api, SIP, sip_event(clock, event, seconds, delivery_id=f"d-{n}"), 200)
        assert answer["status"] == "stored" and answer["call"] == call_id

    [call] = await stored_calls(db)
    assert str(call.id) == call_id
    assert call.direction is CallDirection.INBOUND
    assert call.caller_number == "+14155550100"
    assert call.recipient_number == "+12125550143"
    assert call.sip_call_id == "a84b4c76e66710@pbx.provider.example"
    assert call.status is CallStatus.ENDED
    assert call.started_at == clock.now
    assert call.ring_seconds == 4.0
    assert call.hold_seconds == 10.0
    assert call.duration_seconds == 94.0
    events = await stored_events(db)
    assert [e.event_type for e in events] == [
        EventType.INITIATED,
        EventType.RINGING,
        EventType.ANSWERED,
        EventType.HOLD,
        EventType.UNHOLD,
        EventType.ENDED,
    ]
    assert {e.source for e in events} == {EventSource.WEBHOOK}
    assert [e.dedup_key for e in events] == [f"sip:d-{n}" for n in range(1, 7)]
    assert first["event"] == events[0].id


async def test_first_event_of_an_unknown_call_creates_it(api: AppClient, db: Database, clock: SettableClock) -> None:
    body = sip_event(clock, "call_ringing", direction="outbound", call_type="video", caller_number="1001")
    answer = await post(api, SIP, body, 200)
    [call] = await stored_calls(db)
    assert answer == {"status": "stored", "call": str(call.id), "event": answer["event"]}
    assert (call.direction, call.call_type.value, call.status) == (CallDirection.OUTBOUND, "video", CallStatus.RINGING)
    assert call.caller_number == "1001"
    assert call.started_at == clock.now and call.ringing_at == clock.now
    events = await stored_events(db)
    assert [(e.event_type, e.meta, e.dedup_key is None) for e in events] == [
        (EventType.INITIATED, {"implied_by": "call_ringing"}, True),
        (EventType.RINGING, {}, False),
    ]
    assert answer["event"] == events[1].id


async def test_outcomes_quality_and_transfer_map_to_domain_events(
    api: AppClient, db: Database, clock: SettableClock
) -> None:
    await post(api, SIP, sip_event(clock, "call_initiated"), 200)
    await post(api, SIP, sip_event(clock, "call_missed", 20), 200)
    [call] = await stored_calls(db)
    assert call.status is CallStatus.MISSED and call.ring_seconds == 20.0

    other = {"sip_call_id": "second@provider"}
    await post(api, SIP, sip_event(clock, "call_answered", 1, **other), 200)
    await post(api, SIP, sip_event(clock, "call_quality", 2, metadata={"score": 3.5, "jitter_ms": 12}, **other), 200)
    await post(api, SIP, sip_event(clock, "call_transferred", 3, metadata={"transfer_to": "1002"}, **other), 200)
    await post(api, SIP, sip_event(clock, "call_busy", 4, **other), 409)
    await post(api, SIP, sip_event(clock, "call_failed", 5, metadata={"sip_code": 503}, **other), 200)
    async with db.read() as s:
        second = (await s.execute(sa.select(CallLog).where(CallLog.sip_call_id == "second@provider"))).scalar_one()
        events = list(
            (
                await s.execute(sa.select(CallEvent).where(CallEvent.call_id == second.id).order_by(CallEvent.id))
            ).scalars()
        )
    assert second.status is CallStatus.FAILED
    assert second.call_quality_score == 3.5
    assert second.transfer_target == "1002"
    assert [(e.event_type, e.meta) for e in events[1:]] == [
        (EventType.ANSWERED, {}),
        (EventType.QUALITY_CHANGE, {"score": 3.5, "jitter_ms": 12}),
        (EventType.TRANSFER_INITIATED, {"transfer_to": "1002"}),
        (EventType.FAILED, {"sip_code": 503}),
    ]
    missed = await stored_events(db)
    assert [(e.event_type, e.meta) for e in missed if e.call_id == call.id][-1] == (
        EventType.ENDED,
        {"outcome": "missed"},
    )


async def test_same_delivery_id_twice_stores_one_event(api: AppClient, db: Database, clock: SettableClock) -> None:
    first = await post(api, SIP, sip_event(clock, "call_initiated", delivery_id="evt-77"), 200)
    again = await post(api, SIP, sip_event(clock, "call_initiated", delivery_id="evt-77"), 200)
    assert again == {"status": "duplicate", "call": first["call"]}
    ringing = await post(api, SIP, sip_event(clock, "call_ringing", 1, delivery_id="evt-78"), 200)
    # A redelivery is a duplicate even if the provider re-stamped it.
    repeat = await post(api, SIP, sip_event(clock, "call_ringing", 9, delivery_id="evt-78"), 200)
    assert repeat == {"status": "duplicate", "call": ringing["call"]}
    assert [e.event_type for e in await stored_events(db)] == [EventType.INITIATED, EventType.RINGING]
    [call] = await stored_calls(db)
    assert call.ringing_at == clock.now + timedelta(seconds=1)


async def test_same_event_without_delivery_id_stores_one_event(
    api: AppClient, db: Database, clock: SettableClock
) -> None:
    await post(api, SIP, sip_event(clock, "call_initiated"), 200)
    answered = await post(api, SIP, sip_event(clock, "call_answered", 5), 200)
    assert answered["status"] == "stored"
    same = await post(api, SIP, sip_event(clock, "call_answered", 5), 200)
    assert same == {"status": "duplicate", "call": answered["call"]}
    # The same instant as epoch seconds is the same delivery.
    epoch = (clock.now + timedelta(seconds=5)).timestamp()
    assert (await post(api, SIP, sip_event(clock, "call_answered", timestamp=epoch), 200))["status"] == "duplicate"
    # A different instant is a different event, and answering twice is illegal.
    await post(api, SIP, sip_event(clock, "call_answered", 6), 409)
    assert [e.event_type for e in await stored_events(db)] == [EventType.INITIATED, EventType.ANSWERED]


async def test_concurrent_duplicates_store_once(api: AppClient, db: Database, clock: SettableClock) -> None:
    bodies = [sip_event(clock, "call_ringing", delivery_id="race") for _ in range(6)]
    answers = await asyncio.gather(*(api.post(SIP, json=b) for b in bodies))
    results = [(r.status, (await r.json())["status"]) for r in answers]
    assert sorted(results) == [(200, "duplicate")] * 5 + [(200, "stored")]
    assert [e.event_type for e in await stored_events(db)] == [EventType.INITIATED, EventType.RINGING]


async def test_concurrent_first_events_of_a_new_call_both_apply(
    api: AppClient, db: Database, clock: SettableClock
) -> None:
    # Both find no call and try to create it; the loser of the race applies its event to the winner's call.
    bodies = [sip_event(clock, "call_ringing"), sip_event(clock, "call_dtmf", metadata={"digits": "1"})]
    answers = await asyncio.gather(*(api.post(SIP, json=b) for b in bodies))
    assert [r.status for r in answers] == [200, 200]
    assert [(await r.json())["status"] for r in answers] == ["stored", "stored"]
    [call] = await stored_calls(db)
    assert call.status is CallStatus.RINGING
    events = await stored_events(db)
    assert events[0].event_type is EventType.INITIATED
    assert sorted(e.event_type.value for e in events[1:]) == ["dtmf", "ringing"]


async def test_unknown_event_type_lists_allowed(api: AppClient, db: Database, clock: SettableClock) -> None:
    data = await post(api, SIP, sip_event(clock, "call_exploded"), 422)
    message = data["detail"]["event_type"]
    assert all(t.value in message for t in SipEventType)
    assert data["error"] == "validation failed"
    assert await stored_calls(db) == []


async def test_bad_and_future_timestamps_are_rejected(api: AppClient, db: Database, clock: SettableClock) -> None:
    for bad in ("yesterday", "2026-11-24T12:00:00", True, None):
        data = await post(api, SIP, sip_event(clock, "call_initiated", timestamp=bad), 422)
        assert set(data["detail"]) == {"timestamp"}
    data = await post(api, SIP, sip_event(clock, "call_initiated", 5 * 60 + 1), 422)
    assert data["detail"] == {"timestamp": "is more than 5 minutes in the future"}
    assert await stored_calls(db) == []
    await post(api, SIP, sip_event(clock, "call_initiated", 4 * 60), 200)


async def test_invalid_fields_are_named_together(api: AppClient, db: Database, clock: SettableClock) -> None:
    body = sip_event(clock, "call_quality", caller_number=14155550100, direction="sideways", metadata={"score": 9})
    body["colour"] = "blue"
    del body["sip_call_id"]
    data = await post(api, SIP, body, 422)
    assert set(data["detail"]) == {"caller_number", "direction", "metadata.score", "colour", "sip_call_id"}
    assert (await post(api, SIP, sip_event(clock, "call_quality"), 422))["detail"] == {
        "metadata.score": "this field is required for call_quality"
    }
    resp = await api.post(SIP, data=b"{not json", headers={"Content-Type": "application/json"})
    assert resp.status == 400 and (await resp.json())["error"] == "malformed JSON"
    assert await stored_calls(db) == []


async def test_new_call_needs_both_numbers(api: AppClient, db: Database, clock: SettableClock) -> None:
    body = sip_event(clock, "call_initiated")
    del body["recipient_number"]
    data = await post(api, SIP, body, 422)
    assert data["detail"] == {"recipient_number": "this field is required when the call is new"}
    assert await stored_calls(db) == []
    # Once the call exists the numbers may be left out.
    await post(api, SIP, sip_event(clock, "call_initiated"), 200)
    await post(api, SIP, {k: v for k, v in sip_event(clock, "call_ringing", 1).items() if "number" not in k}, 200)


async def test_illegal_order_is_409_and_stores_nothing(api: AppClient, db: Database, clock: SettableClock) -> None:
    await post(api, SIP, sip_event(clock, "call_initiated"), 200)
    await post(api, SIP, sip_event(clock, "call_missed", 10), 200)
    # Folded in time order, an answer before "missed" is impossible (a late answer before a plain
    # call_ended is not: tests/http/test_webhook_ordering.py).
    data = await post(api, SIP, sip_event(clock, "call_answered", 5), 409)
    assert data["error"] == "illegal status transition"
    assert data["current_status"] == "missed" and "status" in data["detail"]
    [call] = await stored_calls(db)
    assert call.status is CallStatus.MISSED and call.answered_at is None
    assert [e.event_type for e in await stored_events(db)] == [EventType.INITIATED, EventType.ENDED]
    # An event a new call cannot take creates no call either.
    await post(api, SIP, sip_event(clock, "call_held", sip_call_id="fresh@provider"), 409)
    assert len(await stored_calls(db)) == 1
    # A second call_initiated for an existing call (different delivery) is illegal too.
    await post(api, SIP, sip_event(clock, "call_initiated", 1), 409)
    assert len(await stored_events(db)) == 2


async def test_oversized_body_is_413_json(api: AppClient, db: Database, clock: SettableClock) -> None:
    body = sip_event(clock, "call_initiated", metadata={"blob": "x" * 1_100_000})
    resp = await api.post(SIP, json=body)
    assert resp.status == 413
    data = await resp.json()
    assert data["error"] == "request body too large" and "body" in data["detail"]
    assert await stored_calls(db) == []


async def test_sip_metadata_the_databases_cannot_store_is_refused(
    api: AppClient, db: Database, clock: SettableClock
) -> None:
    """Found by schemathesis: a NUL in metadata text was a 500 on PostgreSQL (it cannot store \\u0000 in JSON)."""
    for metadata in ({"note": "a\x00b"}, {"a\x00": 1}, {"deep": [{"x": "\x00"}]}):
        data = await post(api, SIP, sip_event(clock, "call_ringing", metadata=metadata), 422)
        assert list(data["detail"]) == ["metadata"]
    assert await stored_calls(db) == []


async def make_call(db: Database, clock: SettableClock) -> uuid.UUID:
    store = CallStore(clock=clock)
    async with db.write() as s:
        call = await store.create(s, NewCall(CallDirection.INBOUND, "+14155550100", "1001"), EventSource.API)
        return call.id


async def stored_recordings(db: Database) -> list[CallRecording]:
    async with db.read() as s:
        return list((await s.execute(sa.select(CallRecording).order_by(CallRecording.created_at))).scalars())


async def test_recording_webhook_creates_then_updates(api: AppClient, db: Database, clock: SettableClock) -> None:
    call_id = await make_call(db, clock)
    created = await post(api, RECORDING, {"call_id": str(call_id), "status": "recording"}, 200)
    assert created["call"] == str(call_id) and created["status"] == "recording"
    done = {
        "call_id": str(call_id),
        "status": "completed",
        "file_url": "https://recordings.example.com/r/1.mp3",
        "local_path": "/var/spool/calld/1.mp3",
        "file_size": 482133,
        "duration": 120.5,
        "format": "mp3",
        "transcript": "Hello, thanks for calling.",
        "transcript_confidence": 0.91,
    }
    updated = await post(api, RECORDING, done, 200)
    assert updated["id"] == created["id"]
    [rec] = await stored_recordings(db)
    assert (rec.id, rec.call_id, rec.status) == (uuid.UUID(created["id"]), call_id, RecordingStatus.COMPLETED)
    assert (rec.external_url, rec.local_path, rec.file_size) == (
        "https://recordings.example.com/r/1.mp3",
        "/var/spool/calld/1.mp3",
        482133,
    )
    assert (rec.duration_seconds, rec.format, rec.transcript, rec.transcript_confidence) == (
        120.5,
        "mp3",
        "Hello, thanks for calling.",
        0.91,
    )
    assert updated["external_url"] == rec.external_url and updated["duration_seconds"] == 120.5
    # Fields not sent are kept; the named recording is updated.
    again = await post(
        api, RECORDING, {"call_id": str(call_id), "recording_id": created["id"], "status": "processing"}, 200
    )
    assert again["status"] == "processing" and again["transcript"] == "Hello, thanks for calling."


async def test_recording_webhook_errors(api: AppClient, db: Database, clock: SettableClock) -> None:
    call_id = await make_call(db, clock)
    unknown = uuid.uuid4()
    data = await post(api, RECORDING, {"call_id": str(unknown), "status": "completed"}, 404)
    assert data["detail"] == {"call_id": f"no call log with id {unknown}"}
    data = await post(
        api, RECORDING, {"call_id": str(call_id), "recording_id": str(unknown), "status": "completed"}, 404
    )
    assert set(data["detail"]) == {"recording_id"}
    bad = {
        "call_id": "nope",
        "status": "lost",
        "file_url": "ftp://x/y",
        "file_size": -1,
        "duration": -2,
        "format": "aiff",
        "transcript_confidence": 1.5,
    }
    data = await post(api, RECORDING, bad, 422)
    assert set(data["detail"]) == set(bad)
    assert await stored_recordings(db) == []

    await post(api, RECORDING, {"call_id": str(call_id), "status": "completed", "duration": 30}, 200)
    data = await post(api, RECORDING, {"call_id": str(call_id), "status": "pending", "duration": 1}, 409)
    assert data["error"] == "illegal recording status change"
    assert (data["current_status"], data["requested"]) == ("completed", "pending")
    await post(api, RECORDING, {"call_id": str(call_id), "status": "recording"}, 409)
    [rec] = await stored_recordings(db)
    assert (rec.status, rec.duration_seconds) == (RecordingStatus.COMPLETED, 30.0)

    await post(api, RECORDING, {"call_id": str(call_id), "status": "deleted"}, 200)
    await post(api, RECORDING, {"call_id": str(call_id), "status": "completed", "file_size": 5}, 409)
    [rec] = await stored_recordings(db)
    assert (rec.status, rec.file_size) == (RecordingStatus.DELETED, None)


async def test_recording_webhook_refuses_a_file_size_no_column_can_hold(
    api: AppClient, db: Database, clock: SettableClock
) -> None:
    """Found by schemathesis: a file size past 2**63 - 1 was a 500 (integer overflow on store)."""
    call_id = await make_call(db, clock)
    data = await post(api, RECORDING, {"call_id": str(call_id), "status": "recording", "file_size": 2**63}, 422)
    assert set(data["detail"]) == {"file_size"}
    largest = await post(api, RECORDING, {"call_id": str(call_id), "status": "recording", "file_size": 2**63 - 1}, 200)
    assert largest["file_size"] == 2**63 - 1


async def test_recording_webhook_updates_the_newest_recording(
    api: AppClient, db: Database, clock: SettableClock
) -> None:
    call_id = await make_call(db, clock)
    old_id, new_id = uuid.uuid4(), uuid.uuid4()
    async with db.write() as s:
        s.add(
            CallRecording(
                id=old_id,
                call_id=call_id,
                status=RecordingStatus.COMPLETED,
                created_at=datetime(2026, 11, 1, tzinfo=UTC),
            )
        )
        s.add(
            CallRecording(
                id=new_id, call_id=call_id, status=RecordingStatus.PENDING, created_at=datetime(2026, 11, 2, tzinfo=UTC)
            )
        )
    data = await post(api, RECORDING, {"call_id": str(call_id), "status": "recording"}, 200)
    assert data["id"] == str(new_id)
    statuses = {r.id: r.status for r in await stored_recordings(db)}
    assert statuses == {old_id: RecordingStatus.COMPLETED, new_id: RecordingStatus.RECORDING}


async def test_the_seeds_inbound_flow_step_by_step(api: AppClient, db: Database, clock: SettableClock) -> None:
    """As the seed writes it: webhook call_initiated, log_incoming_call (same SIP Call-ID), update_status
    to answered, start_recording, end_call. One call, each step stored once."""
    sip_call_id = "a84b4c76e66710@pbx.provider.example"
    announced = await post(api, SIP, sip_event(clock, "call_initiated"), 200)
    logged = await post(
        api,
        "/api/call-logs/log_incoming_call/",
        {"caller_number": "+14155550100", "recipient_number": "+12125550143", "sip_call_id": sip_call_id},
        200,
    )
    assert logged["id"] == announced["call"] and logged["status"] == "initiated"
    call = f"/api/call-logs/{logged['id']}/"
    answered = await api.patch(call + "update_status/", json={"status": "answered"})
    assert answered.status == 200, await answered.text()
    assert (await post(api, call + "start_recording/", {}, 200))["status"] == "recording"
    ended = await post(api, call + "end_call/", {}, 200)
    assert ended["status"] == "ended"
    # Ending a call that is recording stops its recording first (one event each, at the end's time).
    assert [e["event_type"] for e in ended["events"]] == [
        "initiated",
        "answered",
        "recording_started",
        "recording_stopped",
        "ended",
    ]
    assert ended["events"][-2]["metadata"] == {"reason": "call_ended"}
    assert ended["recording"]["stopped_at"] == ended["ended_at"]
    assert len(await stored_calls(db)) == 1

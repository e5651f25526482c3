"""Whole call flows over HTTP, step by step, with exact derived timestamps and durations."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp import ClientResponse

from calld.storage.database import Database
from calld.storage.models import CallEvent, CallLog, CallRecording, SipConfiguration
from tests.support import AppClient, SettableClock

BASE = "/api/call-logs/"


async def ok(resp: ClientResponse, status: int = 200) -> dict[str, Any]:
    body = await resp.json()
    assert resp.status == status, body
    assert isinstance(body, dict)
    return body


async def step(
    api: AppClient, clock: SettableClock, seconds: float, call_id: str, action: str, **json: Any
) -> dict[str, Any]:
    """Advance the clock, then POST an action (or PATCH update_status when ``status`` is given)."""
    clock.advance(seconds)
    if action == "update_status":
        return await ok(await api.patch(f"{BASE}{call_id}/update_status/", json=json))
    return await ok(await api.post(f"{BASE}{call_id}/{action}/", json=json or None))


async def stored(db: Database, call_id: str) -> tuple[CallLog, list[CallEvent], list[CallRecording]]:
    cid = uuid.UUID(call_id)
    async with db.read() as s:
        call = await s.get(CallLog, cid)
        assert call is not None
        events = list(
            (await s.execute(sa.select(CallEvent).where(CallEvent.call_id == cid).order_by(CallEvent.id))).scalars()
        )
        recs = list((await s.execute(sa.select(CallRecording).where(CallRecording.call_id == cid))).scalars())
    return call, events, recs


def stamps(body: dict[str, Any]) -> list[tuple[str, str]]:
    return [(e["event_type"], e["timestamp"]) for e in body["events"]]


async def test_outbound_flow(api: AppClient, db: Database, clock: SettableClock) -> None:
    async with db.write() as s:
        s.add(SipConfiguration(name="main", server="pbx.example", username="1001", is_default=True))
    call = await ok(await api.post(f"{BASE}initiate_call/", json={"recipient_number": "+14155550199"}), 201)
    cid = call["id"]
    assert (call["status"], call["caller_number"], call["direction"]) == ("initiated", "1001", "outbound")

    body = await step(api, clock, 2, cid, "update_status", status="ringing")
    assert body["status"] == "ringing" and body["ringing_at"] == "2026-11-24T12:00:02Z"
    body = await step(api, clock, 5, cid, "update_status", status="answered")
    assert body["status"] == "answered" and body["answered_at"] == "2026-11-24T12:00:07Z"
    assert body["ring_seconds"] == 5.0
    body = await step(api, clock, 10, cid, "toggle_hold")
    assert body["status"] == "on_hold" and body["on_hold_since"] == "2026-11-24T12:00:17Z"
    body = await step(api, clock, 7, cid, "toggle_hold")
    assert body["status"] == "answered" and body["on_hold_since"] is None and body["hold_seconds"] == 7.0
    body = await step(api, clock, 3, cid, "start_recording")
    assert body["status"] == "recording" and body["recording"]["status"] == "recording"
    body = await step(api, clock, 20, cid, "stop_recording")
    assert body["status"] == "answered" and body["recording"]["status"] == "processing"
    body = await step(api, clock, 4, cid, "transfer_call", transfer_to="(415) 555-0142")
    assert body["status"] == "transferred" and body["transfer_target"] == "+14155550142"
    body = await step(api, clock, 30, cid, "end_call")

    assert body["status"] == "ended"
    assert body["ended_at"] == "2026-11-24T12:01:21Z"
    assert body["duration_seconds"] == 74.0  # answered 12:00:07 → ended 12:01:21
    assert body["ring_seconds"] == 5.0 and body["hold_seconds"] == 7.0
    assert stamps(body) == [
        ("initiated", "2026-11-24T12:00:00Z"),
        ("ringing", "2026-11-24T12:00:02Z"),
        ("answered", "2026-11-24T12:00:07Z"),
        ("hold", "2026-11-24T12:00:17Z"),
        ("unhold", "2026-11-24T12:00:24Z"),
        ("recording_started", "2026-11-24T12:00:27Z"),
        ("recording_stopped", "2026-11-24T12:00:47Z"),
        ("transfer_initiated", "2026-11-24T12:00:51Z"),
        ("ended", "2026-11-24T12:01:21Z"),
    ]
    assert body["events"][-2]["metadata"] == {"transfer_to": "+14155550142", "attended": False}
    assert body["events"][-1]["metadata"] == {}

    call_row, events, recs = await stored(db, cid)
    assert call_row.status.value == "ended"
    assert call_row.ended_at is not None and call_row.answered_at is not None
    assert (call_row.ended_at - call_row.answered_at).total_seconds() == call_row.duration_seconds == 74.0
    assert len(events) == 9 and all(e.source.value == "api" for e in events)
    assert [(r.status.value, r.format) for r in recs] == [("processing", "wav")]
    assert (await ok(await api.get(f"{BASE}{cid}/"))) == body


async def test_inbound_flow(api: AppClient, db: Database, clock: SettableClock) -> None:
    call = await ok(
        await api.post(
            f"{BASE}log_incoming_call/",
            json={"caller_number": "+14155550100", "recipient_number": "1001", "sip_call_id": "in@pbx"},
        ),
        201,
    )
    cid = call["id"]
    assert call["direction"] == "inbound" and call["status"] == "initiated"
    await step(api, clock, 1, cid, "update_status", status="ringing")
    body = await step(api, clock, 6, cid, "update_status", status="answered")
    assert body["ring_seconds"] == 6.0
    body = await step(api, clock, 45, cid, "end_call")
    assert body["status"] == "ended" and body["duration_seconds"] == 45.0 and body["hold_seconds"] == 0.0
    assert (body["started_at"], body["ringing_at"], body["answered_at"], body["ended_at"]) == (
        "2026-11-24T12:00:00Z",
        "2026-11-24T12:00:01Z",
        "2026-11-24T12:00:07Z",
        "2026-11-24T12:00:52Z",
    )
    assert [e["event_type"] for e in body["events"]] == ["initiated", "ringing", "answered", "ended"]
    _, events, _ = await stored(db, cid)
    assert len(events) == 4


async def test_recording_survives_hold(api: AppClient, db: Database, clock: SettableClock) -> None:
    call = await ok(
        await api.post(f"{BASE}initiate_call/", json={"recipient_number": "1002", "caller_number": "1001"}), 201
    )
    cid = call["id"]
    await step(api, clock, 1, cid, "update_status", status="answered")
    await step(api, clock, 1, cid, "start_recording")
    body = await step(api, clock, 5, cid, "toggle_hold")
    assert body["status"] == "on_hold" and body["is_recording"] is True
    body = await step(api, clock, 4, cid, "toggle_hold")
    assert body["status"] == "recording" and body["hold_seconds"] == 4.0
    body = await step(api, clock, 2, cid, "toggle_hold")
    body = await step(api, clock, 3, cid, "end_call")
    assert body["status"] == "ended" and body["hold_seconds"] == 7.0 and body["duration_seconds"] == 15.0
    assert body["is_recording"] is False and body["recording"]["status"] == "processing"


@pytest.mark.parametrize(
    ("direction", "steps", "final"),
    [
        # inbound rings out: end_call on an unanswered inbound call is a missed call
        ("inbound", [("update_status", {"status": "ringing"}), ("end_call", {})], "missed"),
        # outbound caller gives up: cancelled
        ("outbound", [("update_status", {"status": "ringing"}), ("end_call", {})], "cancelled"),
        ("outbound", [("update_status", {"status": "ringing"}), ("update_status", {"status": "busy"})], "busy"),
        (
            "outbound",
            [("update_status", {"status": "ringing"}), ("update_status", {"status": "no_answer"})],
            "no_answer",
        ),
        ("inbound", [("update_status", {"status": "missed"})], "missed"),
        ("outbound", [("update_status", {"status": "failed"})], "failed"),
    ],
)
async def test_unanswered_endings(
    api: AppClient,
    db: Database,
    clock: SettableClock,
    direction: str,
    steps: list[tuple[str, dict[str, Any]]],
    final: str,
) -> None:
    call = await ok(
        await api.post(
            BASE, json={"direction": direction, "caller_number": "+14155550100", "recipient_number": "1001"}
        ),
        201,
    )
    body = call
    for action, json in steps:
        body = await step(api, clock, 4, call["id"], action, **json)
    assert body["status"] == final
    assert body["answered_at"] is None
    assert body["ended_at"] == f"2026-11-24T12:00:{4 * len(steps):02d}Z"
    assert body["duration_seconds"] == 0.0
    assert body["ring_seconds"] == 4.0  # from ringing (or the start, if it never rang) to the end
    # A status asked for by name is recorded as the outcome of the ended event; end_call lets the domain decide.
    by_name = steps[-1][0] == "update_status" and final != "failed"
    assert body["events"][-1]["metadata"] == ({"outcome": final} if by_name else {})
    row, events, _ = await stored(db, call["id"])
    assert row.status.value == final and len(events) == len(steps) + 1


ACTIONS: list[tuple[str, dict[str, Any] | None]] = [
    ("update_status", {"status": "answered"}),
    ("update_status", {"status": "ringing"}),
    ("update_status", {"status": "ended"}),
    ("end_call", None),
    ("toggle_hold", None),
    ("start_recording", None),
    ("stop_recording", None),
    ("transfer_call", {"transfer_to": "1002"}),
    ("add_event", {"event_type": "hold"}),
    ("add_event", {"event_type": "dtmf"}),
]


@pytest.mark.parametrize("ending", ["ended", "missed", "busy", "no_answer", "cancelled", "failed"])
async def test_finished_calls_refuse_every_change(api: AppClient, db: Database, ending: str) -> None:
    call = await ok(
        await api.post(BASE, json={"direction": "inbound", "caller_number": "1009", "recipient_number": "1001"}), 201
    )
    cid = call["id"]
    if ending == "ended":
        await ok(await api.patch(f"{BASE}{cid}/update_status/", json={"status": "answered"}))
    final = await ok(await api.patch(f"{BASE}{cid}/update_status/", json={"status": ending}))
    for action, json in ACTIONS:
        if action == "update_status":
            resp = await api.patch(f"{BASE}{cid}/update_status/", json=json)
        else:
            resp = await api.post(f"{BASE}{cid}/{action}/", json=json)
        body = await resp.json()
        assert resp.status == 409, (action, json, body)
        assert body["error"] == "illegal status transition" and "status" in body["detail"]
        assert body["current_status"] == ending
        assert isinstance(body["requested"], str)
    after = await ok(await api.get(f"{BASE}{cid}/"))
    assert after == final
    _, events, recs = await stored(db, cid)
    assert len(events) == len(final["events"]) and recs == []


async def test_illegal_transitions_name_current_and_requested(api: AppClient, db: Database) -> None:
    call = await ok(
        await api.post(BASE, json={"direction": "outbound", "caller_number": "1001", "recipient_number": "1002"}), 201
    )
    cid = call["id"]
    for requested in ("on_hold", "recording", "transferred", "ended", "initiated"):
        resp = await api.patch(f"{BASE}{cid}/update_status/", json={"status": requested})
        body = await resp.json()
        assert resp.status == 409
        assert (body["current_status"], body["requested"]) == ("initiated", requested)
    resp = await api.post(f"{BASE}{cid}/toggle_hold/")
    body = await resp.json()
    assert resp.status == 409 and (body["current_status"], body["requested"]) == ("initiated", "hold")
    await ok(await api.patch(f"{BASE}{cid}/update_status/", json={"status": "answered"}))
    resp = await api.patch(f"{BASE}{cid}/update_status/", json={"status": "ringing"})
    body = await resp.json()
    assert resp.status == 409 and (body["current_status"], body["requested"]) == ("answered", "ringing")
    _, events, _ = await stored(db, cid)
    assert [e.event_type.value for e in events] == ["initiated", "answered"]

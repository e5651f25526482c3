"""The call-logs API over real HTTP on both databases: CRUD, actions, errors, lists."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp import ClientResponse
from yarl import URL

from calld.http.app import create_app
from calld.service.wiring import Services
from calld.storage.database import Database
from calld.storage.models import CallEvent, CallLog, CallRecording, Client, ClientPhoneNumber, SipConfiguration
from tests.fakes.switch import FakeSwitch
from tests.support import AppClient, SettableClock

BASE = "/api/call-logs/"
T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


# --- helpers ---------------------------------------------------------------------------------


async def expect_error(resp: ClientResponse, status: int, *fields: str) -> dict[str, Any]:
    """Assert the JSON error shape, the status, and that ``fields`` are named in the detail."""
    body = await resp.json()
    assert resp.status == status, body
    assert isinstance(body, dict)
    assert isinstance(body["error"], str) and isinstance(body["detail"], dict)
    for name in fields:
        assert name in body["detail"], body
    return body


async def created(resp: ClientResponse) -> dict[str, Any]:
    body = await resp.json()
    assert resp.status == 201, body
    assert isinstance(body, dict)
    return body


async def ok(resp: ClientResponse) -> dict[str, Any]:
    body = await resp.json()
    assert resp.status == 200, body
    assert isinstance(body, dict)
    return body


async def new_call(api: AppClient, **fields: Any) -> dict[str, Any]:
    payload = {"direction": "inbound", "caller_number": "+14155550100", "recipient_number": "1001", **fields}
    return await created(await api.post(BASE, json=payload))


async def set_status(api: AppClient, call_id: str, status: str) -> dict[str, Any]:
    return await ok(await api.patch(f"{BASE}{call_id}/update_status/", json={"status": status}))


async def count(db: Database, model: type[Any]) -> int:
    async with db.read() as s:
        return int((await s.execute(sa.select(sa.func.count()).select_from(model))).scalar_one())


async def stored_call(db: Database, call_id: str) -> CallLog:
    async with db.read() as s:
        call = await s.get(CallLog, uuid.UUID(call_id))
        assert call is not None
        return call


async def event_types(db: Database, call_id: str) -> list[str]:
    async with db.read() as s:
        stmt = sa.select(CallEvent.event_type).where(CallEvent.call_id == uuid.UUID(call_id)).order_by(CallEvent.id)
        return [e.value for e in (await s.execute(stmt)).scalars()]


async def add_client(db: Database, name: str, *numbers: str) -> uuid.UUID:
    async with db.write() as s:
        client = Client(
            name=name, phone_numbers=[ClientPhoneNumber(number=n, position=i) for i, n in enumerate(numbers)]
        )
        s.add(client)
        await s.flush()
        return client.id


async def add_sip_config(db: Database, name: str, username: str, *, default: bool, active: bool = True) -> uuid.UUID:
    async with db.write() as s:
        conf = SipConfiguration(name=name, server="pbx.example", username=username, is_default=default, active=active)
        s.add(conf)
        await s.flush()
        return conf.id


# --- create ----------------------------------------------------------------------------------


async def test_create_call_normalises_numbers_and_starts_initiated(
    api: AppClient, db: Database, clock: SettableClock
) -> None:
    body = await new_call(
        api, direction="outbound", caller_number="1001", recipient_number="(415) 555-0199", sip_call_id=" c1@pbx "
    )
    assert body["status"] == "initiated"
    assert body["direction"] == "outbound"
    assert body["call_type"] == "voice"
    assert body["caller_number"] == "1001"
    assert body["recipient_number"] == "+14155550199"
    assert body["sip_call_id"] == "c1@pbx"
    assert body["started_at"] == "2026-11-24T12:00:00Z"
    assert body["answered_at"] is None and body["ended_at"] is None and body["duration_seconds"] is None
    assert [e["event_type"] for e in body["events"]] == ["initiated"]
    assert body["events"][0]["source"] == "api"
    assert body["recordings"] == [] and body["recording"] is None
    call = await stored_call(db, body["id"])
    assert call.started_at == clock.now
    assert call.recipient_number == "+14155550199"
    assert await event_types(db, body["id"]) == ["initiated"]


async def test_create_call_with_client_and_sip_configuration(api: AppClient, db: Database) -> None:
    client_id = await add_client(db, "Acme")
    conf_id = await add_sip_config(db, "main", "1001", default=True)
    body = await new_call(
        api, client=str(client_id), sip_configuration=str(conf_id), call_type="video", notes="first contact"
    )
    assert body["client"] == str(client_id)
    assert body["sip_configuration"] == str(conf_id)
    assert body["call_type"] == "video"
    assert body["notes"] == "first contact"


async def test_create_call_matches_client_by_far_number(api: AppClient, db: Database) -> None:
    client_id = await add_client(db, "Acme", "+14155550100")
    body = await new_call(api, caller_number="+1 415 555 0100")
    assert body["client"] == str(client_id)


async def test_create_rejects_malformed_json(api: AppClient, db: Database) -> None:
    for raw in (b"{", b"", b"[1, 2]", b'"text"', b"\xff\xfe"):
        resp = await api.post(BASE, data=raw, headers={"Content-Type": "application/json"})
        await expect_error(resp, 400, "body")
    assert await count(db, CallLog) == 0


async def test_create_rejects_client_set_state_and_unknown_fields(api: AppClient, db: Database) -> None:
    payload = {
        "direction": "inbound",
        "caller_number": "+14155550100",
        "recipient_number": "1001",
        "status": "answered",
        "started_at": "2026-01-01T00:00:00Z",
        "duration_seconds": 10,
        "colour": "blue",
    }
    body = await expect_error(await api.post(BASE, json=payload), 422, "status", "started_at", "duration_seconds")
    assert "update_status" in body["detail"]["status"]
    assert "unknown field" in body["detail"]["colour"]
    assert await count(db, CallLog) == 0


async def test_create_names_every_bad_field(api: AppClient, db: Database) -> None:
    payload = {
        "direction": "sideways",
        "call_type": 3,
        "caller_number": ["+14155550100"],  # any text is a presented number, a list is not
        "recipient_number": 14155550100,
        "client": "nope",
        "sip_configuration": 12,
        "notes": ["x"],
        "sip_call_id": "a\x00b",
    }
    body = await expect_error(await api.post(BASE, json=payload), 422, *payload)
    assert body["error"] == "validation failed"
    missing = await expect_error(await api.post(BASE, json={}), 422, "direction", "caller_number", "recipient_number")
    assert missing["detail"]["direction"] == "this field is required"
    await expect_error(await api.post(BASE, json={"direction": None}), 422, "direction")
    assert await count(db, CallLog) == 0


async def test_create_rejects_unknown_references_and_duplicate_sip_call_id(api: AppClient, db: Database) -> None:
    missing = str(uuid.uuid4())
    resp = await api.post(
        BASE,
        json={
            "direction": "inbound",
            "caller_number": "+14155550100",
            "recipient_number": "1001",
            "client": missing,
            "sip_configuration": missing,
        },
    )
    await expect_error(resp, 422, "client", "sip_configuration")
    assert await count(db, CallLog) == 0
    first = await new_call(api, sip_call_id="dup@pbx")
    resp = await api.post(
        BASE,
        json={
            "direction": "inbound",
            "caller_number": "+14155550100",
            "recipient_number": "1001",
            "sip_call_id": "dup@pbx",
            "notes": "logged again",
        },
    )
    # The call with that SIP Call-ID is logged already: it is answered (200), what it lacked filled in,
    # nothing stored twice.
    assert resp.status == 200, await resp.text()
    again = await resp.json()
    assert again["id"] == first["id"] and again["notes"] == "logged again"
    assert await count(db, CallLog) == 1
    assert await count(db, CallEvent) == 1


# --- detail, patch, delete -------------------------------------------------------------------


async def test_detail_and_not_found(api: AppClient) -> None:
    call = await new_call(api)
    body = await ok(await api.get(f"{BASE}{call['id']}/"))
    assert body == call
    await expect_error(await api.get(f"{BASE}not-a-uuid/"), 404, "id")
    await expect_error(await api.get(f"{BASE}{uuid.uuid4()}/"), 404, "id")
    await expect_error(await api.patch(f"{BASE}{uuid.uuid4()}/", json={"notes": "x"}), 404, "id")
    await expect_error(await api.delete(f"{BASE}12345/"), 404, "id")
    await expect_error(await api.post(f"{BASE}{uuid.uuid4()}/end_call/"), 404, "id")


async def test_patch_changes_only_the_allowed_fields(api: AppClient, db: Database) -> None:
    client_id = await add_client(db, "Acme")
    call = await new_call(api)
    url = f"{BASE}{call['id']}/"
    body = await ok(
        await api.patch(url, json={"notes": "  called back  ", "call_quality_score": 4, "client": str(client_id)})
    )
    assert body["notes"] == "called back"
    assert body["call_quality_score"] == 4.0
    assert body["client"] == str(client_id)
    body = await ok(await api.patch(url, json={"client": None, "call_quality_score": None, "notes": ""}))
    assert body["client"] is None and body["call_quality_score"] is None and body["notes"] == ""
    stored = await stored_call(db, call["id"])
    assert stored.client_id is None and stored.notes == "" and stored.call_quality_score is None
    assert await event_types(db, call["id"]) == ["initiated"]


async def test_patch_rejections_store_nothing(api: AppClient, db: Database) -> None:
    call = await new_call(api, notes="keep")
    url = f"{BASE}{call['id']}/"
    await expect_error(await api.patch(url, json={"call_quality_score": 5.01}), 422, "call_quality_score")
    await expect_error(await api.patch(url, json={"call_quality_score": -1}), 422, "call_quality_score")
    await expect_error(await api.patch(url, json={"call_quality_score": "4"}), 422, "call_quality_score")
    await expect_error(await api.patch(url, json={"call_quality_score": True}), 422, "call_quality_score")
    await expect_error(await api.patch(url, json={"status": "ended", "notes": "x"}), 422, "status")
    await expect_error(await api.patch(url, json={"answered_at": "2026-11-24T12:00:00Z"}), 422, "answered_at")
    await expect_error(await api.patch(url, json={"direction": "outbound"}), 422, "direction")
    await expect_error(await api.patch(url, json={"notes": None}), 422, "notes")
    await expect_error(await api.patch(url, json={"notes": "x" * 10_001}), 422, "notes")
    await expect_error(await api.patch(url, json={"client": str(uuid.uuid4()), "notes": "y"}), 422, "client")
    await expect_error(await api.patch(url, json={"sip_configuration": "zzz"}), 422, "sip_configuration")
    await expect_error(await api.patch(url, data=b"{bad", headers={"Content-Type": "application/json"}), 400, "body")
    stored = await stored_call(db, call["id"])
    assert stored.notes == "keep" and stored.call_quality_score is None and stored.status.value == "initiated"


async def test_delete_cascades_to_events_and_recordings(api: AppClient, db: Database) -> None:
    keep = await new_call(api)
    call = await new_call(api)
    for status in ("answered", "recording"):
        await set_status(api, call["id"], status)
    assert await count(db, CallRecording) == 1
    resp = await api.delete(f"{BASE}{call['id']}/")
    assert resp.status == 204
    assert await count(db, CallLog) == 1
    assert await count(db, CallEvent) == 1
    assert await count(db, CallRecording) == 0
    await expect_error(await api.delete(f"{BASE}{call['id']}/"), 404, "id")
    await ok(await api.get(f"{BASE}{keep['id']}/"))


# --- initiate_call and log_incoming_call ----------------------------------------------------


async def test_initiate_call_uses_the_default_sip_configuration(api: AppClient, db: Database) -> None:
    conf_id = await add_sip_config(db, "main", "1001", default=True)
    await add_sip_config(db, "other", "2002", default=False)
    body = await created(await api.post(f"{BASE}initiate_call/", json={"recipient_number": "415-555-0199"}))
    assert body["direction"] == "outbound"
    assert body["status"] == "initiated"
    assert body["caller_number"] == "1001"
    assert body["recipient_number"] == "+14155550199"
    assert body["sip_configuration"] == str(conf_id)
    assert body["switch"] is None
    assert [e["event_type"] for e in body["events"]] == ["initiated"]


async def test_initiate_call_with_explicit_configuration_and_caller(api: AppClient, db: Database) -> None:
    await add_sip_config(db, "main", "1001", default=True)
    other = await add_sip_config(db, "other", "2002", default=False)
    body = await created(
        await api.post(
            f"{BASE}initiate_call/",
            json={
                "recipient_number": "1002",
                "sip_configuration": str(other),
                "caller_number": "+44 20 7946 0958",
                "call_type": "video",
            },
        )
    )
    assert body["sip_configuration"] == str(other)
    assert body["caller_number"] == "+442079460958"
    assert body["recipient_number"] == "1002"
    assert body["call_type"] == "video"


async def test_initiate_call_needs_a_caller(api: AppClient, db: Database) -> None:
    url = f"{BASE}initiate_call/"
    await expect_error(await api.post(url, json={"recipient_number": "1002"}), 422, "caller_number")
    body = await created(await api.post(url, json={"recipient_number": "1002", "caller_number": "1001"}))
    assert body["sip_configuration"] is None
    await add_sip_config(db, "main", "alice", default=True)
    body = await expect_error(await api.post(url, json={"recipient_number": "1002"}), 422, "caller_number")
    assert "alice" in body["detail"]["caller_number"]
    inactive = await add_sip_config(db, "old", "1003", default=False, active=False)
    await expect_error(
        await api.post(url, json={"recipient_number": "1002", "sip_configuration": str(inactive)}),
        422,
        "sip_configuration",
    )
    await expect_error(
        await api.post(url, json={"recipient_number": "1002", "sip_configuration": str(uuid.uuid4())}),
        422,
        "sip_configuration",
    )
    await expect_error(await api.post(url, json={"caller_number": "1001"}), 422, "recipient_number")
    await expect_error(await api.post(url, json={"recipient_number": "12", "direction": "inbound"}), 422, "direction")
    assert await count(db, CallLog) == 1


async def test_log_incoming_call_and_duplicate(api: AppClient, db: Database) -> None:
    url = f"{BASE}log_incoming_call/"
    payload = {"caller_number": "+14155550100", "recipient_number": "1001", "sip_call_id": "in-1@pbx"}
    body = await created(await api.post(url, json=payload))
    assert body["direction"] == "inbound" and body["status"] == "initiated" and body["sip_call_id"] == "in-1@pbx"
    again = await api.post(url, json=payload)
    assert again.status == 200 and (await again.json())["id"] == body["id"]  # the same call, stored once
    await expect_error(await api.post(url, json={**payload, "sip_call_id": None}), 422, "sip_call_id")
    await expect_error(
        await api.post(url, json={"caller_number": "x\r\nInjected: 1", "recipient_number": "1001"}),
        422,
        "caller_number",
        "sip_call_id",
    )
    assert await count(db, CallLog) == 1


# --- status and actions ----------------------------------------------------------------------


async def test_update_status_with_notes_and_score(api: AppClient, db: Database, clock: SettableClock) -> None:
    call = await new_call(api)
    clock.advance(3)
    body = await ok(
        await api.patch(
            f"{BASE}{call['id']}/update_status/", json={"status": "answered", "notes": "n", "call_quality_score": 3.5}
        )
    )
    assert body["status"] == "answered"
    assert body["answered_at"] == "2026-11-24T12:00:03Z"
    assert body["ring_seconds"] == 3.0
    assert body["notes"] == "n" and body["call_quality_score"] == 3.5
    assert await event_types(db, call["id"]) == ["initiated", "answered"]


async def test_illegal_status_change_is_409_and_stores_nothing(api: AppClient, db: Database) -> None:
    call = await new_call(api)
    await set_status(api, call["id"], "missed")
    url = f"{BASE}{call['id']}/update_status/"
    body = await expect_error(await api.patch(url, json={"status": "answered", "notes": "late"}), 409, "status")
    assert body["current_status"] == "missed" and body["requested"] == "answered"
    await expect_error(await api.patch(url, json={"status": "bogus"}), 422, "status")
    await expect_error(await api.patch(url, json={}), 422, "status")
    await expect_error(await api.patch(url, json={"status": "ended", "extra": 1}), 422, "extra")
    stored = await stored_call(db, call["id"])
    assert stored.status.value == "missed" and stored.notes == ""
    assert await event_types(db, call["id"]) == ["initiated", "ended"]


async def test_update_status_refuses_a_change_that_lands_elsewhere(api: AppClient, db: Database) -> None:
    call = await new_call(api)
    for status in ("answered", "recording", "on_hold"):
        await set_status(api, call["id"], status)
    # Un-holding a call that records resumes recording: asking for "answered" is refused, not bent.
    body = await expect_error(
        await api.patch(f"{BASE}{call['id']}/update_status/", json={"status": "answered"}), 409, "status"
    )
    assert body["current_status"] == "on_hold" and body["requested"] == "answered"
    assert (await stored_call(db, call["id"])).status.value == "on_hold"
    assert (await set_status(api, call["id"], "recording"))["status"] == "recording"


async def test_add_event(api: AppClient, db: Database, clock: SettableClock) -> None:
    call = await new_call(api)
    await set_status(api, call["id"], "answered")
    url = f"{BASE}{call['id']}/add_event/"
    clock.advance(5)
    body = await created(await api.post(url, json={"event_type": "dtmf", "metadata": {"digit": "5"}}))
    assert body["event_type"] == "dtmf" and body["metadata"] == {"digit": "5"} and body["source"] == "api"
    assert body["timestamp"] == "2026-11-24T12:00:05Z" and body["call"] == call["id"]
    body = await created(await api.post(url, json={"event_type": "quality_change", "metadata": {"score": 4.2}}))
    assert (await stored_call(db, call["id"])).call_quality_score == 4.2
    body = await created(await api.post(url, json={"event_type": "muted"}))
    assert body["metadata"] == {}
    assert await event_types(db, call["id"]) == ["initiated", "answered", "dtmf", "quality_change", "muted"]


async def test_add_event_rejections(api: AppClient, db: Database) -> None:
    call = await new_call(api)
    url = f"{BASE}{call['id']}/add_event/"
    await expect_error(await api.post(url, json={"event_type": "initiated"}), 422, "event_type")
    await expect_error(await api.post(url, json={"event_type": "exploded"}), 422, "event_type")
    await expect_error(await api.post(url, json={"metadata": {}}), 422, "event_type")
    await expect_error(await api.post(url, json={"event_type": "dtmf", "metadata": [1]}), 422, "metadata")
    await expect_error(await api.post(url, json={"event_type": "dtmf", "when": "now"}), 422, "when")
    nan = b'{"event_type": "dtmf", "metadata": {"x": NaN}}'
    await expect_error(await api.post(url, data=nan, headers={"Content-Type": "application/json"}), 400, "body")
    await expect_error(await api.post(url, json={"event_type": "dtmf", "metadata": {"x": "a\x00"}}), 422, "metadata")
    await expect_error(await api.post(url, json={"event_type": "ended", "metadata": {"outcome": "exploded"}}), 422)
    await expect_error(await api.post(url, json={"event_type": "quality_change", "metadata": {"score": 9}}), 422)
    body = await expect_error(await api.post(url, json={"event_type": "muted"}), 409, "status")
    assert body["current_status"] == "initiated"
    await set_status(api, call["id"], "cancelled")
    await expect_error(await api.post(url, json={"event_type": "dtmf"}), 409, "status")
    assert await event_types(db, call["id"]) == ["initiated", "ended"]


async def test_recording_lifecycle(api: AppClient, db: Database) -> None:
    call = await new_call(api)
    cid = call["id"]
    await expect_error(await api.post(f"{BASE}{cid}/start_recording/"), 409, "status")
    await set_status(api, cid, "answered")
    body = await ok(await api.post(f"{BASE}{cid}/start_recording/"))
    assert body["status"] == "recording" and body["is_recording"] is True
    assert body["recording"]["status"] == "recording" and body["recording"]["format"] == "wav"
    # No switch records it: the answer says what will complete the recording.
    started = body["events"][-1]
    assert started["event_type"] == "recording_started"
    assert "POST /api/webhooks/recording/" in started["metadata"]["completed_by"]
    await expect_error(await api.post(f"{BASE}{cid}/start_recording/"), 409, "status")
    body = await ok(await api.post(f"{BASE}{cid}/stop_recording/", json={}))
    assert body["status"] == "answered" and body["is_recording"] is False
    assert [r["status"] for r in body["recordings"]] == ["processing"]
    await expect_error(await api.post(f"{BASE}{cid}/stop_recording/"), 409, "status")
    await ok(await api.post(f"{BASE}{cid}/start_recording/"))
    body = await ok(await api.post(f"{BASE}{cid}/end_call/"))
    assert body["status"] == "ended" and body["is_recording"] is False
    # Ending a recording call stores recording_stopped too; no file is known, so the recording
    # system's webhook still completes each one (its length meanwhile from its start and stop).
    assert [e["event_type"] for e in body["events"]][-3:] == ["recording_started", "recording_stopped", "ended"]
    assert [r["status"] for r in body["recordings"]] == ["processing", "processing"]
    assert all(r["duration_seconds"] == 0.0 and r["stopped_at"] for r in body["recordings"])  # the clock stood
    assert await count(db, CallRecording) == 2


async def test_actions_reject_bodies_with_fields(api: AppClient, db: Database) -> None:
    call = await new_call(api)
    await set_status(api, call["id"], "answered")
    for action in ("end_call", "start_recording", "stop_recording", "toggle_hold"):
        await expect_error(await api.post(f"{BASE}{call['id']}/{action}/", json={"force": True}), 422, "force")
        await expect_error(
            await api.post(f"{BASE}{call['id']}/{action}/", data=b"nope", headers={"Content-Type": "application/json"}),
            400,
            "body",
        )
    assert await event_types(db, call["id"]) == ["initiated", "answered"]


async def test_transfer_and_hold_rejections(api: AppClient, db: Database) -> None:
    call = await new_call(api)
    cid = call["id"]
    body = await expect_error(
        await api.post(f"{BASE}{cid}/transfer_call/", json={"transfer_to": "1002"}), 409, "status"
    )
    assert body["current_status"] == "initiated"
    body = await expect_error(await api.post(f"{BASE}{cid}/toggle_hold/"), 409, "status")
    assert body["current_status"] == "initiated"
    await set_status(api, cid, "answered")
    url = f"{BASE}{cid}/transfer_call/"
    await expect_error(await api.post(url, json={}), 422, "transfer_to")
    await expect_error(await api.post(url, json={"transfer_to": "banana"}), 422, "transfer_to")
    await expect_error(await api.post(url, json={"transfer_to": "1002", "attended": "maybe"}), 422, "attended")
    body = await ok(await api.post(url, json={"transfer_to": "1002", "attended": True}))
    assert body["status"] == "transferred" and body["transfer_target"] == "1002"
    assert body["events"][-1]["metadata"] == {"transfer_to": "1002", "attended": True}
    await expect_error(await api.post(url, json={"transfer_to": "1003"}), 409, "status")
    assert await event_types(db, cid) == ["initiated", "answered", "transfer_initiated"]


async def test_fixed_paths_are_not_taken_for_ids(api: AppClient) -> None:
    await ok(await api.get(f"{BASE}statistics/"))
    await expect_error(await api.post(f"{BASE}statistics/"), 405)
    await expect_error(await api.get(f"{BASE}initiate_call/"), 405)  # a POST-only action, not an id


# --- list ------------------------------------------------------------------------------------


async def make_list_data(api: AppClient, db: Database, clock: SettableClock) -> tuple[list[str], uuid.UUID]:
    """Six calls one minute apart, with known statuses, directions, types, numbers and durations."""
    client_id = await add_client(db, "Acme", "+14155550111")
    specs: list[tuple[str, str, str, str, list[str], float]] = [
        # direction, caller, recipient, type, statuses, seconds answered before ending
        ("inbound", "+14155550111", "1001", "voice", ["ringing", "answered", "ended"], 30),
        ("outbound", "1001", "+14155550122", "voice", ["ringing", "no_answer"], 0),
        ("inbound", "+14155550133", "1002", "video", ["missed"], 0),
        ("outbound", "1002", "+14155550111", "voice", ["answered", "ended"], 90),
        ("inbound", "+14155550144", "1001", "conference", ["ringing", "busy"], 0),
        ("outbound", "1001", "+14155550155", "voice", ["ringing", "answered"], 0),
    ]
    ids = []
    for direction, caller, recipient, call_type, statuses, talk in specs:
        call = await new_call(
            api, direction=direction, caller_number=caller, recipient_number=recipient, call_type=call_type
        )
        for status in statuses:
            if status == "ended":
                clock.advance(talk)
            await set_status(api, call["id"], status)
        ids.append(call["id"])
        clock.now = T0.replace(minute=len(ids))
    return ids, client_id


async def list_ids(api: AppClient, query: str) -> list[str]:
    body = await ok(await api.get(f"{BASE}?{query}"))
    return [c["id"] for c in body["results"]]


async def test_list_filters(api: AppClient, db: Database, clock: SettableClock) -> None:
    ids, client_id = await make_list_data(api, db, clock)
    c = ids
    body = await ok(await api.get(BASE))
    assert body["count"] == 6 and body["next"] is None and body["previous"] is None
    assert [r["id"] for r in body["results"]] == list(reversed(c))
    assert "events" not in body["results"][0] and body["results"][0]["status"] == "answered"
    assert await list_ids(api, "status=missed&status=no_answer") == [c[2], c[1]]
    assert await list_ids(api, "status=missed,busy") == [c[4], c[2]]
    assert await list_ids(api, "direction=outbound") == [c[5], c[3], c[1]]
    assert await list_ids(api, "call_type=video,conference") == [c[4], c[2]]
    assert await list_ids(api, "direction=inbound&status=ended") == [c[0]]
    assert await list_ids(api, "number=(415) 555-0111") == [c[3], c[0]]
    assert await list_ids(api, "number=1002") == [c[3], c[2]]
    assert await list_ids(api, f"client={client_id}") == [c[3], c[0]]
    assert await list_ids(api, "started_after=2026-11-24T12:02:00Z") == [c[5], c[4], c[3], c[2]]
    assert await list_ids(api, "started_before=2026-11-24T12:02:00Z") == [c[1], c[0]]
    # An unencoded "+" arrives as a space; the offset is still understood.
    assert await list_ids(api, "started_after=2026-11-24T13:03:00+01:00") == [c[5], c[4], c[3]]
    assert await list_ids(api, "started_after=2026-11-24T12:01:00Z&started_before=2026-11-24T12:03:00Z") == [c[2], c[1]]
    assert await list_ids(api, "status=ringing") == []


async def test_list_ordering_and_pagination(api: AppClient, db: Database, clock: SettableClock) -> None:
    c, _ = await make_list_data(api, db, clock)
    assert await list_ids(api, "ordering=started_at") == c
    # Durations: c0=30, c3=90, unanswered=0 (ties broken by id), the live call c5 has none (last).
    zero = sorted([c[1], c[2], c[4]])
    assert await list_ids(api, "ordering=duration_seconds") == [*zero, c[0], c[3], c[5]]
    assert await list_ids(api, "ordering=-duration_seconds") == [c[3], c[0], *reversed(zero), c[5]]
    assert await list_ids(api, "ordering=-created_at&limit=2") == [c[5], c[4]]
    page = await ok(await api.get(f"{BASE}?direction=inbound&direction=outbound&limit=2&offset=2&ordering=started_at"))
    assert page["count"] == 6
    assert [r["id"] for r in page["results"]] == c[2:4]
    base = str(api.make_url(BASE))
    assert page["next"] == f"{base}?direction=inbound&direction=outbound&limit=2&offset=4&ordering=started_at"
    assert page["previous"] == f"{base}?direction=inbound&direction=outbound&limit=2&offset=0&ordering=started_at"
    last = await ok(await api.get(URL(page["next"]).path_qs))
    assert [r["id"] for r in last["results"]] == c[4:6]
    assert last["next"] is None
    beyond = await ok(await api.get(f"{BASE}?offset=10"))
    assert beyond["results"] == [] and beyond["count"] == 6 and beyond["next"] is None
    assert beyond["previous"] == f"{base}?offset=0&limit=50"


async def test_list_rejects_bad_query_values(api: AppClient) -> None:
    bad = {
        "status=answered,bogus": "status",
        "direction=up": "direction",
        "call_type=fax": "call_type",
        "number=banana": "number",
        "number=": "number",
        "client=123": "client",
        "started_after=yesterday": "started_after",
        "started_before=2026-11-24T12:00:00": "started_before",
        "ordering=-notes": "ordering",
        "limit=0": "limit",
        "limit=201": "limit",
        "limit=ten": "limit",
        "offset=-1": "offset",
        "offset=99999999999999999999999": "offset",
        "limit=5&limit=6": "limit",
        "colour=red": "colour",
    }
    for query, name in bad.items():
        await expect_error(await api.get(f"{BASE}?{query}"), 422, name)


async def test_list_date_filters_take_a_plain_date_as_local_midnight(
    api: AppClient, services: Services, clock: SettableClock
) -> None:
    clock.now = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)  # already the 24th in Tokyo (UTC+9)
    late = await new_call(api)
    clock.now = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    noon = await new_call(api)
    assert await list_ids(api, "started_after=2026-11-24") == [noon["id"]]  # calls.timezone is UTC
    services.config = replace(services.config, calls=replace(services.config.calls, timezone="Asia/Tokyo"))
    assert await list_ids(api, "started_after=2026-11-24") == [noon["id"], late["id"]]
    assert await list_ids(api, "started_before=2026-11-24") == []
    assert await list_ids(api, "started_after=2026-11-23&started_before=2026-11-24") == []
    assert await list_ids(api, "started_before=2026-11-25") == [noon["id"], late["id"]]
    await expect_error(await api.get(f"{BASE}?started_after=2026-02-30"), 422, "started_after")
    body = await (await api.get(f"{BASE}?started_after=24.11.2026")).json()
    assert "or a date (midnight in Asia/Tokyo), e.g. 2026-11-24" in body["detail"]["started_after"]


async def test_list_refuses_an_instant_outside_the_calendar_in_utc(api: AppClient) -> None:
    """Found by schemathesis: a date-time valid at its offset but before year 1 or after 9999 in UTC was a 500."""
    for value in ("0001-01-01T00:00:00.0%2B00:02", "9999-12-31T23:59:59-01:00"):
        await expect_error(await api.get(f"{BASE}?started_after={value}"), 422, "started_after")


async def test_list_number_filter_accepts_an_unencoded_plus(api: AppClient) -> None:
    uk = await new_call(api, caller_number="+44 20 7946 0958")
    ext = await new_call(api, caller_number="1002")
    assert await list_ids(api, "number=+442079460958") == [uk["id"]]
    assert await list_ids(api, "number=%2B442079460958") == [uk["id"]]
    assert await list_ids(api, "number= 1002") == [ext["id"]]


# --- the switch seam (a recording fake stands in for an adapter) -----------------------------


async def test_with_a_switch_actions_are_asked_of_it_not_stored(
    services: Services,
    aiohttp_client: Callable[..., Awaitable[AppClient]],
    db: Database,
    auth_headers: dict[str, str],
) -> None:
    switch = FakeSwitch()
    api = await aiohttp_client(create_app(replace(services, switch=switch)), headers=auth_headers)
    body = await created(
        await api.post(f"{BASE}initiate_call/", json={"recipient_number": "1002", "caller_number": "1001"})
    )
    cid = body["id"]
    assert body["switch"] == "fake"
    assert switch.requests == [("originate", cid, "1002", "1001")]
    stored = await stored_call(db, cid)
    assert (stored.switch_name, stored.switch_call_ref) == ("fake", "ref-1")

    await expect_error(await api.post(f"{BASE}{cid}/toggle_hold/"), 409, "status")  # refused before asking
    body = await ok(await api.post(f"{BASE}{cid}/end_call/"))
    assert body["status"] == "initiated"  # the switch's own events will confirm the hangup
    await set_status(api, cid, "answered")  # status changes by name stay storage operations
    await ok(await api.post(f"{BASE}{cid}/toggle_hold/"))
    await ok(await api.post(f"{BASE}{cid}/transfer_call/", json={"transfer_to": "1003", "attended": True}))
    body = await ok(await api.post(f"{BASE}{cid}/start_recording/"))
    assert body["status"] == "answered" and body["recording"]["status"] == "pending"
    path = body["recording"]["local_path"]
    assert switch.requests[1:] == [
        ("hangup", "ref-1"),
        ("hold", "ref-1"),
        ("transfer", "ref-1", "1003", True),
        ("start_recording", "ref-1", path),
    ]
    assert await event_types(db, cid) == ["initiated", "answered"]

    switch.refuse = True
    await expect_error(await api.post(f"{BASE}{cid}/end_call/"), 409, "switch")
    await expect_error(
        await api.post(f"{BASE}initiate_call/", json={"recipient_number": "1002", "caller_number": "1001"}), 409
    )
    # The refused attempt is kept, failed, with the switch's reason.
    assert await count(db, CallLog) == 2
    listing = await ok(await api.get(f"{BASE}?status=failed"))
    assert listing["count"] == 1
    failed = await ok(await api.get(f"{BASE}{listing['results'][0]['id']}/"))
    assert failed["events"][-1]["metadata"] == {"reason": "no such extension", "switch": "fake"}


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b'{"notes": NaN}', "NaN is not valid JSON"),
        (b'{"notes": Infinity}', "Infinity is not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"n": ' + b"9" * 5000 + b"}", "digits"),
        (b"\xff\xfe{}", ""),
        (b"", "empty"),
    ],
)
async def test_bodies_that_are_not_json_are_400(api: AppClient, raw: bytes, problem: str) -> None:
    resp = await api.post(BASE, data=raw, headers={"Content-Type": "application/json"})
    assert resp.status == 400
    body = await resp.json()
    assert body["error"] == "malformed JSON"
    assert problem in body["detail"]["body"]
    listing = await (await api.get(BASE)).json()
    assert listing["count"] == 0


# --- mute and DTMF -----------------------------------------------------------------------------


async def test_mute_unmute_and_send_dtmf(api: AppClient, db: Database) -> None:
    call = await new_call(api)  # inbound: the caller is the far party
    cid = call["id"]
    body = await expect_error(await api.post(f"{BASE}{cid}/mute/"), 409, "status")
    assert body["current_status"] == "initiated"
    await expect_error(await api.post(f"{BASE}{cid}/send_dtmf/", json={"digits": "1"}), 409, "status")
    await set_status(api, cid, "answered")
    body = await ok(await api.post(f"{BASE}{cid}/mute/"))
    assert body["events"][-1]["event_type"] == "muted" and body["events"][-1]["metadata"] == {"party": "caller"}
    body = await ok(await api.post(f"{BASE}{cid}/unmute/", json={"party": "callee"}))
    assert body["events"][-1]["metadata"] == {"party": "callee"}
    body = await ok(await api.post(f"{BASE}{cid}/send_dtmf/", json={"digits": "12ab#", "duration_ms": 250}))
    assert body["events"][-1]["metadata"] == {
        "digits": "12AB#",
        "direction": "sent",
        "duration_ms": 250,
        "party": "caller",
    }
    assert body["status"] == "answered"
    assert await event_types(db, cid) == ["initiated", "answered", "muted", "unmuted", "dtmf"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "digits"),
        ({"digits": ""}, "digits"),
        ({"digits": "12E"}, "digits"),
        ({"digits": " 1"}, "digits"),
        ({"digits": 12}, "digits"),
        ({"digits": "1" * 33}, "digits"),
        ({"digits": "1", "duration_ms": 39}, "duration_ms"),
        ({"digits": "1", "duration_ms": "100"}, "duration_ms"),
        ({"digits": "1", "party": "agent"}, "party"),
        ({"digits": "1", "tone": "x"}, "tone"),
    ],
)
async def test_send_dtmf_refuses_bad_values_naming_them(
    api: AppClient, db: Database, body: dict[str, Any], field: str
) -> None:
    call = await new_call(api)
    await set_status(api, call["id"], "answered")
    await expect_error(await api.post(f"{BASE}{call['id']}/send_dtmf/", json=body), 422, field)
    await expect_error(await api.post(f"{BASE}{call['id']}/mute/", json={"party": "me"}), 422, "party")
    assert await event_types(db, call["id"]) == ["initiated", "answered"]


async def test_mute_and_dtmf_with_a_switch_are_asked_of_it(
    services: Services,
    aiohttp_client: Callable[..., Awaitable[AppClient]],
    db: Database,
    auth_headers: dict[str, str],
) -> None:
    switch = FakeSwitch()
    api = await aiohttp_client(create_app(replace(services, switch=switch)), headers=auth_headers)
    body = await created(
        await api.post(f"{BASE}initiate_call/", json={"recipient_number": "1002", "caller_number": "1001"})
    )
    cid = body["id"]
    await set_status(api, cid, "answered")
    await ok(await api.post(f"{BASE}{cid}/mute/", json={"party": "caller"}))
    await ok(await api.post(f"{BASE}{cid}/send_dtmf/", json={"digits": "5"}))
    assert switch.requests[1:] == [("mute", "ref-1", True), ("send_dtmf", "ref-1", False, "5", None)]
    switch.refuse = True
    body = await expect_error(await api.post(f"{BASE}{cid}/unmute/"), 409)
    assert "no such extension" in str(body)
    assert await event_types(db, cid) == ["initiated", "answered"]


async def test_pause_and_resume_recording(api: AppClient, db: Database) -> None:
    call = await new_call(api)
    cid = call["id"]
    await set_status(api, cid, "answered")
    body = await expect_error(await api.post(f"{BASE}{cid}/pause_recording/"), 409, "status")
    assert body["current_status"] == "answered" and "not recording" in body["error"] + str(body["detail"])
    await ok(await api.post(f"{BASE}{cid}/start_recording/"))
    await expect_error(await api.post(f"{BASE}{cid}/pause_recording/", json={"why": "card"}), 422, "why")
    await expect_error(await api.post(f"{BASE}{cid}/resume_recording/"), 409, "status")
    body = await ok(await api.post(f"{BASE}{cid}/pause_recording/"))
    assert body["recording_paused"] is True and body["status"] == "recording"
    assert body["recording"]["paused_spans"][0]["resumed_at"] is None
    await expect_error(await api.post(f"{BASE}{cid}/pause_recording/"), 409, "status")
    body = await ok(await api.post(f"{BASE}{cid}/resume_recording/", json={}))
    assert body["recording_paused"] is False and body["recording"]["paused_spans"][0]["resumed_at"] is not None
    assert (await ok(await api.get(f"{BASE}{cid}/")))["recording"]["paused_spans"] == body["recording"]["paused_spans"]
    assert await event_types(db, cid) == [
        "initiated",
        "answered",
        "recording_started",
        "recording_paused",
        "recording_resumed",
    ]


async def test_answer_and_reject(
    services: Services,
    aiohttp_client: Callable[..., Awaitable[AppClient]],
    db: Database,
    auth_headers: dict[str, str],
) -> None:
    switch = FakeSwitch()
    api = await aiohttp_client(create_app(replace(services, switch=switch)), headers=auth_headers)
    outbound = await created(
        await api.post(f"{BASE}initiate_call/", json={"recipient_number": "1002", "caller_number": "1001"})
    )
    body = await expect_error(await api.post(f"{BASE}{outbound['id']}/answer/"), 409, "status")
    assert "inbound" in str(body)
    # An inbound call stored by hand has no switch: answered and rejected in storage.
    first, second = (await new_call(api))["id"], (await new_call(api))["id"]
    await expect_error(await api.post(f"{BASE}{first}/answer/", json={"now": True}), 422, "now")
    assert (await ok(await api.post(f"{BASE}{first}/answer/")))["status"] == "answered"
    await expect_error(await api.post(f"{BASE}{first}/reject/"), 409, "status")
    assert (await ok(await api.post(f"{BASE}{second}/reject/")))["status"] == "busy"
    assert switch.requests == [("originate", outbound["id"], "1002", "1001")]


async def test_attended_transfer_complete_and_cancel(
    services: Services,
    aiohttp_client: Callable[..., Awaitable[AppClient]],
    db: Database,
    auth_headers: dict[str, str],
) -> None:
    # Without a switch an attended transfer is recorded as begun; completing it records the end of it.
    call = await new_call(api := await aiohttp_client(create_app(services), headers=auth_headers))
    cid = call["id"]
    await expect_error(await api.post(f"{BASE}{cid}/transfer_call/complete/"), 409, "status")
    await set_status(api, cid, "answered")
    await ok(await api.post(f"{BASE}{cid}/transfer_call/", json={"transfer_to": "1003", "attended": True}))
    await expect_error(await api.post(f"{BASE}{cid}/transfer_call/cancel/"), 409, "status")
    body = await ok(await api.post(f"{BASE}{cid}/transfer_call/complete/"))
    assert body["status"] == "answered" and body["transfer_target"] == "1003"
    assert await event_types(db, cid) == ["initiated", "answered", "transfer_initiated", "transfer_completed"]
    # With a switch, it is asked; refused (no consultation), its reason is the answer.
    switch = FakeSwitch()
    api = await aiohttp_client(create_app(replace(services, switch=switch)), headers=auth_headers)
    placed = await created(
        await api.post(f"{BASE}initiate_call/", json={"recipient_number": "1002", "caller_number": "1001"})
    )
    await expect_error(await api.post(f"{BASE}{placed['id']}/transfer_call/complete/"), 409, "status")  # ringing
    await set_status(api, placed["id"], "answered")
    await ok(await api.post(f"{BASE}{placed['id']}/transfer_call/complete/"))
    await ok(await api.post(f"{BASE}{placed['id']}/transfer_call/cancel/", json={}))
    assert switch.requests[1:] == [("complete_transfer", "ref-1"), ("cancel_transfer", "ref-1")]
    switch.refuse = True
    body = await expect_error(await api.post(f"{BASE}{placed['id']}/transfer_call/cancel/"), 409)
    assert "no such extension" in str(body)


# --- park and pickup ---------------------------------------------------------------------------


async def test_park_and_pickup_without_a_switch(api: AppClient, db: Database) -> None:
    call = await new_call(api)
    cid = call["id"]
    body = await expect_error(await api.post(f"{BASE}{cid}/park/", json={"slot": "701"}), 409, "status")
    assert body["current_status"] == "initiated"
    await set_status(api, cid, "answered")
    await expect_error(await api.post(f"{BASE}{cid}/park/"), 422, "slot")  # no switch picks a slot
    body = await expect_error(await api.post(f"{BASE}{cid}/pickup/", json={"to": "1003"}), 409, "status")
    assert body["current_status"] == "answered" and "not parked" in body["detail"]["status"]
    parked = await ok(await api.post(f"{BASE}{cid}/park/", json={"slot": "701"}))
    assert parked["status"] == "on_hold" and parked["parked"]["slot"] == "701" and parked["parked"]["lot"] is None
    assert parked["parked"]["since"] == parked["events"][-1]["timestamp"]
    assert (await ok(await api.get(f"{BASE}{cid}/")))["parked"] == parked["parked"]
    body = await expect_error(await api.post(f"{BASE}{cid}/park/", json={"slot": "702"}), 409, "status")
    assert body["current_status"] == "on_hold"
    picked = await ok(await api.post(f"{BASE}{cid}/pickup/", json={"to": "1003"}))
    assert picked["status"] == "answered" and picked["parked"] is None
    assert picked["events"][-1]["metadata"] == {"picked_up": "701", "picked_up_by": "1003"}
    assert await event_types(db, cid) == ["initiated", "answered", "hold", "unhold"]
    # A plain hold is no park.
    held = await ok(await api.post(f"{BASE}{cid}/toggle_hold/"))
    assert held["status"] == "on_hold" and held["parked"] is None
    await expect_error(await api.post(f"{BASE}{cid}/pickup/", json={"to": "1003"}), 409, "status")


@pytest.mark.parametrize(
    ("action", "body", "field"),
    [
        ("park/", {"slot": "70 1"}, "slot"),
        ("park/", {"slot": 701}, "slot"),
        ("park/", {"slot": "1" * 17}, "slot"),
        ("park/", {"lot": "default"}, "lot"),
        ("pickup/", {}, "to"),
        ("pickup/", {"to": "not a phone"}, "to"),
    ],
)
async def test_park_and_pickup_refuse_bad_values_naming_them(
    api: AppClient, db: Database, action: str, body: dict[str, Any], field: str
) -> None:
    call = await new_call(api)
    await set_status(api, call["id"], "answered")
    await expect_error(await api.post(f"{BASE}{call['id']}/{action}", json=body), 422, field)
    assert await event_types(db, call["id"]) == ["initiated", "answered"]

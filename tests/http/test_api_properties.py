"""Random sequences of API actions against one call: never a 5xx, always the error shape, and the
stored call stays consistent (ordered timestamps, derived duration, one event per accepted change)."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from calld.domain.recording import ENDED_WITH_CALL
from calld.domain.vocabulary import TERMINAL_STATUSES, CallStatus, EventType, RecordingStatus
from calld.storage.database import Database
from calld.storage.models import CallEvent, CallLog, CallRecording
from tests.support import AppClient, SettableClock

BASE = "/api/call-logs/"


def mostly(valid: st.SearchStrategy[Any], invalid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``valid`` about four times in five, so sequences get far enough into a call to matter.

    (``one_of`` with a repeated branch would not do: hypothesis drops duplicate branches.)
    """
    return st.sampled_from([True, True, True, True, False]).flatmap(lambda ok: valid if ok else invalid)


junk = st.one_of(st.none(), st.booleans(), st.integers(-10, 10), st.text(max_size=8), st.floats(allow_nan=True))
json_values = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8)
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=8,
)
# The happy path's statuses appear more than once so that calls get answered often.
statuses = mostly(
    st.sampled_from([*(s.value for s in CallStatus), "ringing", "answered", "answered", "recording", "on_hold"]),
    st.sampled_from(["bogus", ""]) | junk,
)
event_types = mostly(st.sampled_from([e.value for e in EventType]), st.just("bogus") | junk)
scores = mostly(st.floats(min_value=0, max_value=5), st.floats(min_value=-1, max_value=6) | junk)
metadata = st.one_of(
    st.just({}),
    json_values,
    st.fixed_dictionaries(
        {},
        optional={
            "outcome": mostly(st.sampled_from([s.value for s in CallStatus]), st.just("nope") | junk),
            "score": scores,
            "transfer_to": mostly(st.just("1002"), st.just("x" * 300) | junk),
            "digit": st.text(max_size=2),
        },
    ),
)
numbers = mostly(
    st.sampled_from(["1002", "+14155550142", "(415) 555-0143"]), st.sampled_from(["banana", "", "+1"]) | junk
)

update_status = st.fixed_dictionaries(
    {"status": statuses}, optional={"notes": mostly(st.text(max_size=20), junk), "call_quality_score": scores}
)
patch_body = st.fixed_dictionaries(
    {},
    optional={
        "notes": mostly(st.text(max_size=20), junk),
        "call_quality_score": scores,
        "client": st.one_of(st.uuids().map(str), junk),
        "sip_configuration": st.one_of(st.uuids().map(str), junk),
        "status": statuses,
        "ended_at": junk,
    },
)
# Half the steps are status changes, the other half the other kinds of request.
actions = st.tuples(st.just("update_status"), update_status) | st.one_of(
    st.tuples(st.sampled_from(["toggle_hold", "start_recording", "stop_recording", "end_call"]), st.none()),
    st.tuples(
        st.just("transfer_call"),
        st.fixed_dictionaries({"transfer_to": numbers}, optional={"attended": mostly(st.booleans(), junk)}),
    ),
    st.tuples(
        st.just("add_event"),
        st.fixed_dictionaries({"event_type": event_types}, optional={"metadata": metadata}),
    ),
    st.tuples(st.just("patch"), mostly(patch_body, json_values)),
)
steps = st.lists(st.tuples(actions, st.integers(0, 120_000)), min_size=1, max_size=15)


async def send(api: AppClient, call_id: str, action: str, body: Any) -> tuple[int, Any]:
    url = f"{BASE}{call_id}/" if action == "patch" else f"{BASE}{call_id}/{action}/"
    method = api.patch if action in ("patch", "update_status") else api.post
    resp = await method(url, json=body)
    assert resp.status < 500, (action, body, await resp.text())
    assert resp.content_type == "application/json", (action, body, resp.content_type)
    payload = await resp.json()
    if resp.status >= 400:
        assert isinstance(payload, dict), payload
        assert isinstance(payload.get("error"), str) and isinstance(payload.get("detail"), dict), payload
    return resp.status, payload


async def check_consistent(db: Database, call_id: str, accepted_changes: int) -> None:
    cid = uuid.UUID(call_id)
    async with db.read() as s:
        call = await s.get(CallLog, cid)
        assert call is not None
        events = (await s.execute(sa.select(CallEvent).where(CallEvent.call_id == cid))).scalars().all()
        live_recordings = (
            await s.execute(
                sa.select(sa.func.count()).where(
                    CallRecording.call_id == cid, CallRecording.status == RecordingStatus.RECORDING
                )
            )
        ).scalar_one()
    # A call that ends while recording stops its recording first: calld stores that stop itself.
    implied = [e for e in events if e.event_type is EventType.RECORDING_STOPPED and e.meta == ENDED_WITH_CALL]
    assert len(implied) <= 1 and (not implied or call.status in TERMINAL_STATUSES)
    assert len(events) - len(implied) == accepted_changes + 1, [(e.event_type, e.meta) for e in events]
    assert call.started_at <= call.last_event_at
    if call.answered_at is not None:
        assert call.started_at <= call.answered_at
    if call.ended_at is not None:
        assert call.started_at <= call.ended_at
        assert call.answered_at is None or call.answered_at <= call.ended_at
    if call.answered_at is not None and call.ended_at is not None:
        assert call.duration_seconds == (call.ended_at - call.answered_at).total_seconds()
    if call.call_quality_score is not None:
        assert 0 <= call.call_quality_score <= 5
    # The recording rows follow the call's recording flag: one live recording exactly while recording.
    assert live_recordings == (1 if call.recording else 0)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(inbound=st.booleans(), answered_first=st.booleans(), sequence=steps)
async def test_random_action_sequences_keep_the_call_consistent(
    api: AppClient,
    db: Database,
    clock: SettableClock,
    inbound: bool,
    answered_first: bool,
    sequence: list[tuple[tuple[str, Any], int]],
) -> None:
    if inbound:
        start = {"caller_number": "+14155550100", "recipient_number": "1001", "sip_call_id": f"{uuid.uuid4()}@pbx"}
        resp = await api.post(f"{BASE}log_incoming_call/", json=start)
    else:
        resp = await api.post(f"{BASE}initiate_call/", json={"recipient_number": "1002", "caller_number": "1001"})
    assert resp.status == 201
    call_id = (await resp.json())["id"]
    accepted = 0
    if answered_first:  # half the sequences start on a live call, where hold/record/transfer apply
        resp = await api.patch(f"{BASE}{call_id}/update_status/", json={"status": "answered"})
        assert resp.status == 200
        accepted += 1
    for (action, body), millis in sequence:
        clock.advance(millis / 1000)
        status, _ = await send(api, call_id, action, body)
        event(f"{action} {status}")  # shown by --hypothesis-show-statistics: how deep sequences get
        if 200 <= status < 300 and action != "patch":
            accepted += 1
        await check_consistent(db, call_id, accepted)

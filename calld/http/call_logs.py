"""The call-logs API: list, create, read, change and delete calls, and act on live calls.

Every status change goes through ``CallStore.apply`` (the domain's transition table is the one
rule); handlers validate the whole request before opening a transaction, so a rejected request
stores nothing. Actions on a live call either change storage (no switch configured) or ask the
switch, whose own events later confirm the change (see ``_switch_for``).
"""

from __future__ import annotations

import re
import uuid
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy.exc
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from calld.adapters.port import SwitchError, SwitchPort, SwitchUnavailable
from calld.domain.call import MAX_QUALITY_SCORE, apply_event, event_for_status
from calld.domain.errors import IllegalTransition, InvalidValue
from calld.domain.hangup import HangupBy, HangupCause, MissedReason
from calld.domain.phone import normalise_number
from calld.domain.vocabulary import (
    TERMINAL_STATUSES,
    CallDirection,
    CallStatus,
    CallType,
    EventSource,
    EventType,
    RecordingStatus,
)
from calld.http.auth import authorized_query, bundles_token_check
from calld.http.context import Services, services
from calld.http.errors import ApiError, not_found, read_json_object
from calld.http.pagination import page_json, page_window
from calld.http.serialize import call_detail_json, call_event_json, call_log_json
from calld.http.validation import Fields, json_problem, path_uuid
from calld.live import call_message
from calld.storage import call_queries as q
from calld.storage.calls import NewCall, presented, state_of
from calld.storage.models import CallEvent, CallLog, CallRecording, SipConfiguration

BASE = "/api/call-logs/"
WHAT = "call log"
NOTES_MAX = 10_000

# Fields a client might try to set that calld derives itself: a clearer message than "unknown field".
_DERIVED_HINTS = {
    "status": "cannot be set here; change it with PATCH /api/call-logs/{id}/update_status/ or a call action",
    **{
        name: "derived from the call's events; it cannot be set"
        for name in (
            "started_at",
            "ringing_at",
            "answered_at",
            "ended_at",
            "duration_seconds",
            "ring_seconds",
            "hold_seconds",
            "on_hold_since",
            "is_recording",
            "transfer_target",
        )
    },
}

CREATE_FIELDS = (
    "direction",
    "call_type",
    "caller_number",
    "recipient_number",
    "sip_call_id",
    "client",
    "sip_configuration",
    "notes",
)
PATCH_FIELDS = ("notes", "call_quality_score", "client", "sip_configuration")


def add_routes(app: web.Application) -> None:
    """Register the call-logs routes; fixed paths come before the ``{id}`` ones."""
    r = app.router
    r.add_get(BASE, list_calls)
    r.add_post(BASE, create_call)
    r.add_get(BASE + "statistics/", statistics)
    r.add_post(BASE + "initiate_call/", initiate_call)
    r.add_post(BASE + "log_incoming_call/", log_incoming_call)
    r.add_get(BASE + "{id}/", get_call)
    r.add_patch(BASE + "{id}/", patch_call)
    r.add_delete(BASE + "{id}/", delete_call)
    r.add_patch(BASE + "{id}/update_status/", update_status)
    r.add_post(BASE + "{id}/end_call/", end_call)
    r.add_post(BASE + "{id}/add_event/", add_event)
    r.add_post(BASE + "{id}/start_recording/", start_recording)
    r.add_post(BASE + "{id}/stop_recording/", stop_recording)
    r.add_post(BASE + "{id}/transfer_call/", transfer_call)
    r.add_post(BASE + "{id}/toggle_hold/", toggle_hold)


# --- request reading -------------------------------------------------------------------------


def _fields(body: dict[str, Any], allowed: tuple[str, ...]) -> Fields:
    fields = Fields(body, allowed=allowed)
    for name, hint in _DERIVED_HINTS.items():
        if name in body and name not in allowed:
            fields.errors[name] = hint
    return fields


async def _empty_body(request: web.Request) -> None:
    """Actions without parameters take no body, or an empty JSON object."""
    if (await request.read()).strip():
        _fields(await read_json_object(request), ()).done()


def _call_id(request: web.Request) -> uuid.UUID:
    return path_uuid(request.match_info["id"], WHAT)


def _patch_changes(fields: Fields, body: dict[str, Any]) -> dict[str, Any]:
    """Values for notes / call_quality_score / client / sip_configuration present in ``body``.

    ``null`` clears the score, the client and the SIP configuration; notes are cleared with "".
    """
    changes: dict[str, Any] = {}
    if "notes" in body:
        if body["notes"] is None:
            fields.fail("notes", 'must be a string (send "" to clear)')
        changes["notes"] = fields.string("notes", blank=True, max_length=NOTES_MAX, default="")
    if "call_quality_score" in body:
        changes["call_quality_score"] = fields.number("call_quality_score", minimum=0, maximum=MAX_QUALITY_SCORE)
    for name in ("client", "sip_configuration"):
        if name in body:
            changes[name] = fields.uuid(name)
    return changes


# --- shared storage steps --------------------------------------------------------------------


async def _locked(svc: Services, session: AsyncSession, call_id: uuid.UUID) -> CallLog:
    call = await svc.calls.get_for_update(session, call_id)
    if call is None:
        raise not_found(WHAT)
    return call


async def _detail(session: AsyncSession, call: CallLog) -> dict[str, Any]:
    """The call as ``GET /api/call-logs/{id}/`` shows it, read in ``session``'s transaction."""
    await session.flush()
    found = await session.run_sync(lambda sync: q.call_detail(sync.connection(), call.id))
    assert found is not None  # flushed in this transaction
    return call_detail_json(found.call, found.events, found.recordings)


async def _check_references(
    session: AsyncSession, client_id: uuid.UUID | None, sip_configuration_id: uuid.UUID | None
) -> None:
    """422 naming ``client`` / ``sip_configuration`` when the referenced row does not exist."""
    errors: dict[str, str] = {}
    if client_id is not None and not await q.client_exists(session, client_id):
        errors["client"] = f"no client with id {client_id}"
    if sip_configuration_id is not None and await q.sip_configuration(session, sip_configuration_id) is None:
        errors["sip_configuration"] = f"no SIP configuration with id {sip_configuration_id}"
    if errors:
        raise ApiError(422, "validation failed", errors)


async def _logged_already(svc: Services, session: AsyncSession, new: NewCall) -> CallLog | None:
    """The call a webhook or the switch already created for ``new``'s SIP Call-ID, with what it
    lacked filled in from ``new`` (the seed's inbound flow logs a call its provider announced)."""
    if new.sip_call_id is None:
        return None
    call = await svc.calls.find_by(session, sip_call_id=new.sip_call_id)
    if call is None:
        return None
    if not call.caller_number and new.caller_number:
        call.caller_number, call.caller_number_raw = new.caller_number, new.caller_number_raw
        call.caller_withheld = new.caller_withheld
    if not call.recipient_number and new.recipient_number:
        call.recipient_number, call.recipient_number_raw = new.recipient_number, new.recipient_number_raw
    if call.client_id is None and new.client_id is not None:
        call.client_id = new.client_id
    if call.sip_configuration_id is None and new.sip_configuration_id is not None:
        call.sip_configuration_id = new.sip_configuration_id
    if not call.notes and new.notes:
        call.notes = new.notes
    return call


async def _log_call(svc: Services, new: NewCall) -> web.Response:
    """Create the call (201), or answer the one already logged under its SIP Call-ID (200) and store
    nothing twice. Two requests logging one new call at once: the second finds the first's."""
    new = presented(new, svc.config.calls.numbers)
    for attempt in (1, 2):
        try:
            async with svc.db.write() as session:
                await _check_references(session, new.client_id, new.sip_configuration_id)
                existing = await _logged_already(svc, session, new)
                if existing is not None:
                    return web.json_response(await _detail(session, existing), status=200)
                call = await svc.calls.create(session, new, EventSource.API)
                return web.json_response(await _detail(session, call), status=201)
        except sqlalchemy.exc.IntegrityError:
            if attempt == 2 or new.sip_call_id is None:
                raise
    raise AssertionError("unreachable")


async def _apply(
    svc: Services,
    session: AsyncSession,
    call: CallLog,
    event_type: EventType,
    metadata: dict[str, Any] | None = None,
) -> CallEvent:
    """Apply one API event (the call store keeps recording rows in step)."""
    return await svc.calls.apply(session, call, event_type, EventSource.API, metadata=metadata)


# --- list, create, read, change, delete --------------------------------------------------------

_LIST_PARAMS = (
    "status",
    "direction",
    "call_type",
    "number",
    "client",
    "started_after",
    "started_before",
    "hangup_cause",
    "hangup_by",
    "missed_reason",
    "ordering",
    "limit",
    "offset",
)
_MULTI_PARAMS: dict[str, type[StrEnum]] = {
    "status": CallStatus,
    "direction": CallDirection,
    "call_type": CallType,
    "hangup_cause": HangupCause,
    "hangup_by": HangupBy,
    "missed_reason": MissedReason,
}
# A "+" in a query string decodes to a space, so "…T10:00:00+02:00" or "+14155550100" sent
# unencoded arrives as "…T10:00:00 02:00" or " 14155550100"; put the sign back rather than refuse
# (or, for a number, misread) what was obviously meant.
_LOST_OFFSET_PLUS = (re.compile(r" (\d{2}(?::?\d{2})?)$"), r"+\1")
_LOST_NUMBER_PLUS = (re.compile(r"^ (?=\d{7,}$)"), "+")  # not extensions (2 to 6 digits)
_PLUS_REPAIRS = {
    "started_after": _LOST_OFFSET_PLUS,
    "started_before": _LOST_OFFSET_PLUS,
    "number": _LOST_NUMBER_PLUS,
}


def _query_fields(request: web.Request, allowed: tuple[str, ...], multi: tuple[str, ...] = ()) -> Fields:
    """Fields over a query string: unknown parameters and repeated single-valued ones are errors."""
    single = {key: request.query[key] for key in request.query if key not in multi}
    for key, (pattern, replacement) in _PLUS_REPAIRS.items():
        if key in single:
            single[key] = pattern.sub(replacement, single[key])
    fields = Fields(single, allowed=allowed, query=True)
    for key in single:
        if key in allowed and len(request.query.getall(key)) > 1:
            fields.fail(key, "give this parameter once")
    return fields


def _enum_values(fields: Fields, request: web.Request, name: str) -> list[Any]:
    enum = _MULTI_PARAMS[name]
    values: list[Any] = []
    for raw in request.query.getall(name, []):
        for part in raw.split(","):
            try:
                values.append(enum(part.strip()))
            except ValueError:
                fields.fail(name, f"{part.strip()!r} is not one of: {', '.join(m.value for m in enum)}")
    return values


def _parse_list_query(request: web.Request, region: str | None, zone: ZoneInfo) -> tuple[q.CallFilter, str, int, int]:
    fields = _query_fields(request, _LIST_PARAMS, tuple(_MULTI_PARAMS))
    statuses, directions, call_types, causes, ended_by, missed = (
        _enum_values(fields, request, name) for name in _MULTI_PARAMS
    )
    flt = q.CallFilter(
        statuses=statuses,
        directions=directions,
        call_types=call_types,
        hangup_causes=causes,
        hangup_by=ended_by,
        missed_reasons=missed,
        number=fields.phone("number", region),
        client_id=fields.uuid("client"),
        started_after=fields.timestamp("started_after", zone=zone),
        started_before=fields.timestamp("started_before", zone=zone),
    )
    ordering = fields.string("ordering", default=q.DEFAULT_ORDERING)
    if ordering not in q.ORDERINGS:
        fields.fail("ordering", f"must be one of: {', '.join(q.ORDERINGS)}")
    limit, offset = page_window(fields)
    fields.done()
    return flt, ordering, limit, offset


@bundles_token_check
async def list_calls(request: web.Request) -> web.Response:
    """GET /api/call-logs/ — one page of calls matching the filters."""
    svc = services(request)
    flt, ordering, limit, offset = _parse_list_query(request, svc.config.calls.default_region, svc.config.calls.zone)
    total, calls = await authorized_query(request, q.call_page, flt, ordering=ordering, limit=limit, offset=offset)
    return web.json_response(page_json(request, total, [call_log_json(c) for c in calls], limit, offset))


async def create_call(request: web.Request) -> web.Response:
    """POST /api/call-logs/ — record a call; it starts ``initiated`` at the server's clock."""
    svc = services(request)
    body = await read_json_object(request)
    fields = _fields(body, CREATE_FIELDS)
    new = NewCall(
        direction=fields.choice("direction", CallDirection, required=True),
        call_type=fields.choice("call_type", CallType, default=CallType.VOICE),
        caller_number=fields.presented("caller_number", required=True),
        recipient_number=fields.presented("recipient_number", required=True),
        sip_call_id=fields.string("sip_call_id"),
        client_id=fields.uuid("client"),
        sip_configuration_id=fields.uuid("sip_configuration"),
        notes=fields.string("notes", default="", blank=True, max_length=NOTES_MAX),
    )
    fields.done()
    return await _log_call(svc, new)


@bundles_token_check
async def get_call(request: web.Request) -> web.Response:
    """GET /api/call-logs/{id}/ — a call with its events and recordings."""
    call_id = _call_id(request)
    found = await authorized_query(request, q.call_detail, call_id)
    if found is None:
        raise not_found(WHAT)
    return web.json_response(call_detail_json(found.call, found.events, found.recordings))


async def patch_call(request: web.Request) -> web.Response:
    """PATCH /api/call-logs/{id}/ — notes, quality score, client and SIP configuration only."""
    svc = services(request)
    call_id = _call_id(request)
    body = await read_json_object(request)
    fields = _fields(body, PATCH_FIELDS)
    changes = _patch_changes(fields, body)
    fields.done()
    async with svc.db.write() as session:
        call = await _locked(svc, session, call_id)
        await _check_references(session, changes.get("client"), changes.get("sip_configuration"))
        _set(call, changes)
        detail = await _detail(session, call)
        svc.live.after_commit(session, call_message("call.updated", call))
    return web.json_response(detail)


def _set(call: CallLog, changes: dict[str, Any]) -> None:
    columns = {"client": "client_id", "sip_configuration": "sip_configuration_id"}
    for name, value in changes.items():
        setattr(call, columns.get(name, name), value)


async def delete_call(request: web.Request) -> web.Response:
    """DELETE /api/call-logs/{id}/ — the call, its events and recordings (by cascade)."""
    svc = services(request)
    call_id = _call_id(request)
    async with svc.db.write() as session:
        call = await _locked(svc, session, call_id)
        svc.live.after_commit(session, call_message("call.deleted", call))
        await session.delete(call)
    return web.Response(status=204)


# --- starting calls --------------------------------------------------------------------------


async def _origin(
    session: AsyncSession, config_id: uuid.UUID | None, caller: str | None, region: str | None
) -> tuple[SipConfiguration | None, str]:
    """The SIP configuration an outbound call uses and the number it is placed from."""
    if config_id is not None:
        config = await q.sip_configuration(session, config_id)
        if config is None:
            raise ApiError(422, "validation failed", {"sip_configuration": f"no SIP configuration with id {config_id}"})
        if not config.active:
            raise ApiError(422, "validation failed", {"sip_configuration": "this SIP configuration is not active"})
    else:
        config = await q.default_sip_configuration(session)
    if caller is not None:
        return config, caller
    if config is None:
        raise ApiError(
            422, "validation failed", {"caller_number": "required: there is no default active SIP configuration"}
        )
    try:
        return config, normalise_number(config.username, "caller_number", region)
    except InvalidValue:
        raise ApiError(
            422,
            "validation failed",
            {"caller_number": f"required: the SIP username {config.username!r} is not a number or extension"},
        ) from None


async def initiate_call(request: web.Request) -> web.Response:
    """POST /api/call-logs/initiate_call/ — place an outbound call (recorded as ``initiated``)."""
    svc = services(request)
    region = svc.config.calls.default_region
    body = await read_json_object(request)
    fields = _fields(body, ("recipient_number", "call_type", "sip_configuration", "caller_number"))
    recipient = fields.phone("recipient_number", region, required=True)
    call_type = fields.choice("call_type", CallType, default=CallType.VOICE)
    config_id = fields.uuid("sip_configuration")
    given_caller = fields.phone("caller_number", region)
    fields.done()
    async with svc.db.write() as session:
        config, caller = await _origin(session, config_id, given_caller, region)
        new = NewCall(
            direction=CallDirection.OUTBOUND,
            caller_number=caller,
            recipient_number=recipient,
            call_type=call_type,
            sip_configuration_id=config.id if config is not None else None,
            # What calld dials is what it presents (already read by the number policy).
            caller_number_raw=caller,
            recipient_number_raw=recipient,
        )
        call = await svc.calls.create(session, new, EventSource.API)
        detail = await _detail(session, call)
    if svc.switch is not None:
        detail = await _originate_on_switch(svc, svc.switch, call.id)
    return web.json_response(detail, status=201)


async def _originate_on_switch(svc: Services, switch: SwitchPort, call_id: uuid.UUID) -> dict[str, Any]:
    """THE SWITCH SEAM for new calls: ask the switch to place the stored call.

    The call is committed first, so the switch's first events (which carry the calld call id) always
    find it. A refused origination is kept as a ``failed`` call with the switch's reason (the
    attempt happened) and answered with the switch error.
    """
    try:
        ref = await switch.originate(str(call_id), *await _parties(svc, call_id))
    except (SwitchError, SwitchUnavailable) as exc:
        async with svc.db.write() as session:
            call = await _locked(svc, session, call_id)
            if CallStatus(call.status) not in TERMINAL_STATUSES:
                await _apply(svc, session, call, EventType.FAILED, {"reason": str(exc), "switch": switch.name})
        raise
    async with svc.db.write() as session:
        call = await _locked(svc, session, call_id)
        call.switch_name = switch.name
        call.switch_call_ref = call.switch_call_ref or ref
        return await _detail(session, call)


async def _parties(svc: Services, call_id: uuid.UUID) -> tuple[str, str]:
    async with svc.db.read() as session:
        call = await session.get(CallLog, call_id)
        assert call is not None
        return call.recipient_number, call.caller_number


async def log_incoming_call(request: web.Request) -> web.Response:
    """POST /api/call-logs/log_incoming_call/ — record an inbound call by its SIP Call-ID."""
    svc = services(request)
    fields = _fields(await read_json_object(request), ("caller_number", "recipient_number", "sip_call_id"))
    new = NewCall(
        direction=CallDirection.INBOUND,
        caller_number=fields.presented("caller_number", required=True),
        recipient_number=fields.presented("recipient_number", required=True),
        sip_call_id=fields.string("sip_call_id", required=True),
    )
    fields.done()
    return await _log_call(svc, new)


# --- status changes and actions ------------------------------------------------------------


async def update_status(request: web.Request) -> web.Response:
    """PATCH /api/call-logs/{id}/update_status/ — move the call to ``status`` by the matching event."""
    svc = services(request)
    call_id = _call_id(request)
    body = await read_json_object(request)
    fields = _fields(body, ("status", "notes", "call_quality_score"))
    requested = fields.choice("status", CallStatus, required=True)
    changes = _patch_changes(fields, body)
    fields.done()
    async with svc.db.write() as session:
        call = await _locked(svc, session, call_id)
        event_type, metadata = event_for_status(state_of(call), requested)
        await _apply(svc, session, call, event_type, metadata)
        _set(call, changes)
        detail = await _detail(session, call)
        if changes:  # the event's own message showed the call before these
            svc.live.after_commit(session, call_message("call.updated", call))
    return web.json_response(detail)


def _switch_for(svc: Services, call: CallLog) -> SwitchPort | None:
    """THE SWITCH SEAM for live calls: the switch that controls ``call``, or None.

    With a switch, an action asks it and changes nothing locally: the switch's events confirm
    the change through the call store. Without one, the action is applied to storage directly.
    """
    switch = svc.switch
    if switch is None or call.switch_call_ref is None or call.switch_name != switch.name:
        return None
    return switch


def _check_allowed(svc: Services, call: CallLog, event_type: EventType, metadata: dict[str, Any]) -> None:
    """Refuse (409) before asking the switch for something the call cannot do now."""
    apply_event(state_of(call), event_type, svc.calls.clock(), metadata)


async def _recording_path(session: AsyncSession, call: CallLog) -> str:
    """``<call id>.wav`` for a call's first recording, ``<call id>-<n>.wav`` for its n-th: one
    flat directory (the switch's recording directory) where a call's files are found by its id."""
    count = len(await q.recordings_of(session, call.id)) + 1
    return f"{call.id}.wav" if count == 1 else f"{call.id}-{count}.wav"


async def _action(
    request: web.Request, event_type: EventType | None, metadata: dict[str, Any] | None = None
) -> web.Response:
    """Apply one action event to the call in the path (``None``: decided by the call's status)."""
    svc = services(request)
    call_id = _call_id(request)
    meta = dict(metadata or {})
    async with svc.db.write() as session:
        call = await _locked(svc, session, call_id)
        kind = event_type if event_type is not None else _hold_toggle(call)
        switch = _switch_for(svc, call)
        if switch is None:
            if kind is EventType.RECORDING_STARTED:
                meta.setdefault("completed_by", _RECORDING_WITHOUT_SWITCH)
            await _apply(svc, session, call, kind, meta)
        else:
            _check_allowed(svc, call, kind, meta)
            await _ask_switch(session, switch, call, kind, meta)
        detail = await _detail(session, call)
    return web.json_response(detail)


# No switch records this call: say, on the event the client gets back, what finishes the recording.
_RECORDING_WITHOUT_SWITCH = (
    "no switch records calls here: the recording stays 'recording' until the recording system reports it "
    "with POST /api/webhooks/recording/ {call_id, status, file_url or local_path, ...}"
)


def _hold_toggle(call: CallLog) -> EventType:
    status = CallStatus(call.status)
    if status in (CallStatus.ANSWERED, CallStatus.RECORDING):
        return EventType.HOLD
    if status is CallStatus.ON_HOLD:
        return EventType.UNHOLD
    raise IllegalTransition(status, EventType.HOLD, "only an answered, recording or held call can toggle hold")


async def _ask_switch(
    session: AsyncSession, switch: SwitchPort, call: CallLog, kind: EventType, meta: dict[str, Any]
) -> None:
    """Ask ``switch`` to carry out ``kind`` on ``call`` (switch mode; not exercised without an adapter)."""
    ref = call.switch_call_ref
    assert ref is not None
    if kind is EventType.ENDED:
        await switch.hangup(ref)
    elif kind is EventType.HOLD:
        await switch.hold(ref)
    elif kind is EventType.UNHOLD:
        await switch.unhold(ref)
    elif kind is EventType.TRANSFER_INITIATED:
        await switch.transfer(ref, meta["transfer_to"], bool(meta.get("attended", False)))
    elif kind is EventType.RECORDING_STARTED:
        path = await _recording_path(session, call)
        session.add(CallRecording(call_id=call.id, status=RecordingStatus.PENDING, local_path=path, format="wav"))
        await switch.start_recording(ref, path)
    elif kind is EventType.RECORDING_STOPPED:
        active = await q.active_recording(session, call.id)
        await switch.stop_recording(ref, active.local_path if active is not None and active.local_path else "")


async def end_call(request: web.Request) -> web.Response:
    """POST /api/call-logs/{id}/end_call/ — hang up (outcome per the domain: ended, missed or cancelled)."""
    await _empty_body(request)
    return await _action(request, EventType.ENDED)


async def start_recording(request: web.Request) -> web.Response:
    """POST /api/call-logs/{id}/start_recording/ — start a recording (409 if already recording)."""
    await _empty_body(request)
    return await _action(request, EventType.RECORDING_STARTED)


async def stop_recording(request: web.Request) -> web.Response:
    """POST /api/call-logs/{id}/stop_recording/ — stop the recording (409 if not recording)."""
    await _empty_body(request)
    return await _action(request, EventType.RECORDING_STOPPED)


async def toggle_hold(request: web.Request) -> web.Response:
    """POST /api/call-logs/{id}/toggle_hold/ — hold an answered/recording call, or resume a held one."""
    await _empty_body(request)
    return await _action(request, None)


async def transfer_call(request: web.Request) -> web.Response:
    """POST /api/call-logs/{id}/transfer_call/ — transfer a connected call to a number or extension."""
    region = services(request).config.calls.default_region
    fields = _fields(await read_json_object(request), ("transfer_to", "attended"))
    target = fields.phone("transfer_to", region, required=True)
    attended = fields.boolean("attended", default=False)
    fields.done()
    return await _action(request, EventType.TRANSFER_INITIATED, {"transfer_to": target, "attended": attended})


async def add_event(request: web.Request) -> web.Response:
    """POST /api/call-logs/{id}/add_event/ — record one event (201 with the stored event)."""
    svc = services(request)
    call_id = _call_id(request)
    fields = _fields(await read_json_object(request), ("event_type", "metadata"))
    event_type = fields.choice("event_type", EventType, required=True)
    if event_type is EventType.INITIATED:
        fields.fail("event_type", "a call is initiated only once, when it is created")
    metadata = fields.mapping("metadata", default={})
    _check_metadata(fields, event_type, metadata)
    fields.done()
    async with svc.db.write() as session:
        call = await _locked(svc, session, call_id)
        event = await _apply(svc, session, call, event_type, metadata)
        await session.flush()
        body = call_event_json(event)
    return web.json_response(body, status=201)


def _check_metadata(fields: Fields, event_type: EventType | None, metadata: dict[str, Any]) -> None:
    problem = json_problem(metadata)
    if problem is not None:
        fields.fail("metadata", problem)
    target = metadata.get("transfer_to")
    # The domain copies transfer_to into the call's transfer_target column (255 characters).
    bad_target = target is not None and (not isinstance(target, str) or not 0 < len(target) <= 255)
    if event_type is EventType.TRANSFER_INITIATED and bad_target:
        fields.fail("metadata.transfer_to", "must be a string of 1 to 255 characters")


# --- statistics ------------------------------------------------------------------------------


@bundles_token_check
async def statistics(request: web.Request) -> web.Response:
    """GET /api/call-logs/statistics/?period=today|week|month — counts since the period began."""
    svc = services(request)
    fields = _query_fields(request, ("period",))
    period = fields.choice("period", q.Period, default=q.Period.TODAY)
    fields.done()
    now = svc.calls.clock()
    start = q.period_start(period, now, svc.config.calls.zone)
    stats = await authorized_query(request, q.call_statistics, start, now)
    return web.json_response(
        {
            "period": period.value,
            "total_calls": stats.total_calls,
            "answered_calls": stats.answered_calls,
            "missed_calls": stats.missed_calls,
            "inbound_calls": stats.inbound_calls,
            "outbound_calls": stats.outbound_calls,
            "answer_rate": stats.answer_rate,
            "average_duration_seconds": stats.average_duration_seconds,
        }
    )

"""The call-logs API: list, create, read, change and delete calls, and act on live calls.

Handlers parse and validate the whole request, make one call into the service layer
(``calld.service.calls`` for records, ``calld.service.control`` for live calls) and render its
answer; a refused request stores nothing.
"""

from __future__ import annotations

import re
import uuid
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from calld.domain.call import MAX_QUALITY_SCORE, NewCall
from calld.domain.call_filter import (
    COLUMN_CRITERIA,
    DEFAULT_ORDERING,
    MAX_TAGS,
    ORDERINGS,
    CallFilter,
    ColumnCriterion,
    Compare,
    Period,
    is_number_pattern,
    normalise_tag,
    number_pattern,
    search_text,
)
from calld.domain.privacy import is_pseudonym
from calld.domain.vocabulary import CallDirection, CallStatus, CallType, EventType
from calld.http.auth import bundles_token_check, pending_check
from calld.http.context import services
from calld.http.errors import read_json_object
from calld.http.pagination import page_json, page_window
from calld.http.routing import CALLS, ILLEGAL, ON_SWITCH, SWITCH_DOWN, SWITCH_REFUSED, Op, Routes, action_op
from calld.http.schema import (
    BOOLEAN,
    DATE_OR_TIME,
    PAGING,
    UUID,
    Schema,
    choice,
    number,
    query,
    several,
    string,
)
from calld.http.validation import Fields, json_problem, path_uuid
from calld.service.calls import CallChanges, Logged

BASE = "/api/call-logs/"
WHAT = "call log"
NOTES_MAX = 10_000
_LOCAL_DAY = "(or a date: the midnight it begins in `calls.timezone`)"
MAX_QUERY_TEXT = 200
_Q_DESCRIPTION = (
    "Free text: calls whose notes, or client's name, or one of whose transcripts contain every word "
    "(letters and digits; a word matches the words it starts, case does not matter)."
)
NUMBER_PATTERN = string(
    64,
    description="A number (E.164, an extension, a national number read in calls.default_region, or a "
    "pseudonym anon:<hex> that retention left), or a pattern: * for any characters, ? for one, after at "
    "least two fixed characters (+4930*, +1415555????).",
)

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
PATCH_FIELDS = ("notes", "call_quality_score", "client", "sip_configuration", "tags")


routes = Routes()


def call_list_query() -> tuple[Schema, ...]:
    return (
        *call_filter_params(),
        query("ordering", choice(ORDERINGS, f"Default {DEFAULT_ORDERING}.")),
        *PAGING,
    )


def call_filter_params() -> tuple[Schema, ...]:
    """The list's filters, as OpenAPI query parameters."""
    return (
        several("status", choice(CallStatus), "Any of these statuses"),
        several("direction", choice(CallDirection), "Any of these directions"),
        several("call_type", choice(CallType), "Any of these call types"),
        query("number", NUMBER_PATTERN, "Calls from or to this number, or numbers this pattern matches."),
        query("client", UUID, "Calls of this client."),
        query("started_after", DATE_OR_TIME, f"Calls started at or after this instant {_LOCAL_DAY}."),
        query("started_before", DATE_OR_TIME, f"Calls started before this instant {_LOCAL_DAY}."),
        query("has_recording", BOOLEAN, "Calls with (true) or without (false) a recording that is not deleted."),
        query("has_transcript", BOOLEAN, "Calls with (true) or without (false) a transcribed recording."),
        query("q", string(MAX_QUERY_TEXT, min_length=1), _Q_DESCRIPTION),
        several("tag", string(64, min_length=1), "Calls with any of these tags (case does not matter)"),
        *(_criterion_param(c) for c in COLUMN_CRITERIA),
    )


def _criterion_param(criterion: ColumnCriterion) -> Schema:
    if criterion.values is float:
        return query(criterion.param, number(criterion.minimum, criterion.maximum), criterion.description)
    return several(criterion.param, choice(criterion.values), criterion.description)  # type: ignore[arg-type]


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


def _changes(fields: Fields, body: dict[str, Any]) -> CallChanges:
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
    if "tags" in body:
        changes["tags"] = _tags(fields, fields.string_list("tags", default=[], max_items=MAX_TAGS))
    return CallChanges(changes)


def _tags(fields: Fields, raw: list[str], name: str = "tags") -> list[str]:
    tags = []
    for value in raw:
        try:
            tags.append(normalise_tag(value))
        except ValueError as exc:
            fields.fail(name, str(exc))
    return tags


def _logged(logged: Logged) -> web.Response:
    return web.json_response(logged.detail, status=201 if logged.created else 200)


FILTER_PARAMS = (
    "status",
    "direction",
    "call_type",
    "number",
    "client",
    "started_after",
    "started_before",
    "has_recording",
    "has_transcript",
    "q",
    "tag",
    *(c.param for c in COLUMN_CRITERIA),
)
_MULTI_PARAMS: dict[str, type[CallStatus] | type[CallDirection] | type[CallType]] = {
    "status": CallStatus,
    "direction": CallDirection,
    "call_type": CallType,
}
# A "+" in a query string decodes to a space, so "…T10:00:00+02:00" or "+14155550100" sent
# unencoded arrives as "…T10:00:00 02:00" or " 14155550100"; put the sign back rather than refuse
# (or, for a number, misread) what was obviously meant.
_LOST_OFFSET_PLUS = (re.compile(r" (\d{2}(?::?\d{2})?)$"), r"+\1")
# Not extensions (2 to 6 digits); patterns (+4930*) too.
_LOST_NUMBER_PLUS = (re.compile(r"^ (?=\d{7,}$|\d+[*?][\d*?]*$)"), "+")
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


def _multi_criteria() -> tuple[str, ...]:
    return tuple(c.param for c in COLUMN_CRITERIA if c.compare is Compare.ANY_OF)


def _enum_values(fields: Fields, request: web.Request, name: str) -> list[Any]:
    return _choices(fields, request, name, _MULTI_PARAMS[name])


def _choices(fields: Fields, request: web.Request, name: str, enum: type[StrEnum]) -> list[Any]:
    """A repeatable or comma-separated parameter's values, each one of ``enum``'s."""
    values: list[Any] = []
    for raw in request.query.getall(name, []):
        for part in raw.split(","):
            try:
                values.append(enum(part.strip()))
            except ValueError:
                fields.fail(name, f"{part.strip()!r} is not one of: {', '.join(m.value for m in enum)}")
    return values


def _number_filter(fields: Fields, region: str | None) -> dict[str, Any]:
    """``number``: one number (normalised as stored), a pseudonym, or a pattern."""
    raw = fields.data.get("number")
    if not isinstance(raw, str) or not is_number_pattern(raw):
        if isinstance(raw, str) and is_pseudonym(raw.strip()):
            return {"number": raw.strip()}
        return {"number": fields.phone("number", region)}
    try:
        return {"number_pattern": number_pattern(raw)}
    except ValueError as exc:
        fields.fail("number", str(exc))
        return {}


def _text_filter(fields: Fields) -> dict[str, Any]:
    raw = fields.string("q", max_length=MAX_QUERY_TEXT)
    if raw is None:
        return {}
    try:
        return {"text": search_text(raw)}
    except ValueError as exc:
        fields.fail("q", str(exc))
        return {}


def _criteria(fields: Fields, request: web.Request) -> dict[str, object]:
    """The ``COLUMN_CRITERIA`` given, read by their kind; a minimum above its maximum names the minimum."""
    found: dict[str, object] = {}
    for criterion in COLUMN_CRITERIA:
        if criterion.values is float:
            value = fields.number(criterion.param, minimum=criterion.minimum, maximum=criterion.maximum)
            if value is not None:
                found[criterion.param] = value
            continue
        values = _choices(fields, request, criterion.param, criterion.values)  # type: ignore[arg-type]
        if values:
            found[criterion.param] = tuple(values)
    by_column: dict[str, dict[Compare, tuple[str, float]]] = {}
    for param, value in found.items():
        criterion = next(c for c in COLUMN_CRITERIA if c.param == param)
        if isinstance(value, float):
            by_column.setdefault(criterion.column, {})[criterion.compare] = (param, value)
    for bounds in by_column.values():
        low, high = bounds.get(Compare.AT_LEAST), bounds.get(Compare.AT_MOST)
        if low is not None and high is not None and low[1] > high[1]:
            fields.fail(low[0], f"must not be more than {high[0]} ({high[1]:g})")
    return found


def call_filter_query(
    request: web.Request, region: str | None, zone: ZoneInfo, also: tuple[str, ...] = ()
) -> tuple[Fields, CallFilter]:
    """The list's filters read from the query string (which may also hold the parameters ``also``)."""
    fields = _query_fields(request, (*FILTER_PARAMS, *also), (*_MULTI_PARAMS, "tag", *_multi_criteria()))
    statuses, directions, call_types = (_enum_values(fields, request, name) for name in _MULTI_PARAMS)
    return fields, CallFilter(
        statuses=statuses,
        directions=directions,
        call_types=call_types,
        client_id=fields.uuid("client"),
        started_after=fields.timestamp("started_after", zone=zone),
        started_before=fields.timestamp("started_before", zone=zone),
        has_recording=fields.boolean("has_recording"),
        has_transcript=fields.boolean("has_transcript"),
        criteria=_criteria(fields, request),
        tags=_tags(fields, [part for raw in request.query.getall("tag", []) for part in raw.split(",")], "tag"),
        **_number_filter(fields, region),
        **_text_filter(fields),
    )


def _parse_list_query(request: web.Request, region: str | None, zone: ZoneInfo) -> tuple[CallFilter, str, int, int]:
    fields, flt = call_filter_query(request, region, zone, ("ordering", "limit", "offset"))
    ordering = fields.string("ordering", default=DEFAULT_ORDERING)
    if ordering not in ORDERINGS:
        fields.fail("ordering", f"must be one of: {', '.join(ORDERINGS)}")
    limit, offset = page_window(fields)
    fields.done()
    return flt, ordering, limit, offset


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


# --- fixed paths (before the ``{id}`` ones, which would match them) ------------------------------


@routes.get(BASE, Op(CALLS, "List calls", {200: "CallLogPage"}, params=call_list_query()))
@bundles_token_check
async def list_calls(request: web.Request) -> web.Response:
    """GET /api/call-logs/ — one page of calls matching the filters."""
    svc = services(request)
    flt, ordering, limit, offset = _parse_list_query(request, svc.config.calls.default_region, svc.config.calls.zone)
    total, calls = await svc.call_log.page(
        flt, ordering=ordering, limit=limit, offset=offset, guard=pending_check(request)
    )
    return web.json_response(page_json(request, total, calls, limit, offset))


@routes.post(
    BASE,
    Op(
        CALLS,
        "Record a call",
        {201: "CallDetail", 200: "CallDetail"},
        "CallCreate",
        errors={409: "the request conflicts with stored data"},
        description="It starts initiated at the server's clock. A call already logged under the same "
        "sip_call_id (by a webhook, the switch or an earlier request) is answered 200, with what it lacked "
        "filled in; nothing is stored twice.",
    ),
)
async def create_call(request: web.Request) -> web.Response:
    """POST /api/call-logs/ — record a call; it starts ``initiated`` at the server's clock."""
    svc = services(request)
    region = svc.config.calls.default_region
    fields = _fields(await read_json_object(request), CREATE_FIELDS)
    new = NewCall(
        direction=fields.choice("direction", CallDirection, required=True),
        call_type=fields.choice("call_type", CallType, default=CallType.VOICE),
        caller_number=fields.phone("caller_number", region, required=True),
        recipient_number=fields.phone("recipient_number", region, required=True),
        sip_call_id=fields.string("sip_call_id"),
        client_id=fields.uuid("client"),
        sip_configuration_id=fields.uuid("sip_configuration"),
        notes=fields.string("notes", default="", blank=True, max_length=NOTES_MAX),
    )
    fields.done()
    return _logged(await svc.call_log.log(new))


@routes.get(
    BASE + "statistics/",
    Op(
        CALLS,
        "Call statistics",
        {200: "Statistics"},
        params=(query("period", choice(Period, "Default today.")),),
        description="Counts since the period began (local midnight, Monday, the 1st in calls.timezone).",
    ),
)
@bundles_token_check
async def statistics(request: web.Request) -> web.Response:
    """GET /api/call-logs/statistics/?period=today|week|month — counts since the period began."""
    svc = services(request)
    fields = _query_fields(request, ("period",))
    period = fields.choice("period", Period, default=Period.TODAY)
    fields.done()
    stats = await svc.call_log.statistics(
        period, svc.calls.clock(), svc.config.calls.zone, guard=pending_check(request)
    )
    return web.json_response(stats)


@routes.post(
    BASE + "initiate_call/",
    Op(
        CALLS,
        "Place an outbound call",
        {201: "CallDetail"},
        "OutboundCall",
        errors={409: SWITCH_REFUSED, 502: SWITCH_DOWN},
        description="Through the switch when one is configured; a refused call is kept as failed.",
    ),
)
async def initiate_call(request: web.Request) -> web.Response:
    """POST /api/call-logs/initiate_call/ — place an outbound call (recorded as ``initiated``)."""
    svc = services(request)
    region = svc.config.calls.default_region
    fields = _fields(
        await read_json_object(request), ("recipient_number", "call_type", "sip_configuration", "caller_number")
    )
    recipient = fields.phone("recipient_number", region, required=True)
    call_type = fields.choice("call_type", CallType, default=CallType.VOICE)
    config_id = fields.uuid("sip_configuration")
    caller = fields.phone("caller_number", region)
    fields.done()
    return web.json_response(await svc.call_log.initiate(recipient, call_type, config_id, caller), status=201)


@routes.post(
    BASE + "log_incoming_call/",
    Op(
        CALLS,
        "Record an inbound call",
        {201: "CallDetail", 200: "CallDetail"},
        "IncomingCall",
        errors={409: "the request conflicts with stored data"},
        description="The seed's inbound flow logs a call its SIP provider already announced (webhook "
        "call_initiated): a call with the same sip_call_id is answered 200 as it is stored, not logged twice.",
    ),
)
async def log_incoming_call(request: web.Request) -> web.Response:
    """POST /api/call-logs/log_incoming_call/ — record an inbound call by its SIP Call-ID."""
    svc = services(request)
    region = svc.config.calls.default_region
    fields = _fields(await read_json_object(request), ("caller_number", "recipient_number", "sip_call_id"))
    new = NewCall(
        direction=CallDirection.INBOUND,
        caller_number=fields.phone("caller_number", region, required=True),
        recipient_number=fields.phone("recipient_number", region, required=True),
        sip_call_id=fields.string("sip_call_id", required=True),
    )
    fields.done()
    return _logged(await svc.call_log.log(new))


# --- one call --------------------------------------------------------------------------------


@routes.get(BASE + "{id}/", Op(CALLS, "A call with its events and recordings", {200: "CallDetail"}))
@bundles_token_check
async def get_call(request: web.Request) -> web.Response:
    """GET /api/call-logs/{id}/ — a call with its events and recordings."""
    call_id = _call_id(request)
    return web.json_response(await services(request).call_log.detail(call_id, guard=pending_check(request)))


@routes.patch(
    BASE + "{id}/",
    Op(CALLS, "Change a call's notes, score, client or SIP configuration", {200: "CallDetail"}, "CallPatch"),
)
async def patch_call(request: web.Request) -> web.Response:
    """PATCH /api/call-logs/{id}/ — notes, quality score, client and SIP configuration only."""
    call_id = _call_id(request)
    body = await read_json_object(request)
    fields = _fields(body, PATCH_FIELDS)
    changes = _changes(fields, body)
    fields.done()
    return web.json_response(await services(request).call_log.change(call_id, changes))


@routes.delete(BASE + "{id}/", Op(CALLS, "Delete a call with its events and recordings", {204: None}))
async def delete_call(request: web.Request) -> web.Response:
    """DELETE /api/call-logs/{id}/ — the call, its events and recordings (by cascade)."""
    await services(request).call_log.delete(_call_id(request))
    return web.Response(status=204)


@routes.patch(
    BASE + "{id}/update_status/",
    Op(CALLS, "Change a call's status", {200: "CallDetail"}, "StatusChange", errors={409: ILLEGAL}),
)
async def update_status(request: web.Request) -> web.Response:
    """PATCH /api/call-logs/{id}/update_status/ — move the call to ``status`` by the matching event."""
    call_id = _call_id(request)
    body = await read_json_object(request)
    fields = _fields(body, ("status", "notes", "call_quality_score"))
    requested = fields.choice("status", CallStatus, required=True)
    changes = _changes(fields, body)
    fields.done()
    return web.json_response(await services(request).call_log.set_status(call_id, requested, changes))


@routes.post(BASE + "{id}/end_call/", action_op("Hang up", "The outcome follows the call: ended, missed or cancelled."))
async def end_call(request: web.Request) -> web.Response:
    """POST /api/call-logs/{id}/end_call/ — hang up (outcome per the domain: ended, missed or cancelled)."""
    await _empty_body(request)
    return web.json_response(await services(request).control.end(_call_id(request)))


@routes.post(
    BASE + "{id}/add_event/", Op(CALLS, "Record an event", {201: "CallEvent"}, "NewEvent", errors={409: ILLEGAL})
)
async def add_event(request: web.Request) -> web.Response:
    """POST /api/call-logs/{id}/add_event/ — record one event (201 with the stored event)."""
    call_id = _call_id(request)
    fields = _fields(await read_json_object(request), ("event_type", "metadata"))
    event_type = fields.choice("event_type", EventType, required=True)
    if event_type is EventType.INITIATED:
        fields.fail("event_type", "a call is initiated only once, when it is created")
    if event_type is EventType.PROVIDER_EVENT:
        fields.fail("event_type", "provider_event is what a SIP provider's own webhook reported; not added by hand")
    metadata = fields.mapping("metadata", default={})
    _check_metadata(fields, event_type, metadata)
    fields.done()
    return web.json_response(await services(request).call_log.add_event(call_id, event_type, metadata), status=201)


@routes.post(BASE + "{id}/start_recording/", action_op("Start recording"))
async def start_recording(request: web.Request) -> web.Response:
    """POST /api/call-logs/{id}/start_recording/ — start a recording (409 if already recording)."""
    await _empty_body(request)
    return web.json_response(await services(request).control.start_recording(_call_id(request)))


@routes.post(BASE + "{id}/stop_recording/", action_op("Stop recording"))
async def stop_recording(request: web.Request) -> web.Response:
    """POST /api/call-logs/{id}/stop_recording/ — stop the recording (409 if not recording)."""
    await _empty_body(request)
    return web.json_response(await services(request).control.stop_recording(_call_id(request)))


@routes.post(
    BASE + "{id}/transfer_call/",
    Op(CALLS, "Transfer a connected call", {200: "CallDetail"}, "Transfer", errors=ON_SWITCH),
)
async def transfer_call(request: web.Request) -> web.Response:
    """POST /api/call-logs/{id}/transfer_call/ — transfer a connected call to a number or extension."""
    svc = services(request)
    call_id = _call_id(request)
    fields = _fields(await read_json_object(request), ("transfer_to", "attended"))
    target = fields.phone("transfer_to", svc.config.calls.default_region, required=True)
    attended = fields.boolean("attended", default=False)
    fields.done()
    return web.json_response(await svc.control.transfer(call_id, target, attended))


@routes.post(BASE + "{id}/toggle_hold/", action_op("Hold an answered call, or resume a held one"))
async def toggle_hold(request: web.Request) -> web.Response:
    """POST /api/call-logs/{id}/toggle_hold/ — hold an answered/recording call, or resume a held one."""
    await _empty_body(request)
    return web.json_response(await services(request).control.toggle_hold(_call_id(request)))

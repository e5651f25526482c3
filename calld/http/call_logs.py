"""The call-logs API: list, create, read, change and delete calls, and act on live calls.

Handlers parse and validate the whole request, make one call into the service layer
(``calld.service.calls`` for records, ``calld.service.control`` for live calls) and render its
answer; a refused request stores nothing.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiohttp import web
from multidict import MultiMapping

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
    period_start,
    search_text,
)
from calld.domain.controls import MAX_DTMF_MS, MIN_DTMF_MS, Party, validate_dtmf
from calld.domain.errors import InvalidValue
from calld.domain.parking import validate_slot
from calld.domain.privacy import is_pseudonym
from calld.domain.statistics import (
    DEFAULT_SERVICE_LEVEL,
    EARLIEST,
    LATEST,
    MAX_BUCKETS,
    SERVICE_LEVELS,
    GroupBy,
    Interval,
    ReportRequest,
    bucket_count_estimate,
)
from calld.domain.vocabulary import CallDirection, CallStatus, CallType, EventType
from calld.http.auth import bundles_token_check, pending_check
from calld.http.context import services
from calld.http.errors import read_json_object
from calld.http.pagination import page_json, page_window
from calld.http.responses import json_response
from calld.http.routing import (
    CALLS,
    ILLEGAL,
    LEADER_SILENT,
    NO_LEADER,
    ON_SWITCH,
    SWITCH_DOWN,
    SWITCH_REFUSED,
    Op,
    Routes,
    action_op,
)
from calld.http.schema import (
    BOOLEAN,
    DATE_OR_TIME,
    PAGING,
    UUID,
    Schema,
    choice,
    integer,
    number,
    query,
    several,
    string,
)
from calld.http.validation import Fields, json_problem, path_uuid
from calld.service.calls import CallChanges, Logged
from calld.service.export import ExportFormat, export_chunks, file_name, report_csv
from calld.service.views import EXPORT_FIELDS

BASE = "/api/call-logs/"
WHAT = "call log"
NOTES_MAX = 10_000
_LOCAL_DAY = "(or a date: the midnight it begins in `calls.timezone`)"
_REPORT_DAY = "(or a date: the midnight it begins in `timezone`)"
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
            "mos",
            "jitter_ms",
            "packet_loss_pct",
            "rtt_ms",
            "quality_source",
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
    if criterion.values is str:
        return query(criterion.param, string(int(criterion.maximum or 255)), criterion.description)
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
    return json_response(logged.detail, status=201 if logged.created else 200)


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
_MULTI_PARAMS: dict[str, type[StrEnum]] = {
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
    "from": _LOST_OFFSET_PLUS,
    "until": _LOST_OFFSET_PLUS,
    "started_after": _LOST_OFFSET_PLUS,
    "started_before": _LOST_OFFSET_PLUS,
    "number": _LOST_NUMBER_PLUS,
}


def _query_fields(query: MultiMapping[str], allowed: tuple[str, ...], multi: tuple[str, ...] = ()) -> Fields:
    """Fields over a query string: unknown parameters and repeated single-valued ones are errors."""
    single = {key: query[key] for key in query if key not in multi}
    for key, (pattern, replacement) in _PLUS_REPAIRS.items():
        if key in single:
            single[key] = pattern.sub(replacement, single[key])
    fields = Fields(single, allowed=allowed, query=True)
    for key in single:
        if key in allowed and len(query.getall(key)) > 1:
            fields.fail(key, "give this parameter once")
    return fields


def _multi_criteria() -> tuple[str, ...]:
    return tuple(c.param for c in COLUMN_CRITERIA if c.compare is Compare.ANY_OF)


def _multi_params() -> tuple[str, ...]:
    """The parameters that may be repeated (or comma-separated)."""
    return (*_MULTI_PARAMS, "tag", *_multi_criteria())


def _enum_values(fields: Fields, query: MultiMapping[str], name: str) -> list[Any]:
    return _choices(fields, query, name, _MULTI_PARAMS[name])


def _choices(fields: Fields, query: MultiMapping[str], name: str, enum: type[StrEnum]) -> list[Any]:
    """A repeatable or comma-separated parameter's values, each one of ``enum``'s."""
    values: list[Any] = []
    for raw in query.getall(name, []):
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


def _criteria(fields: Fields, query: MultiMapping[str]) -> dict[str, object]:
    """The ``COLUMN_CRITERIA`` given, read by their kind; a minimum above its maximum names the minimum."""
    found: dict[str, object] = {}
    for criterion in COLUMN_CRITERIA:
        if criterion.values is float:
            value = fields.number(criterion.param, minimum=criterion.minimum, maximum=criterion.maximum)
            if value is not None:
                found[criterion.param] = value
            continue
        if criterion.values is str:
            text = fields.string(criterion.param, max_length=int(criterion.maximum or 255))
            if text is not None:
                found[criterion.param] = text
            continue
        values = _choices(fields, query, criterion.param, criterion.values)  # type: ignore[arg-type]
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


def _call_filter(
    fields: Fields, query: MultiMapping[str], region: str | None, zone: ZoneInfo
) -> tuple[CallFilter, str]:
    """The list's filters and ordering, read from ``query`` (errors left in ``fields``)."""
    statuses, directions, call_types = (_enum_values(fields, query, name) for name in _MULTI_PARAMS)
    flt = CallFilter(
        statuses=statuses,
        directions=directions,
        call_types=call_types,
        client_id=fields.uuid("client"),
        started_after=fields.timestamp("started_after", zone=zone),
        started_before=fields.timestamp("started_before", zone=zone),
        has_recording=fields.boolean("has_recording"),
        has_transcript=fields.boolean("has_transcript"),
        criteria=_criteria(fields, query),
        tags=_tags(fields, [part for raw in query.getall("tag", []) for part in raw.split(",")], "tag"),
        **_number_filter(fields, region),
        **_text_filter(fields),
    )
    ordering = fields.string("ordering", default=DEFAULT_ORDERING)
    if ordering not in ORDERINGS:
        fields.fail("ordering", f"must be one of: {', '.join(ORDERINGS)}")
    return flt, ordering


def call_filter_query(
    query: MultiMapping[str], region: str | None, zone: ZoneInfo, also: tuple[str, ...] = ()
) -> tuple[Fields, CallFilter]:
    """The list's filters read from the query string (which may also hold the parameters ``also``)."""
    fields = _query_fields(query, (*FILTER_PARAMS, *also), _multi_params())
    flt, _ordering = _call_filter(fields, query, region, zone)
    return fields, flt


_LIST_PARAMS = (*FILTER_PARAMS, "ordering", "limit", "offset")


def _parse_list_query(query: MultiMapping[str], region: str | None, zone: ZoneInfo) -> tuple[CallFilter, str, int, int]:
    fields = _query_fields(query, _LIST_PARAMS, _multi_params())
    flt, ordering = _call_filter(fields, query, region, zone)
    limit, offset = page_window(fields)
    fields.done()
    return flt, ordering, limit, offset


# The export takes every list filter and the ordering; the whole selection instead of a page.
_EXPORT_PARAMS = (*FILTER_PARAMS, "ordering", "format")


def parse_export_query(
    query: MultiMapping[str], region: str | None, zone: ZoneInfo
) -> tuple[CallFilter, str, ExportFormat]:
    """What ``GET /api/call-logs/export/`` (and ``calld export``) was asked: filters, ordering, format;
    ``ApiError`` 422 naming each bad parameter."""
    fields = _query_fields(query, _EXPORT_PARAMS, _multi_params())
    flt, ordering = _call_filter(fields, query, region, zone)
    fmt = fields.choice("format", ExportFormat, default=ExportFormat.CSV)
    fields.done()
    return flt, ordering, fmt


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
    flt, ordering, limit, offset = _parse_list_query(
        request.query, svc.config.calls.default_region, svc.config.calls.zone
    )
    total, calls = await svc.call_log.page(
        flt, ordering=ordering, limit=limit, offset=offset, guard=pending_check(request)
    )
    return json_response(page_json(request, total, calls, limit, offset))


@routes.get(
    BASE + "export/",
    Op(
        CALLS,
        "Export calls as CSV or NDJSON",
        {200: None},
        params=(
            *call_list_query()[: -len(PAGING)],
            query("format", choice(ExportFormat, "Default csv.")),
        ),
        description="Every call matching the list's filters, in its ordering, streamed (memory stays flat "
        "however many). Columns, in this order (the list's fields, then names and a summary): "
        + ", ".join(EXPORT_FIELDS)
        + ". CSV: RFC 4180 with a header row; a text cell starting with =, +, -, @, tab or CR gets a leading "
        "apostrophe so spreadsheets show it as text. NDJSON: one JSON object a line, typed. Offered as a file "
        "(Content-Disposition: attachment).",
    ),
)
@bundles_token_check
async def export_calls(request: web.Request) -> web.StreamResponse:
    """GET /api/call-logs/export/?format=csv|ndjson — every matching call, streamed as a file."""
    svc = services(request)
    flt, ordering, fmt = parse_export_query(request.query, svc.config.calls.default_region, svc.config.calls.zone)
    chunks = export_chunks(svc.db, flt, ordering, fmt, guard=pending_check(request))
    first = await anext(chunks, b"")  # the token check and the first batch, before any byte is sent
    response = web.StreamResponse(
        headers={"Content-Disposition": f'attachment; filename="{file_name(fmt, svc.calls.clock())}"'}
    )
    response.content_type = fmt.content_type
    response.charset = "utf-8"
    await response.prepare(request)
    if request.method == "HEAD":  # the headers only: reading every call for nothing would be a waste
        await chunks.aclose()
        return response
    if first:
        await response.write(first)
    async for chunk in chunks:
        await response.write(chunk)
    await response.write_eof()
    return response


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
    fields = _fields(await read_json_object(request), CREATE_FIELDS)
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
    return _logged(await svc.call_log.log(new))


_REPORT_PARAMS = (
    "period",
    "from",
    "until",
    "interval",
    "group_by",
    "timezone",
    "service_level_seconds",
    "format",
)


class StatisticsFormat(StrEnum):
    JSON = "json"
    CSV = "csv"
    COMPACT = "compact"  # JSON with the series as field names once and rows of values


def statistics_query() -> tuple[Schema, ...]:
    return (
        query("period", choice(Period, "Default today.")),
        query(
            "from", DATE_OR_TIME, f"Calls started at or after this instant {_REPORT_DAY}; default: the period's start."
        ),
        query("until", DATE_OR_TIME, f"Calls started before this instant {_REPORT_DAY}; default: now."),
        query("interval", choice(Interval), "A time series: one bucket per local hour, day, week (Monday) or month."),
        query("group_by", choice(GroupBy), "One series row per bucket and group (groups without calls are left out)."),
        query(
            "timezone", string(fmt="time-zone"), "IANA zone of the calendar buckets and dates; default calls.timezone."
        ),
        query(
            "service_level_seconds",
            integer(default=DEFAULT_SERVICE_LEVEL, enum=list(SERVICE_LEVELS)),
            "service_level is the share of calls answered within this many seconds of ringing.",
        ),
        query(
            "format",
            choice(
                StatisticsFormat,
                "Default json; csv: the series as RFC 4180 CSV; compact: JSON with the series as `fields` "
                "(named once) and `rows` (arrays of values in that order), a third of the size.",
            ),
        ),
    )


def _zone(fields: Fields, default: ZoneInfo) -> ZoneInfo:
    name = fields.string("timezone")
    if name is None:
        return default
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        fields.fail("timezone", f"{name!r} is not an IANA time zone, e.g. Europe/Paris or America/New_York")
        return default


def parse_report_query(
    query_: MultiMapping[str], now: datetime, default_zone: ZoneInfo
) -> tuple[ReportRequest, StatisticsFormat]:
    """A statistics report request; ``ApiError`` 422 naming each bad parameter."""
    fields = _query_fields(query_, _REPORT_PARAMS)
    zone = _zone(fields, default_zone)
    period = fields.choice("period", Period)
    start = fields.timestamp("from", zone=zone)
    end = fields.timestamp("until", zone=zone)
    if period is not None and (start is not None or end is not None):
        fields.fail("period", "give period or from/until, not both")
    start = start if start is not None else period_start(period or Period.TODAY, now, zone)
    end = end if end is not None else now
    for name, instant in (("from", start), ("until", end)):
        if instant is not None and not EARLIEST <= instant <= LATEST:
            fields.fail(name, f"must be from {EARLIEST:%Y-%m-%d} to {LATEST:%Y-%m-%d}")
    if start is not None and end is not None and end <= start:
        fields.fail("until", "must be later than from")
    interval = fields.choice("interval", Interval)
    level = fields.integer("service_level_seconds", default=DEFAULT_SERVICE_LEVEL)
    if level is not None and level not in SERVICE_LEVELS:
        fields.fail("service_level_seconds", f"must be one of: {', '.join(map(str, SERVICE_LEVELS))}")
    request = ReportRequest(
        start=start,
        end=end,
        zone=zone,
        interval=interval,
        group_by=fields.choice("group_by", GroupBy),
        service_level_seconds=level if level in SERVICE_LEVELS else DEFAULT_SERVICE_LEVEL,
    )
    fmt = fields.choice("format", StatisticsFormat, default=StatisticsFormat.JSON)
    if not fields.errors and bucket_count_estimate(interval, start, end) > MAX_BUCKETS:
        fields.fail("interval", f"over {MAX_BUCKETS:,} buckets: shorten the range or take a longer interval")
    fields.done()
    return request, fmt


@routes.get(
    BASE + "statistics/",
    Op(
        CALLS,
        "Call statistics",
        {200: "StatisticsAnswer"},
        params=statistics_query(),
        description="With period alone (or nothing): counts since the period began (local midnight, Monday, "
        "the 1st in calls.timezone), the Statistics shape. With any other parameter: a StatisticsReport over "
        "[from, until) in `timezone`, from the statistics rollup (up to date as each call's change commits), "
        "as JSON or, with format=csv, its series as CSV.",
    ),
)
@bundles_token_check
async def statistics(request: web.Request) -> web.StreamResponse:
    """GET /api/call-logs/statistics/ — counts since the period began, or a report by interval and group."""
    svc = services(request)
    if set(request.query) <= {"period"}:  # the answer calld has always given
        fields = _query_fields(request.query, ("period",))
        period = fields.choice("period", Period, default=Period.TODAY)
        fields.done()
        stats = await svc.call_log.statistics(
            period, svc.calls.clock(), svc.config.calls.zone, guard=pending_check(request)
        )
        return json_response(stats)
    report_request, fmt = parse_report_query(request.query, svc.calls.clock(), svc.config.calls.zone)
    compact = fmt is StatisticsFormat.COMPACT
    report = await svc.call_log.statistics_report(report_request, guard=pending_check(request), compact=compact)
    if fmt is StatisticsFormat.CSV:
        name = f"calld-statistics-{report_request.start:%Y%m%dT%H%M%SZ}.csv"
        return web.Response(
            text=report_csv(report),
            content_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    return json_response(report)


@routes.post(
    BASE + "initiate_call/",
    Op(
        CALLS,
        "Place an outbound call",
        {201: "CallDetail"},
        "OutboundCall",
        errors={409: SWITCH_REFUSED, 502: SWITCH_DOWN, 503: NO_LEADER, 504: LEADER_SILENT},
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
    return json_response(await svc.call_log.initiate(recipient, call_type, config_id, caller), status=201)


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
    fields = _fields(await read_json_object(request), ("caller_number", "recipient_number", "sip_call_id"))
    new = NewCall(
        direction=CallDirection.INBOUND,
        caller_number=fields.presented("caller_number", required=True),
        recipient_number=fields.presented("recipient_number", required=True),
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
    return json_response(await services(request).call_log.detail(call_id, guard=pending_check(request)))


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
    return json_response(await services(request).call_log.change(call_id, changes))


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
    return json_response(await services(request).call_log.set_status(call_id, requested, changes))


@routes.post(BASE + "{id}/end_call/", action_op("Hang up", "The outcome follows the call: ended, missed or cancelled."))
async def end_call(request: web.Request) -> web.Response:
    """POST /api/call-logs/{id}/end_call/ — hang up (outcome per the domain: ended, missed or cancelled)."""
    await _empty_body(request)
    return json_response(await services(request).control.end(_call_id(request)))


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
    return json_response(await services(request).call_log.add_event(call_id, event_type, metadata), status=201)


@routes.post(BASE + "{id}/start_recording/", action_op("Start recording"))
async def start_recording(request: web.Request) -> web.Response:
    """POST /api/call-logs/{id}/start_recording/ — start a recording (409 if already recording)."""
    await _empty_body(request)
    return json_response(await services(request).control.start_recording(_call_id(request)))


@routes.post(BASE + "{id}/stop_recording/", action_op("Stop recording"))
async def stop_recording(request: web.Request) -> web.Response:
    """POST /api/call-logs/{id}/stop_recording/ — stop the recording (409 if not recording)."""
    await _empty_body(request)
    return json_response(await services(request).control.stop_recording(_call_id(request)))


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
    return json_response(await svc.control.transfer(call_id, target, attended))


@routes.post(BASE + "{id}/toggle_hold/", action_op("Hold an answered call, or resume a held one"))
async def toggle_hold(request: web.Request) -> web.Response:
    """POST /api/call-logs/{id}/toggle_hold/ — hold an answered/recording call, or resume a held one."""
    await _empty_body(request)
    return json_response(await services(request).control.toggle_hold(_call_id(request)))


def _party(fields: Fields) -> Party | None:
    party: Party | None = fields.choice("party", Party)
    return party


async def _optional_body(request: web.Request) -> dict[str, Any]:
    """An optional JSON object body: none, or ``{}``, means every default."""
    return await read_json_object(request) if (await request.read()).strip() else {}


_MUTE_NOTE = (
    "With a switch, the switch is asked (Asterisk MuteAudio on the party's channel, FreeSWITCH "
    "`uuid_audio <leg> start read mute 1` / `stop`) and the event is stored when the switch reports it."
)


@routes.post(
    BASE + "{id}/mute/",
    Op(
        CALLS,
        "Mute what a party says",
        {200: "CallDetail"},
        "PartyChoice",
        False,
        errors=ON_SWITCH,
        description=_MUTE_NOTE,
    ),
)
async def mute(request: web.Request) -> web.Response:
    """POST /api/call-logs/{id}/mute/ — mute a party of a connected call (default the far party)."""
    call_id = _call_id(request)
    fields = _fields(await _optional_body(request), ("party",))
    party = _party(fields)
    fields.done()
    return json_response(await services(request).control.mute(call_id, party, True))


@routes.post(
    BASE + "{id}/unmute/",
    Op(CALLS, "Unmute a party", {200: "CallDetail"}, "PartyChoice", False, errors=ON_SWITCH, description=_MUTE_NOTE),
)
async def unmute(request: web.Request) -> web.Response:
    """POST /api/call-logs/{id}/unmute/ — unmute a party of a connected call (default the far party)."""
    call_id = _call_id(request)
    fields = _fields(await _optional_body(request), ("party",))
    party = _party(fields)
    fields.done()
    return json_response(await services(request).control.mute(call_id, party, False))


@routes.post(
    BASE + "{id}/send_dtmf/",
    Op(
        CALLS,
        "Send DTMF digits into a connected call",
        {200: "CallDetail"},
        "Dtmf",
        errors=ON_SWITCH,
        description="Asterisk PlayDTMF (one action per digit), FreeSWITCH `uuid_send_dtmf`; the `dtmf` event "
        "(`direction: sent`) is stored when the switch reports the digits sent.",
    ),
)
async def send_dtmf(request: web.Request) -> web.Response:
    """POST /api/call-logs/{id}/send_dtmf/ — play DTMF digits to a party (default the far party)."""
    call_id = _call_id(request)
    fields = _fields(await read_json_object(request), ("digits", "duration_ms", "party"))
    digits = None
    try:
        # Not Fields.string: it trims, and " 1" is not a digit string.
        digits = validate_dtmf(fields.data.get("digits"))
    except InvalidValue as exc:
        fields.fail("digits", exc.message)
    duration = fields.integer("duration_ms", minimum=MIN_DTMF_MS, maximum=MAX_DTMF_MS)
    party = _party(fields)
    fields.done()
    assert digits is not None  # done() raised otherwise
    return json_response(await services(request).control.send_dtmf(call_id, digits, duration, party))


@routes.post(
    BASE + "{id}/pause_recording/",
    action_op(
        "Pause the recording",
        "The file goes on silent until resumed (card numbers are not recorded); the call's recording keeps "
        "the span in `paused_spans`. Asterisk MixMonitorMute, FreeSWITCH `uuid_record <leg> mask <file>`. "
        "409 if the call is not recording or the recording is already paused.",
    ),
)
async def pause_recording(request: web.Request) -> web.Response:
    """POST /api/call-logs/{id}/pause_recording/ — pause the running recording (409 if none, or paused)."""
    await _empty_body(request)
    return json_response(await services(request).control.pause_recording(_call_id(request), True))


@routes.post(
    BASE + "{id}/resume_recording/",
    action_op("Resume a paused recording", "409 if the recording is not paused."),
)
async def resume_recording(request: web.Request) -> web.Response:
    """POST /api/call-logs/{id}/resume_recording/ — resume a paused recording (409 if not paused)."""
    await _empty_body(request)
    return json_response(await services(request).control.pause_recording(_call_id(request), False))


@routes.post(
    BASE + "{id}/answer/",
    action_op(
        "Answer a ringing inbound call",
        "On the switch where it can (FreeSWITCH `uuid_answer` on the caller's leg); Asterisk's manager "
        "interface cannot answer a channel: 409 with its reason. 409 for a call that is not inbound and ringing.",
    ),
)
async def answer(request: web.Request) -> web.Response:
    """POST /api/call-logs/{id}/answer/ — answer a ringing inbound call."""
    await _empty_body(request)
    return json_response(await services(request).control.answer(_call_id(request)))


@routes.post(
    BASE + "{id}/reject/",
    action_op(
        "Reject a ringing inbound call",
        "The caller is declined with cause 21 (call rejected; stored as busy, like a phone's decline): "
        "Asterisk Hangup with Cause 21 (chan_pjsip answers 403), FreeSWITCH `uuid_kill <leg> CALL_REJECTED`. "
        "409 for a call that is not inbound and ringing.",
    ),
)
async def reject(request: web.Request) -> web.Response:
    """POST /api/call-logs/{id}/reject/ — decline a ringing inbound call."""
    await _empty_body(request)
    return json_response(await services(request).control.reject(_call_id(request)))


@routes.post(
    BASE + "{id}/transfer_call/complete/",
    action_op(
        "Complete an attended transfer",
        "After `transfer_call` with `attended: true`: the far party is joined to the target and calld's user "
        "leaves (Asterisk: the transferer's channel hung up, confirmed by AttendedTransfer). FreeSWITCH: not "
        "offered (409).",
    ),
)
async def complete_transfer(request: web.Request) -> web.Response:
    """POST /api/call-logs/{id}/transfer_call/complete/ — complete the attended transfer in progress."""
    await _empty_body(request)
    return json_response(await services(request).control.finish_transfer(_call_id(request), True))


@routes.post(
    BASE + "{id}/transfer_call/cancel/",
    action_op(
        "Cancel an attended transfer",
        "The consultation call ends and calld's user is back with the far party (Asterisk: the consultation's "
        "channels hung up). 409 when no attended transfer begun by calld is in progress.",
    ),
)
async def cancel_transfer(request: web.Request) -> web.Response:
    """POST /api/call-logs/{id}/transfer_call/cancel/ — cancel the attended transfer in progress."""
    await _empty_body(request)
    return json_response(await services(request).control.finish_transfer(_call_id(request), False))


_PARK_NOTE = (
    "The far party waits in a parking slot (music on hold) until someone dials the slot or `pickup/` is used; "
    "the detail's `parked` names the slot. Asterisk: AMI `Park` (res_parking), confirmed by `ParkedCall`; "
    "FreeSWITCH: `uuid_transfer <far leg> <slot> XML <context>` into an extension running `valet_park`, confirmed "
    'by `valet_parking::info` (Action hold). Stored as a `hold` event with `{"parked": slot}`. '
    "409 naming the status for a call that is not answered and off hold; 409 with the switch's reason when it refuses."
)


@routes.post(
    BASE + "{id}/park/",
    Op(CALLS, "Park the far party", {200: "CallDetail"}, "Park", False, errors=ON_SWITCH, description=_PARK_NOTE),
)
async def park(request: web.Request) -> web.Response:
    """POST /api/call-logs/{id}/park/ — park the far party of an answered call in a slot."""
    call_id = _call_id(request)
    fields = _fields(await _optional_body(request), ("slot",))
    slot = None
    if fields.data.get("slot") is not None:
        try:
            slot = validate_slot(fields.data["slot"])
        except InvalidValue as exc:
            fields.fail("slot", exc.message)
    fields.done()
    return json_response(await services(request).control.park(call_id, slot))


@routes.post(
    BASE + "{id}/pickup/",
    Op(
        CALLS,
        "Pick a parked call up",
        {200: "CallDetail"},
        "Pickup",
        errors=ON_SWITCH,
        description="The phone `to` rings; answered, it takes the parked caller out of the slot (Asterisk: "
        "`Originate` of that phone into the slot's extension in the parking lot's context, confirmed by "
        "`UnParkedCall`; FreeSWITCH: `originate user/<to> <slot> XML <context>`, confirmed by "
        '`valet_parking::info` Action bridge). Stored as `unhold` with `{"picked_up": slot}`. '
        "409 naming the status for a call that is not parked.",
    ),
)
async def pickup(request: web.Request) -> web.Response:
    """POST /api/call-logs/{id}/pickup/ — ring a phone that takes the parked call out of its slot."""
    svc = services(request)
    call_id = _call_id(request)
    fields = _fields(await read_json_object(request), ("to",))
    to = fields.phone("to", svc.config.calls.default_region, required=True)
    fields.done()
    return json_response(await svc.control.pickup(call_id, to))

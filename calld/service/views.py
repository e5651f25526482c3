"""JSON shapes of what calld stores, as the API, the live feed and outbound webhooks show it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import sqlalchemy as sa

from calld import sip_probe
from calld.domain.call import TimedEvent
from calld.domain.call_filter import Period
from calld.domain.delivery import DeliveryStatus
from calld.domain.errors import Conflict
from calld.domain.parking import PARK_EVENTS, parked_now
from calld.domain.quality import leg_figures
from calld.domain.recording_pauses import SPAN_EVENTS, PausedSpan, paused_spans
from calld.domain.statistics import METRICS, ReportRequest, metric_values, metrics, zero_sums
from calld.domain.turn import TurnCredential
from calld.domain.vocabulary import ENDING_EVENTS, CallStatus
from calld.storage.call_queries import CallStatistics
from calld.storage.models import (
    CallEvent,
    CallLog,
    CallRecording,
    Client,
    SipConfiguration,
    WebhookDelivery,
    WebhookSubscription,
)
from calld.storage.stats_report import ReportSums

# Each shape is read from a model object or from a Core row with the same attribute names
# (``calld.storage.call_queries.CALL_COLUMNS`` and friends).
CallLike = CallLog | sa.Row[Any]
EventLike = CallEvent | sa.Row[Any]
RecordingLike = CallRecording | sa.Row[Any]


def iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def _utc_text(value: datetime) -> str:
    """``iso`` of a UTC instant, fast for whole seconds (a year of hours formats 8,761 of them)."""
    if value.microsecond:
        return iso(value) or ""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(value.timestamp()))


def _text(value: object) -> str | None:
    return str(value) if value else None


def _reader(obj: Any) -> Callable[[str], Any]:
    """Read fields by name: from a Core row through its mapping (a Row's attribute access costs
    ~0.24 µs a field, a list page reads 1,200), from a model object as attributes."""
    if isinstance(obj, sa.Row):
        return obj._mapping.__getitem__
    getter: Callable[[str], Any] = obj.__getattribute__
    return getter


def call_log_json(call: CallLike, tags: Sequence[str] | None = None) -> dict[str, Any]:
    """A call as lists show it; ``tags`` where the caller read them (lists and details), else no key."""
    c = _reader(call)
    shown = {"tags": list(tags)} if tags is not None else {}
    return {
        "id": str(c("id")),
        "direction": c("direction").value,
        "call_type": c("call_type").value,
        "status": c("status").value,
        "caller_number": c("caller_number"),
        "recipient_number": c("recipient_number"),
        "caller_number_raw": c("caller_number_raw"),
        "recipient_number_raw": c("recipient_number_raw"),
        "caller_withheld": c("caller_withheld"),
        "sip_call_id": c("sip_call_id"),
        "client": _text(c("client_id")),
        "sip_configuration": _text(c("sip_configuration_id")),
        "started_at": iso(c("started_at")),
        "ringing_at": iso(c("ringing_at")),
        "answered_at": iso(c("answered_at")),
        "ended_at": iso(c("ended_at")),
        "duration_seconds": c("duration_seconds"),
        "ring_seconds": c("ring_seconds"),
        "hold_seconds": c("hold_seconds"),
        "on_hold_since": iso(c("held_since")),
        "is_recording": c("recording"),
        "transfer_target": c("transfer_target"),
        "call_quality_score": c("call_quality_score"),
        "hangup_cause": c("hangup_cause"),
        "hangup_cause_q850": c("hangup_cause_q850"),
        "sip_status": c("sip_status"),
        "hangup_by": c("hangup_by"),
        "missed_reason": c("missed_reason"),
        "answered_by": c("answered_by"),
        "mos": c("mos"),
        "jitter_ms": c("jitter_ms"),
        "packet_loss_pct": c("packet_loss_pct"),
        "rtt_ms": c("rtt_ms"),
        "quality_source": c("quality_source"),
        "call_quality_score_by": c("quality_score_by"),
        "notes": c("notes"),
        "switch": c("switch_name"),
        "created_at": iso(c("created_at")),
        "updated_at": iso(c("updated_at")),
        **shown,
    }


def participants(caller: str, recipient: str, transfer_target: str | None) -> str:
    """Who was on the call, in order: caller > recipient [> whom it was transferred to]."""
    parties = [caller, recipient] + ([transfer_target] if transfer_target else [])
    return " > ".join(parties)


# The columns of an export, in order (calld.service.export); new ones are only ever appended.
EXPORT_FIELDS: tuple[str, ...] = (
    "id",
    "direction",
    "call_type",
    "status",
    "caller_number",
    "recipient_number",
    "sip_call_id",
    "client",
    "sip_configuration",
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
    "call_quality_score",
    "notes",
    "switch",
    "created_at",
    "updated_at",
    "client_name",
    "sip_configuration_name",
    "participants",
    # The call's story (issue 16).
    "caller_number_raw",
    "recipient_number_raw",
    "caller_withheld",
    "hangup_cause",
    "hangup_cause_q850",
    "sip_status",
    "hangup_by",
    "missed_reason",
    "answered_by",
    "mos",
    "jitter_ms",
    "packet_loss_pct",
    "rtt_ms",
    "quality_source",
    "call_quality_score_by",
    "tags",  # separated by ";" in CSV
    "parties",  # every party as the detail's participants show it (CSV: calld.service.export.parties_text)
)


def call_export_json(row: sa.Row[Any], tags: Sequence[str] = (), parties: Iterable[Any] = ()) -> dict[str, Any]:
    """A call as an export line shows it: the list's fields (same names, same values), then the
    client's and SIP configuration's names, a participants summary and the parties as the detail
    shows them without their quality (``EXPORT_FIELDS``)."""
    c = _reader(row)
    line = {
        **call_log_json(row, tags),
        "client_name": c("client_name"),
        "sip_configuration_name": c("sip_configuration_name"),
        "participants": participants(c("caller_number"), c("recipient_number"), c("transfer_target")),
        "parties": [
            {k: v for k, v in party.items() if k != "quality"} for party in participants_json(row, parties)
        ],
    }
    return {name: line[name] for name in EXPORT_FIELDS}


def call_event_json(event: EventLike) -> dict[str, Any]:
    e = _reader(event)
    return {
        "id": e("id"),
        "call": str(e("call_id")),
        "event_type": e("event_type").value,
        "timestamp": iso(e("timestamp")),
        "metadata": e("meta"),
        "source": e("source").value,
    }


def recording_json(rec: RecordingLike, spans: Iterable[PausedSpan] = ()) -> dict[str, Any]:
    r = _reader(rec)
    return {
        "id": str(r("id")),
        "call": str(r("call_id")),
        "status": r("status").value,
        "local_path": r("local_path"),
        "external_url": r("external_url"),
        "file_size": r("file_size"),
        "duration_seconds": r("duration_seconds"),
        "format": r("format"),
        "transcript": r("transcript"),
        "transcript_confidence": r("transcript_confidence"),
        "started_at": iso(r("started_at")),
        "stopped_at": iso(r("stopped_at")),
        "paused_spans": [{"paused_at": iso(span.paused_at), "resumed_at": iso(span.resumed_at)} for span in spans],
        "created_at": iso(r("created_at")),
        "updated_at": iso(r("updated_at")),
    }


def call_detail_json(
    call: CallLike,
    events: Iterable[EventLike],
    recordings: Iterable[RecordingLike],
    participants: Iterable[Any] = (),
    tags: Sequence[str] = (),
) -> dict[str, Any]:
    """A call with its tags, parties (see ``participants_json``), events (oldest first) and recordings
    (each with its paused spans); ``recording`` is the newest one, ``recording_paused`` whether it is
    paused now."""
    event_rows = list(events)
    recording_rows = list(recordings)
    spans = paused_spans(
        TimedEvent(e.event_type, e.timestamp, e.meta) for e in event_rows if e.event_type in SPAN_EVENTS
    )
    per_recording = _spans_per_recording(recording_rows, spans)
    recs = [recording_json(r, per_recording[i]) for i, r in enumerate(recording_rows)]
    detail = call_log_json(call, tags)
    return {
        **detail,
        "recording_paused": bool(detail["is_recording"]) and bool(spans) and spans[-1].resumed_at is None,
        "parked": parked_json(detail["status"], event_rows),
        "participants": participants_json(call, participants, _ending(event_rows)),
        "events": [call_event_json(e) for e in event_rows],
        "recordings": recs,
        "recording": recs[-1] if recs else None,
    }


def parked_json(status: str, events: Iterable[EventLike]) -> dict[str, Any] | None:
    """Where the call is parked now (``slot``, ``lot``, ``since``), or None."""
    found = parked_now(
        CallStatus(status),
        (TimedEvent(e.event_type, e.timestamp, e.meta) for e in events if e.event_type in PARK_EVENTS),
    )
    return None if found is None else {**found, "since": iso(found["since"])}


def _ending(events: Sequence[EventLike]) -> Mapping[str, Any] | None:
    """The metadata of the call's ending (its last ended or failed event), if it has ended."""
    for event in reversed(events):
        if event.event_type in ENDING_EVENTS:
            meta: Mapping[str, Any] = event.meta
            return meta
    return None


def participants_json(
    call: CallLike, rows: Iterable[Any], ending: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """The call's parties as the switch reported its legs, each with what its leg received (``quality``,
    from the call's ending's metadata, ``ending``; null where the switch reported none); a call the
    switch did not carry (logged through the API or a provider's webhook) has its two parties from its
    numbers, with no leg."""
    figures = leg_figures(ending) if ending is not None else {}
    parties = [
        {
            "leg": row.leg,
            "role": row.role,
            "number": row.number,
            "name": row.name,
            "endpoint": row.endpoint,
            "joined_at": iso(row.joined_at),
            "answered_at": iso(row.answered_at),
            "left_at": iso(row.left_at),
            "end_cause": row.end_cause,
            "quality": figures.get(row.leg),
        }
        for row in rows
    ]
    if parties:
        return parties
    c = _reader(call)
    if c("switch_name") is not None:
        return []  # the switch did not report its legs (a call stored before calld kept them)
    ended = iso(c("ended_at"))
    started = iso(c("started_at"))
    return [
        _party_from_numbers("caller", c("caller_number"), started, started, ended),
        _party_from_numbers("callee", c("recipient_number"), started, iso(c("answered_at")), ended),
    ]


def _party_from_numbers(
    role: str, number: str, joined: str | None, answered: str | None, left: str | None
) -> dict[str, Any]:
    return {
        "leg": None,
        "role": role,
        "number": number,
        "name": "",
        "endpoint": "",
        "joined_at": joined,
        "answered_at": answered,
        "left_at": left,
        "end_cause": None,
        "quality": None,
    }


def _same_file(event_path: str | None, row_path: str | None) -> bool:
    if not event_path or not row_path:
        return False
    return event_path == row_path or event_path.endswith("/" + row_path.lstrip("/"))


def _spans_per_recording(recordings: list[RecordingLike], spans: list[PausedSpan]) -> list[list[PausedSpan]]:
    """Each recording's paused spans: those naming its file, else (a span without a known file)
    those begun while it was the newest recording."""
    out: list[list[PausedSpan]] = [[] for _ in recordings]
    if not recordings:
        return out
    for span in spans:
        # A switch names the file in full; a recording row may hold it relative to the switch's directory.
        named = [i for i, rec in enumerate(recordings) if _same_file(span.path, rec.local_path)]
        begun = [i for i, rec in enumerate(recordings) if rec.created_at <= span.paused_at]
        out[(named or begun or [len(recordings) - 1])[-1]].append(span)
    return out


def client_json(client: Client) -> dict[str, Any]:
    return {
        "id": str(client.id),
        "name": client.name,
        "phone_numbers": [row.number for row in client.phone_numbers],
        "email": client.email,
        "company": client.company,
        "notes": client.notes,
        "created_at": iso(client.created_at),
        "updated_at": iso(client.updated_at),
    }


def sip_configuration_json(config: SipConfiguration) -> dict[str, Any]:
    """A configuration as the API shows it: never the secret, only whether one is set."""
    return {
        "id": str(config.id),
        "name": config.name,
        "server": config.server,
        "port": config.port,
        "transport": config.transport.value,
        "username": config.username,
        "has_secret": bool(config.secret),
        "websocket_url": config.websocket_url,
        "stun_servers": list(config.stun_servers),
        "turn_servers": [{"urls": t["urls"]} for t in config.turn_servers],
        "is_default": config.is_default,
        "active": config.active,
        "created_at": iso(config.created_at),
        "updated_at": iso(config.updated_at),
    }


def webrtc_config_json(config: SipConfiguration, password: str | None, turn: TurnCredential | None) -> dict[str, Any]:
    """The settings a browser JsSIP / SIP.js user agent needs to register through ``websocket_url``.

    ``password`` is the line's SIP secret, given only to the softphone token bound to this line
    (``calld.domain.scopes``); every other caller gets null. Each TURN URL carries ``turn``, the
    credentials minted for this request, and is left out without them: calld stores and answers
    no static TURN credential. ``display_name`` is the SIP username (calld stores no person's name).
    """
    if not config.websocket_url:
        raise Conflict(
            "no_websocket_url",
            "no WebSocket URL configured",
            {"websocket_url": "a browser reaches SIP only over WebSocket; set websocket_url (ws:// or wss://)"},
        )
    ice: list[dict[str, Any]] = [{"urls": uri} for uri in config.stun_servers]
    if turn is not None:
        ice += [
            {"urls": server["urls"], "username": turn.username, "credential": turn.credential}
            for server in config.turn_servers
        ]
    return {
        "uri": f"sip:{config.username}@{sip_probe.host_in_uri(config.server)}",
        "ws_servers": [config.websocket_url],
        "display_name": config.username,
        "authorization_user": config.username,
        "password": password,
        "ice_servers": ice,
        "turn_expires_at": iso(turn.expires_at) if turn is not None and config.turn_servers else None,
        "register": True,
    }


# What the API shows in place of the credentials in a subscription URL.
MASKED = "***@"


def shown_url(url: str) -> str:
    """``url`` as the API shows it: credentials in it are write-only, like the secret
    (``https://user:pass@host/`` reads ``https://***@host/``)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=MASKED + parts.netloc.rpartition("@")[2]))


def subscription_json(sub: WebhookSubscription) -> dict[str, Any]:
    return {
        "id": str(sub.id),
        "url": shown_url(sub.url),
        "event_types": list(sub.event_types),
        "active": sub.active,
        "description": sub.description,
        "created_at": iso(sub.created_at),
        "updated_at": iso(sub.updated_at),
    }


def delivery_json(row: WebhookDelivery) -> dict[str, Any]:
    return {
        "id": str(row.delivery_id),
        "subscription": str(row.subscription_id),
        "call": str(row.call_id),
        "event": row.event_id,
        "event_type": row.event_type,
        "status": row.status.value,
        "attempts": row.attempts,
        "next_attempt_at": iso(row.next_attempt_at) if row.status is DeliveryStatus.PENDING else None,
        "last_attempt_at": iso(row.last_attempt_at),
        "last_status_code": row.last_status_code,
        "last_error": row.last_error,
        "delivered_at": iso(row.delivered_at),
        "created_at": iso(row.created_at),
        "payload": row.payload,
    }


def statistics_json(period: Period, stats: CallStatistics) -> dict[str, Any]:
    """Counts since ``period`` began, as ``GET /api/call-logs/statistics/`` shows them."""
    return {"period": period.value, **asdict(stats)}


def statistics_report_json(request: ReportRequest, sums: ReportSums, *, compact: bool = False) -> dict[str, Any]:
    """A statistics report as ``GET /api/call-logs/statistics/`` shows it with from/until, interval or
    group_by: the range, its totals, and the series (one row per bucket, or per bucket and group;
    without a grouping every bucket is there, empty ones too; with one, only groups that had calls).
    ``compact``: the series as ``fields`` (named once) and ``rows`` (arrays in that order) instead."""
    level = request.service_level_seconds
    # (A group whose calls all moved away, changed or deleted, leaves zeros behind: not shown.)
    kept = {index_key: cell for index_key, cell in sums.cells.items() if cell[0]}
    totals = [sum(column) for column in zip(*kept.values(), strict=True)] if kept else zero_sums()
    by_bucket: dict[int, list[tuple[str | None, Sequence[float]]]] = {}
    if request.group_by is not None:
        for (index, key), cell in kept.items():
            by_bucket.setdefault(index, []).append((key, cell))
    edges = [_utc_text(b.start) for b in sums.buckets]
    edges.append(_utc_text(sums.buckets[-1].end) if sums.buckets else "")
    empty = zero_sums()
    # Rows built straight from the values (a year of hours is 8,760 of them): no dict per metric.
    rows: list[Any] = []
    for index in range(len(sums.buckets)):
        start, end = edges[index], edges[index + 1]
        if request.group_by is None:
            cells: list[tuple[str | None, Sequence[float]]] = [(None, kept.get((index, None), empty))]
        else:
            cells = sorted(by_bucket.get(index, []), key=lambda kc: (kc[0] is None, kc[0] or ""))
        for key, sums_of_cell in cells:
            values = (start, end, key, *metric_values(sums_of_cell))
            rows.append(list(values) if compact else dict(zip(REPORT_SERIES_FIELDS, values, strict=True)))
    answer: dict[str, Any] = {
        "from": iso(request.start),
        "until": iso(request.end),
        "timezone": request.zone.key,
        "interval": request.interval.value if request.interval is not None else None,
        "group_by": request.group_by.value if request.group_by is not None else None,
        "service_level_seconds": level,
        "totals": metrics(totals),
    }
    if compact:
        return {**answer, "fields": list(REPORT_SERIES_FIELDS), "rows": rows}
    return {**answer, "series": rows}


REPORT_SERIES_FIELDS: tuple[str, ...] = ("start", "end", "group", *METRICS)

"""JSON shapes of what calld stores, as the API, the live feed and outbound webhooks show it."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import sqlalchemy as sa

from calld import sip_probe
from calld.domain.call_filter import Period
from calld.domain.delivery import DeliveryStatus
from calld.domain.errors import Conflict
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

# Each shape is read from a model object or from a Core row with the same attribute names
# (``calld.storage.call_queries.CALL_COLUMNS`` and friends).
CallLike = CallLog | sa.Row[Any]
EventLike = CallEvent | sa.Row[Any]
RecordingLike = CallRecording | sa.Row[Any]


def iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


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
        "notes": c("notes"),
        "switch": c("switch_name"),
        "created_at": iso(c("created_at")),
        "updated_at": iso(c("updated_at")),
        **shown,
    }


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


def recording_json(rec: RecordingLike) -> dict[str, Any]:
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
        "created_at": iso(r("created_at")),
        "updated_at": iso(r("updated_at")),
    }


def call_detail_json(
    call: CallLike, events: Iterable[EventLike], recordings: Iterable[RecordingLike], tags: Sequence[str] = ()
) -> dict[str, Any]:
    """A call with its tags, events (oldest first) and recordings; ``recording`` is the newest one."""
    recs = [recording_json(r) for r in recordings]
    return {
        **call_log_json(call, tags),
        "events": [call_event_json(e) for e in events],
        "recordings": recs,
        "recording": recs[-1] if recs else None,
    }


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
        "turn_servers": [dict(t) for t in config.turn_servers],
        "is_default": config.is_default,
        "active": config.active,
        "created_at": iso(config.created_at),
        "updated_at": iso(config.updated_at),
    }


def webrtc_config_json(config: SipConfiguration) -> dict[str, Any]:
    """The settings a browser SIP.js / JsSIP user agent needs to register through ``websocket_url``.

    The SIP secret is deliberately absent: it must not reach every page that can read this
    endpoint. The browser asks the user for it, or gets a short-lived credential from a token
    service. ``display_name`` is the SIP username (calld stores no person's name for a line).
    """
    if not config.websocket_url:
        raise Conflict(
            "no_websocket_url",
            "no WebSocket URL configured",
            {"websocket_url": "a browser reaches SIP only over WebSocket; set websocket_url (ws:// or wss://)"},
        )
    ice: list[dict[str, Any]] = [{"urls": uri} for uri in config.stun_servers]
    ice += [{"urls": t["urls"], "username": t["username"], "credential": t["credential"]} for t in config.turn_servers]
    return {
        "uri": f"sip:{config.username}@{sip_probe.host_in_uri(config.server)}",
        "ws_servers": [config.websocket_url],
        "display_name": config.username,
        "authorization_user": config.username,
        "ice_servers": ice,
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

"""The OpenAPI 3.1 description of calld's REST API (``GET /api/openapi.json``) and a page for people
(``GET /api/docs``).

The document is built from the application's router when it is asked for, so it describes exactly
the routes that are registered: each ``(method, path)`` is looked up in ``OPERATIONS`` (a test walks
``app.router`` so no route can be forgotten). Enumerations come from ``calld.domain.vocabulary`` and
the handlers' own tables, and each operation's security from ``calld.http.auth.required_scope``, so
the document cannot drift from the code. Error statuses that follow from a route's shape are added
by rule (a body: 400, 413, 422; an id in the path: 404; a token: 401, and 403 above ``read``); the
others are listed with the operation. ``HEAD``, which aiohttp answers for every ``GET`` route (the
``GET`` without a body), is not listed separately.

Both routes are public (no token): the document holds no data, only what the README already says,
and a browser cannot send a bearer token when it opens ``/api/docs``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from aiohttp import web

import calld
from calld.domain.call import MAX_QUALITY_SCORE
from calld.domain.delivery import DeliveryStatus
from calld.domain.hangup import HangupBy, HangupCause, MissedReason
from calld.domain.scopes import Scope
from calld.domain.vocabulary import (
    CallDirection,
    CallStatus,
    CallType,
    EventSource,
    EventType,
    RecordingStatus,
    SipTransport,
)
from calld.http import clients, openapi_html, sip_configurations, webhook_subscriptions, webhooks
from calld.http.auth import SIGNED_PREFIXES, required_scope
from calld.http.call_logs import NOTES_MAX
from calld.http.pagination import DEFAULT_LIMIT, MAX_LIMIT, MAX_OFFSET
from calld.storage.call_queries import DEFAULT_ORDERING, ORDERINGS, Period

INDEX_PATH = "/"
SPEC_PATH = "/api/openapi.json"
DOCS_PATH = "/api/docs"

Schema = dict[str, Any]

# --- schema vocabulary ----------------------------------------------------------------------------


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Schema) -> Schema:
    """``schema`` or null."""
    if "type" not in schema:
        return {"anyOf": [schema, {"type": "null"}]}
    types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    out = {**schema, "type": [*types, "null"]}
    if "enum" in schema:
        out["enum"] = [*schema["enum"], None]
    return out


def string(max_length: int | None = None, *, min_length: int = 0, fmt: str | None = None, **extra: Any) -> Schema:
    schema: Schema = {"type": "string", **extra}
    if min_length:
        schema["minLength"] = min_length
    if max_length is not None:
        schema["maxLength"] = max_length
    if fmt is not None:
        schema["format"] = fmt
    return schema


def choice(values: Iterable[StrEnum | str], description: str | None = None) -> Schema:
    schema: Schema = {"type": "string", "enum": [str(v) for v in values]}
    if description:
        schema["description"] = description
    return schema


def integer(minimum: int | None = None, maximum: int | None = None, **extra: Any) -> Schema:
    schema: Schema = {"type": "integer", **extra}
    if minimum is not None:
        schema["minimum"] = minimum
    if maximum is not None:
        schema["maximum"] = maximum
    return schema


def number(minimum: float | None = None, maximum: float | None = None) -> Schema:
    schema: Schema = {"type": "number"}
    if minimum is not None:
        schema["minimum"] = minimum
    if maximum is not None:
        schema["maximum"] = maximum
    return schema


def array(items: Schema, max_items: int | None = None) -> Schema:
    schema: Schema = {"type": "array", "items": items}
    if max_items is not None:
        schema["maxItems"] = max_items
    return schema


def obj(properties: Mapping[str, Schema], required: Iterable[str] = (), *, description: str = "") -> Schema:
    """A closed object: a field the document does not name is an error in a request and a drift in a response."""
    schema: Schema = {"type": "object", "properties": dict(properties), "additionalProperties": False}
    if required:
        schema["required"] = list(required)
    if description:
        schema["description"] = description
    return schema


def response_object(properties: Mapping[str, Schema], *, description: str = "") -> Schema:
    """An object as calld answers it: every property is always there."""
    return obj(properties, properties.keys(), description=description)


UUID = string(fmt="uuid")
DATE_TIME = string(fmt="date-time")
BOOLEAN: Schema = {"type": "boolean"}
ANY_OBJECT: Schema = {"type": "object"}
PHONE = string(
    fmt="phone",
    description="A phone number in E.164 (+14155550123) or a PBX extension of 2 to 6 digits; national numbers "
    "are read in calls.default_region. Answers carry E.164 or the extension.",
)
PRESENTED_NUMBER = string(
    255,
    description="A number as presented (a caller ID may be withheld: anonymous, Restricted, *67, 0; or a SIP URI). "
    "Never refused over its content: calld stores the E.164 form where it can be derived (calls.default_region, "
    "calls.national_prefix), an extension as it is, 'anonymous' for a withheld caller, anything else as given; "
    "the presentation itself is kept in caller_number_raw / recipient_number_raw.",
)
STORED_NUMBER = string(
    32,
    description="The number calld stores and matches clients by: E.164 where it can be derived, an extension, "
    "'anonymous' for a withheld caller, otherwise as presented.",
)


# --- component schemas ----------------------------------------------------------------------------


def _error() -> Schema:
    return obj(
        {
            "error": string(description="What went wrong, in a few words."),
            "detail": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "The offending field (or 'body', 'authorization', ...) and what is wrong with it.",
            },
            "current_status": string(description="409 on a status change: the status the call or recording has."),
            "requested": string(description="409 on a status change: what was asked for."),
            "number": string(description="409 on a client's number: the number that is taken."),
            "client": string(fmt="uuid", description="409 on a client's number: the client that has it."),
        },
        ["error", "detail"],
    )


def _call_log() -> dict[str, Any]:
    return {
        "id": UUID,
        "direction": choice(CallDirection),
        "call_type": choice(CallType),
        "status": choice(CallStatus),
        "caller_number": STORED_NUMBER,
        "recipient_number": STORED_NUMBER,
        "caller_number_raw": nullable(string(255, description="The caller's number as presented.")),
        "recipient_number_raw": nullable(string(255, description="The called number as presented.")),
        "caller_withheld": BOOLEAN,
        "sip_call_id": nullable(string()),
        "client": nullable(UUID),
        "sip_configuration": nullable(UUID),
        "started_at": DATE_TIME,
        "ringing_at": nullable(DATE_TIME),
        "answered_at": nullable(DATE_TIME),
        "ended_at": nullable(DATE_TIME),
        "duration_seconds": nullable(number(0)),
        "ring_seconds": nullable(number(0)),
        "hold_seconds": number(0),
        "on_hold_since": nullable(DATE_TIME),
        "is_recording": BOOLEAN,
        "transfer_target": nullable(string()),
        "call_quality_score": nullable(number(0, MAX_QUALITY_SCORE)),
        "hangup_cause": nullable(choice(HangupCause, "Why it ended, one vocabulary for both switches.")),
        "hangup_cause_q850": nullable(integer(0, description="The raw ITU-T Q.850 cause code.")),
        "sip_status": nullable(integer(100, 699, description="The SIP final status.")),
        "hangup_by": nullable(choice(HangupBy, "Who ended it.")),
        "missed_reason": nullable(choice(MissedReason, "Why an unanswered call was not answered.")),
        "notes": string(),
        "switch": nullable(string(description="The switch (PBX) that carries the call, if any.")),
        "created_at": DATE_TIME,
        "updated_at": DATE_TIME,
    }


def _recording() -> Schema:
    return response_object(
        {
            "id": UUID,
            "call": UUID,
            "status": choice(RecordingStatus),
            "local_path": nullable(string()),
            "external_url": nullable(string()),
            "file_size": nullable(integer(0)),
            "duration_seconds": nullable(number(0)),
            "format": nullable(string()),
            "started_at": nullable(DATE_TIME),
            "stopped_at": nullable(DATE_TIME),
            "transcript": nullable(string()),
            "transcript_confidence": nullable(number(0, 1)),
            "created_at": DATE_TIME,
            "updated_at": DATE_TIME,
        }
    )


def _call_event() -> Schema:
    return response_object(
        {
            "id": integer(1),
            "call": UUID,
            "event_type": choice(EventType),
            "timestamp": DATE_TIME,
            "metadata": ANY_OBJECT,
            "source": choice(EventSource),
        }
    )


def _call_detail() -> Schema:
    return response_object(
        {
            **_call_log(),
            "events": array(ref("CallEvent")),
            "recordings": array(ref("Recording")),
            "recording": nullable(ref("Recording")),
        },
        description="A call with its events (oldest first) and recordings; `recording` is the newest one.",
    )


def _call_bodies() -> dict[str, Schema]:
    notes = string(NOTES_MAX, description='Free text; PATCH with "" clears it.')
    score = nullable(number(0, MAX_QUALITY_SCORE))
    return {
        "CallCreate": obj(
            {
                "direction": choice(CallDirection),
                "caller_number": PRESENTED_NUMBER,
                "recipient_number": PRESENTED_NUMBER,
                "call_type": nullable(choice(CallType, "Default voice.")),
                "sip_call_id": nullable(string(255, min_length=1)),
                "client": nullable(UUID),
                "sip_configuration": nullable(UUID),
                "notes": nullable(notes),
            },
            ["direction", "caller_number", "recipient_number"],
        ),
        "CallPatch": obj(
            {
                "notes": notes,
                "call_quality_score": score,
                "client": nullable(UUID),
                "sip_configuration": nullable(UUID),
            },
            description="Only the fields given change; null clears the score, the client and the SIP configuration.",
        ),
        "StatusChange": obj(
            {"status": choice(CallStatus), "notes": notes, "call_quality_score": score},
            ["status"],
            description="The status is reached by the event the transition table names (409 if none does).",
        ),
        "OutboundCall": obj(
            {
                "recipient_number": PHONE,
                "caller_number": nullable(PHONE),
                "call_type": nullable(choice(CallType, "Default voice.")),
                "sip_configuration": nullable(UUID),
            },
            ["recipient_number"],
            description="Without caller_number, the call is placed from the SIP username of the configuration "
            "(given, else the default one).",
        ),
        "IncomingCall": obj(
            {
                "caller_number": PRESENTED_NUMBER,
                "recipient_number": PRESENTED_NUMBER,
                "sip_call_id": string(255, min_length=1),
            },
            ["caller_number", "recipient_number", "sip_call_id"],
        ),
        "Transfer": obj({"transfer_to": PHONE, "attended": nullable(BOOLEAN)}, ["transfer_to"]),
        "NewEvent": obj(
            {
                "event_type": choice(e for e in EventType if e is not EventType.INITIATED),
                "metadata": nullable(ANY_OBJECT),
            },
            ["event_type"],
        ),
        "NoParameters": {
            "type": "object",
            "maxProperties": 0,
            "description": "The action takes no parameters: send no body, or {}.",
        },
    }


def _statistics() -> Schema:
    count = integer(0)
    return response_object(
        {
            "period": choice(Period),
            "total_calls": count,
            "answered_calls": count,
            "missed_calls": count,
            "inbound_calls": count,
            "outbound_calls": count,
            "answer_rate": number(0, 100),
            "average_duration_seconds": number(0),
        }
    )


def _client_schemas() -> dict[str, Schema]:
    numbers = array(PHONE, clients.MAX_NUMBERS)
    numbers["description"] = "Unique across clients; PATCH replaces the whole list."
    writable = {
        "name": string(200, min_length=1),
        "phone_numbers": numbers,
        "email": nullable(string(254, fmt="email")),
        "company": nullable(string(200)),
        "notes": nullable(string(10_000)),
    }
    return {
        "Client": response_object(
            {
                "id": UUID,
                "name": string(),
                "phone_numbers": array(PHONE),
                "email": nullable(string()),
                "company": nullable(string()),
                "notes": string(),
                "created_at": DATE_TIME,
                "updated_at": DATE_TIME,
            }
        ),
        "ClientCreate": obj(writable, ["name"]),
        "ClientPatch": obj(writable, description="Only the fields given change."),
        "Linked": response_object({"linked": integer(0, description="How many calls were assigned.")}),
    }


def _sip_schemas() -> dict[str, Schema]:
    turn = obj({"urls": string(fmt="uri"), "username": string(255), "credential": string(255)})
    turn_in = obj(
        {
            "urls": string(description="turn: or turns: URI"),
            "username": string(255, min_length=1),
            "credential": string(255, min_length=1),
        },
        ["urls", "username", "credential"],
    )

    def writable(creating: bool) -> dict[str, Schema]:
        transport = choice(SipTransport, "Default udp; the port follows its default unless one is given.")
        return {
            "name": string(100, min_length=1),
            "server": string(
                255,
                min_length=1,
                anyOf=[{"format": "hostname"}, {"format": "ipv4"}, {"format": "ipv6"}],
                description="A host name or an IP address, without scheme or port.",
            ),
            "username": string(100, min_length=1),
            "transport": nullable(transport) if creating else transport,
            "port": nullable(integer(1, 65535)),
            "secret": nullable(string(255, description='Write-only; null or "" clears it.')),
            "websocket_url": nullable(string(500, description="A ws:// or wss:// URL, for browsers.")),
            "stun_servers": nullable(
                array(string(description="stun: or stuns: URI"), sip_configurations.MAX_ICE_SERVERS)
            ),
            "turn_servers": nullable(array(turn_in, sip_configurations.MAX_ICE_SERVERS)),
            "active": nullable(BOOLEAN) if creating else BOOLEAN,
        }

    return {
        "SipConfiguration": response_object(
            {
                "id": UUID,
                "name": string(),
                "server": string(),
                "port": integer(1, 65535),
                "transport": choice(SipTransport),
                "username": string(),
                "has_secret": BOOLEAN,
                "websocket_url": nullable(string()),
                "stun_servers": array(string()),
                "turn_servers": array(turn),
                "is_default": BOOLEAN,
                "active": BOOLEAN,
                "created_at": DATE_TIME,
                "updated_at": DATE_TIME,
            },
            description="The secret is never answered, only whether one is set.",
        ),
        "SipConfigurationCreate": obj(writable(True), ["name", "server", "username"]),
        "SipConfigurationPatch": obj(writable(False), description="Only the fields given change."),
        "WebRtcConfig": response_object(
            {
                "uri": string(),
                "ws_servers": array(string()),
                "display_name": string(),
                "authorization_user": string(),
                "ice_servers": array(obj({"urls": string(), "username": string(), "credential": string()}, ["urls"])),
                "register": BOOLEAN,
            },
            description="What a SIP.js or JsSIP user agent needs; the SIP secret is not in it.",
        ),
        "ProbeResult": response_object(
            {
                "reachable": BOOLEAN,
                "latency_ms": nullable(number(0)),
                "transport": choice(SipTransport),
                "target": string(),
                "status_code": nullable(integer(100, 699)),
                "error": nullable(string()),
            },
            description="reachable: the server answered OPTIONS with any final SIP status.",
        ),
    }


def _webhook_schemas() -> dict[str, Schema]:
    instant = {
        "anyOf": [DATE_TIME, {"type": "number", "minimum": 0, "exclusiveMaximum": 32503680000}],
        "description": "ISO 8601 with a time zone, or Unix seconds; at most 5 minutes ahead of calld's clock.",
    }
    return {
        "SipWebhook": obj(
            {
                "event_type": choice(webhooks.SipEventType),
                "sip_call_id": string(255, min_length=1),
                "timestamp": instant,
                "caller_number": nullable(PRESENTED_NUMBER),
                "recipient_number": nullable(PRESENTED_NUMBER),
                "direction": nullable(choice(CallDirection, "Default inbound.")),
                "call_type": nullable(choice(CallType, "Default voice.")),
                "delivery_id": nullable(string(webhooks.MAX_DELIVERY_ID, min_length=1)),
                "metadata": nullable(ANY_OBJECT),
            },
            ["event_type", "sip_call_id", "timestamp"],
            description="caller_number and recipient_number are required when the call is new; call_quality "
            "needs metadata.score (0-5).",
        ),
        "SipWebhookResult": obj(
            {
                "status": choice(["stored", "duplicate"]),
                "call": UUID,
                "event": integer(1, description="The stored event (absent for a duplicate)."),
            },
            ["status", "call"],
        ),
        "FreeswitchCdr": {
            "type": "object",
            "description": "mod_json_cdr's document of one leg, as it sends it (its values URL-encoded or not); "
            "keys beyond these are kept as sent.",
            "properties": {
                "variables": {
                    "type": "object",
                    "description": "The leg's channel variables (all strings).",
                    "properties": {"uuid": string(64)},
                    "required": ["uuid"],
                    "additionalProperties": {"type": "string"},
                },
                "callflow": {"type": "array", "items": {"type": "object"}},
                "channel_data": {"type": "object"},
            },
            "required": ["variables"],
            "additionalProperties": True,
        },
        "FreeswitchCdrStored": obj({"stored": string(64, description="The leg's uuid.")}, ["stored"]),
        "RecordingWebhook": obj(
            {
                "call_id": UUID,
                "status": choice(RecordingStatus),
                "recording_id": nullable(UUID),
                "file_url": nullable(string(2048, fmt="uri", description="An http or https URL.")),
                "local_path": nullable(string(1024)),
                "file_size": nullable(integer(0, webhooks.MAX_FILE_SIZE)),
                "duration": nullable(number(0)),
                "format": nullable(choice(webhooks.RecordingFormat)),
                "transcript": nullable(string(1_000_000)),
                "transcript_confidence": nullable(number(0, 1)),
            },
            ["call_id", "status"],
            description="Without recording_id, the call's newest recording (or a new one) is updated.",
        ),
    }


def _subscription_schemas() -> dict[str, Schema]:
    subscription = {
        "id": UUID,
        "url": string(),
        "event_types": array(choice(EventType)),
        "active": BOOLEAN,
        "description": string(),
        "created_at": DATE_TIME,
        "updated_at": DATE_TIME,
    }
    writable = {
        "url": string(2048, fmt="uri", description="An absolute http or https URL."),
        "secret": nullable(string(255, min_length=webhook_subscriptions.MIN_SECRET)),
        "event_types": nullable(array(choice(EventType), len(EventType))),
        "active": nullable(BOOLEAN),
        "description": nullable(string(200)),
    }
    return {
        "WebhookSubscription": response_object(subscription),
        "WebhookSubscriptionCreated": response_object(
            {**subscription, "secret": string(description="Answered this once, never again.")}
        ),
        "WebhookSubscriptionCreate": obj(
            writable, ["url"], description="No event_types (or []) means every event; no secret: one is generated."
        ),
        "WebhookSubscriptionPatch": obj(
            {**writable, "url": nullable(writable["url"])}, description="secret rotates it; active false holds it."
        ),
        "Delivery": response_object(
            {
                "id": UUID,
                "subscription": UUID,
                "call": UUID,
                "event": integer(1),
                "event_type": choice(EventType),
                "status": choice(DeliveryStatus),
                "attempts": integer(0),
                "next_attempt_at": nullable(DATE_TIME),
                "last_attempt_at": nullable(DATE_TIME),
                "last_status_code": nullable(integer()),
                "last_error": nullable(string()),
                "delivered_at": nullable(DATE_TIME),
                "created_at": DATE_TIME,
                "payload": ANY_OBJECT,
            }
        ),
    }


def _operations_schemas() -> dict[str, Schema]:
    return {
        "Health": response_object({"status": choice(["ok"])}),
        "Index": response_object(
            {"name": choice(["calld"]), "version": string(), "docs": string(), "openapi": string()}
        ),
        "Readiness": response_object(
            {
                "status": choice(["ready", "not ready"]),
                "checks": response_object({"database": string(), "switch": string()}),
            }
        ),
    }


def page_of(item: str) -> Schema:
    return response_object(
        {
            "count": integer(0, description="How many match, over all pages."),
            "next": nullable(string(fmt="uri")),
            "previous": nullable(string(fmt="uri")),
            "results": array(ref(item)),
        }
    )


PAGED = ("CallLog", "Client", "SipConfiguration", "WebhookSubscription", "Delivery")


def component_schemas() -> dict[str, Schema]:
    schemas: dict[str, Schema] = {
        "Error": _error(),
        "CallLog": response_object(_call_log()),
        "CallEvent": _call_event(),
        "Recording": _recording(),
        "CallDetail": _call_detail(),
        "Statistics": _statistics(),
        **_call_bodies(),
        **_client_schemas(),
        **_sip_schemas(),
        **_webhook_schemas(),
        **_subscription_schemas(),
        **_operations_schemas(),
    }
    schemas.update({f"{name}Page": page_of(name) for name in PAGED})
    return schemas


SECURITY_SCHEMES: dict[str, Schema] = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "An API token (`calld token create --scope read|write|admin`). Scopes nest: "
        "read < write < admin. Reads need read; other methods write; SIP configurations and webhook "
        "subscriptions admin.",
    },
    "accessToken": {
        "type": "apiKey",
        "in": "query",
        "name": "access_token",
        "description": "The API token in the query string: only /api/ws takes it (browsers cannot set headers "
        "on a WebSocket handshake).",
    },
    "basic": {
        "type": "http",
        "scheme": "basic",
        "description": "FreeSWITCH's mod_json_cdr cred: freeswitch.cdr_receiver_credentials (user:password).",
    },
    "signature": {
        "type": "apiKey",
        "in": "header",
        "name": "Calld-Signature",
        "description": "`t=<unix seconds>,v1=<hex HMAC-SHA256(secret, t + '.' + raw body)>` with the source's "
        "secret ([webhooks.sip], [webhooks.recording]); it must be within webhooks.replay_window_seconds.",
    },
}


# --- parameters -----------------------------------------------------------------------------------


def query(name: str, schema: Schema, description: str = "") -> Schema:
    param: Schema = {"name": name, "in": "query", "required": False, "schema": schema}
    if schema.get("type") == "array":
        param.update(style="form", explode=True)
    if description:
        param["description"] = description
    return param


PAGING = (
    query("limit", integer(1, MAX_LIMIT, default=DEFAULT_LIMIT), "Page size."),
    query("offset", integer(0, MAX_OFFSET, default=0), "How many to skip."),
)
ACTIVE = query("active", BOOLEAN, "Only active (true) or inactive (false) ones.")


def several(name: str, items: Schema, what: str) -> Schema:
    return query(name, array(items), f"{what}; repeat the parameter or separate values with commas.")


# A date-time filter also takes a plain date: the local midnight it begins.
DATE_OR_TIME: Schema = {"anyOf": [DATE_TIME, string(fmt="date")]}
_LOCAL_DAY = "(or a date: the midnight it begins in `calls.timezone`)"


def call_list_query() -> tuple[Schema, ...]:
    return (
        several("status", choice(CallStatus), "Any of these statuses"),
        several("direction", choice(CallDirection), "Any of these directions"),
        several("call_type", choice(CallType), "Any of these call types"),
        several("hangup_cause", choice(HangupCause), "Calls that ended for any of these causes"),
        several("hangup_by", choice(HangupBy), "Calls ended by any of these parties"),
        several("missed_reason", choice(MissedReason), "Unanswered calls missed for any of these reasons"),
        query("number", PHONE, "Calls from or to this number."),
        query("client", UUID, "Calls of this client."),
        query("started_after", DATE_OR_TIME, f"Calls started at or after this instant {_LOCAL_DAY}."),
        query("started_before", DATE_OR_TIME, f"Calls started before this instant {_LOCAL_DAY}."),
        query("ordering", choice(ORDERINGS, f"Default {DEFAULT_ORDERING}.")),
        *PAGING,
    )


LIVE_QUERY = (
    several("call", UUID, "Only these calls"),
    several("client", UUID, "Only these clients' calls"),
)


def path_parameters(path: str) -> list[Schema]:
    return [{"name": name, "in": "path", "required": True, "schema": UUID} for name in re.findall(r"\{([^}]+)\}", path)]


# --- operations -----------------------------------------------------------------------------------


def json_content(schema: Schema) -> Schema:
    return {"application/json": {"schema": schema}}


@dataclass(frozen=True)
class Op:
    """One operation: what it answers on success and any error its shape does not imply."""

    tag: str
    summary: str
    ok: Mapping[int, str | None]  # status -> component schema answered (None: no body)
    body: str | None = None  # component schema of the JSON body, which reading implies 400, 413 and 422
    body_required: bool = True
    params: tuple[Schema, ...] = ()  # query parameters, which reading implies 422
    errors: Mapping[int, str] = field(default_factory=dict)  # status -> when
    description: str = ""
    public: bool = False


CALLS, CLIENTS, SIP, INBOUND, OUTBOUND, LIVE, OPS, DOCS = (
    "Calls",
    "Clients",
    "SIP configurations",
    "Inbound webhooks",
    "Outbound webhooks",
    "Live updates",
    "Operations",
    "Documentation",
)
ILLEGAL = "the call's status does not allow it"
SWITCH_REFUSED = "the switch refused the request"
SWITCH_DOWN = "the switch is unavailable"
ON_SWITCH = {409: f"{ILLEGAL}, or {SWITCH_REFUSED}", 502: SWITCH_DOWN}


def _action(summary: str, description: str = "") -> Op:
    return Op(CALLS, summary, {200: "CallDetail"}, "NoParameters", False, errors=ON_SWITCH, description=description)


C = "/api/call-logs/"
CL = "/api/clients/"
S = "/api/sip-configurations/"
W = "/api/webhook-subscriptions/"

OPERATIONS: dict[tuple[str, str], Op] = {
    ("GET", C): Op(CALLS, "List calls", {200: "CallLogPage"}, params=call_list_query()),
    ("POST", C): Op(
        CALLS,
        "Record a call",
        {201: "CallDetail", 200: "CallDetail"},
        "CallCreate",
        errors={409: "the request conflicts with stored data"},
        description="It starts initiated at the server's clock. A call already logged under the same "
        "sip_call_id (by a webhook, the switch or an earlier request) is answered 200, with what it lacked "
        "filled in; nothing is stored twice.",
    ),
    ("GET", C + "statistics/"): Op(
        CALLS,
        "Call statistics",
        {200: "Statistics"},
        params=(query("period", choice(Period, "Default today.")),),
        description="Counts since the period began (local midnight, Monday, the 1st in calls.timezone).",
    ),
    ("POST", C + "initiate_call/"): Op(
        CALLS,
        "Place an outbound call",
        {201: "CallDetail"},
        "OutboundCall",
        errors={409: SWITCH_REFUSED, 502: SWITCH_DOWN},
        description="Through the switch when one is configured; a refused call is kept as failed.",
    ),
    ("POST", C + "log_incoming_call/"): Op(
        CALLS,
        "Record an inbound call",
        {201: "CallDetail", 200: "CallDetail"},
        "IncomingCall",
        errors={409: "the request conflicts with stored data"},
        description="The seed's inbound flow logs a call its SIP provider already announced (webhook "
        "call_initiated): a call with the same sip_call_id is answered 200 as it is stored, not logged twice.",
    ),
    ("GET", C + "{id}/"): Op(CALLS, "A call with its events and recordings", {200: "CallDetail"}),
    ("PATCH", C + "{id}/"): Op(
        CALLS, "Change a call's notes, score, client or SIP configuration", {200: "CallDetail"}, "CallPatch"
    ),
    ("DELETE", C + "{id}/"): Op(CALLS, "Delete a call with its events and recordings", {204: None}),
    ("PATCH", C + "{id}/update_status/"): Op(
        CALLS, "Change a call's status", {200: "CallDetail"}, "StatusChange", errors={409: ILLEGAL}
    ),
    ("POST", C + "{id}/end_call/"): _action("Hang up", "The outcome follows the call: ended, missed or cancelled."),
    ("POST", C + "{id}/add_event/"): Op(
        CALLS, "Record an event", {201: "CallEvent"}, "NewEvent", errors={409: ILLEGAL}
    ),
    ("POST", C + "{id}/start_recording/"): _action("Start recording"),
    ("POST", C + "{id}/stop_recording/"): _action("Stop recording"),
    ("POST", C + "{id}/transfer_call/"): Op(
        CALLS, "Transfer a connected call", {200: "CallDetail"}, "Transfer", errors=ON_SWITCH
    ),
    ("POST", C + "{id}/toggle_hold/"): _action("Hold an answered call, or resume a held one"),
    ("GET", CL): Op(
        CLIENTS,
        "List clients",
        {200: "ClientPage"},
        params=(
            query("search", string(200), "Part of the name, company or email."),
            query("number", PHONE, "The client with this number."),
            *PAGING,
        ),
    ),
    ("POST", CL): Op(
        CLIENTS, "Create a client", {201: "Client"}, "ClientCreate", errors={409: "a number belongs to another client"}
    ),
    ("GET", CL + "{id}/"): Op(CLIENTS, "A client", {200: "Client"}),
    ("PATCH", CL + "{id}/"): Op(
        CLIENTS, "Change a client", {200: "Client"}, "ClientPatch", errors={409: "a number belongs to another client"}
    ),
    ("DELETE", CL + "{id}/"): Op(CLIENTS, "Delete a client (its calls are kept)", {204: None}),
    ("GET", CL + "{id}/call_history/"): Op(
        CLIENTS, "A client's calls, newest first", {200: "CallLogPage"}, params=PAGING
    ),
    ("POST", CL + "{id}/link_calls/"): Op(
        CLIENTS, "Assign earlier unowned calls from or to the client's numbers", {200: "Linked"}
    ),
    ("GET", S): Op(SIP, "List SIP configurations", {200: "SipConfigurationPage"}, params=(ACTIVE, *PAGING)),
    ("POST", S): Op(
        SIP,
        "Create a SIP configuration",
        {201: "SipConfiguration"},
        "SipConfigurationCreate",
        errors={409: "the name is taken"},
        description="The first one becomes the default.",
    ),
    ("GET", S + "{id}/"): Op(SIP, "A SIP configuration", {200: "SipConfiguration"}),
    ("PATCH", S + "{id}/"): Op(
        SIP,
        "Change a SIP configuration",
        {200: "SipConfiguration"},
        "SipConfigurationPatch",
        errors={409: "the name is taken, or the default cannot be deactivated"},
    ),
    ("DELETE", S + "{id}/"): Op(
        SIP, "Delete a SIP configuration", {204: None}, description="Deleting the default promotes another."
    ),
    ("GET", S + "{id}/webrtc_config/"): Op(
        SIP, "What a browser SIP client needs", {200: "WebRtcConfig"}, errors={409: "no websocket_url is set"}
    ),
    ("POST", S + "{id}/set_default/"): Op(
        SIP, "Make it the only default", {200: "SipConfiguration"}, errors={409: "an inactive one cannot be default"}
    ),
    ("POST", S + "{id}/test_connection/"): Op(
        SIP,
        "Probe the SIP server now",
        {200: "ProbeResult"},
        description="SIP OPTIONS over UDP, TCP or TLS, or a WebSocket upgrade; 200 whatever the outcome.",
    ),
    ("POST", "/api/webhooks/sip/"): Op(
        INBOUND,
        "A call event from a SIP provider",
        {200: "SipWebhookResult"},
        "SipWebhook",
        errors={409: ILLEGAL},
        description="Creates or updates the call by sip_call_id; a redelivery (same delivery_id, or same call, "
        "type and timestamp) stores nothing and answers duplicate.",
    ),
    ("POST", "/api/webhooks/recording/"): Op(
        INBOUND,
        "A recording's state from a recording system",
        {200: "Recording"},
        "RecordingWebhook",
        errors={
            404: "no such call, or no such recording of it",
            409: "a deleted or completed recording cannot go back",
        },
    ),
    ("POST", "/api/webhooks/freeswitch/cdr/"): Op(
        INBOUND,
        "A leg's CDR from FreeSWITCH's mod_json_cdr",
        {200: "FreeswitchCdrStored"},
        "FreeswitchCdr",
        description="Point mod_json_cdr's url here with cred = freeswitch.cdr_receiver_credentials (HTTP "
        "Basic). calld keeps each leg's document and reads them, with the switch's other records, after every "
        "start and reconnect to recover calls it did not see.",
    ),
    ("GET", W): Op(OUTBOUND, "List webhook subscriptions", {200: "WebhookSubscriptionPage"}, params=(ACTIVE, *PAGING)),
    ("POST", W): Op(OUTBOUND, "Subscribe", {201: "WebhookSubscriptionCreated"}, "WebhookSubscriptionCreate"),
    ("GET", W + "{id}/"): Op(OUTBOUND, "A subscription", {200: "WebhookSubscription"}),
    ("PATCH", W + "{id}/"): Op(
        OUTBOUND, "Change a subscription", {200: "WebhookSubscription"}, "WebhookSubscriptionPatch"
    ),
    ("DELETE", W + "{id}/"): Op(OUTBOUND, "Delete a subscription and its deliveries", {204: None}),
    ("GET", W + "{id}/deliveries/"): Op(
        OUTBOUND,
        "A subscription's deliveries, newest first",
        {200: "DeliveryPage"},
        params=(query("status", choice(DeliveryStatus)), *PAGING),
    ),
    ("POST", W + "{id}/deliveries/{delivery_id}/redeliver/"): Op(
        OUTBOUND, "Send a delivery again, with a fresh budget of tries", {202: "Delivery"}
    ),
    ("GET", "/api/ws"): Op(
        LIVE,
        "Call changes pushed over a WebSocket",
        {101: None},
        params=LIVE_QUERY,
        errors={400: "not a WebSocket upgrade request"},
        description="Messages: ready, then call.created, call.event, call.updated, call.deleted, each with the "
        "call as the API shows it. A client too slow to keep up is closed with 1008; shutdown closes with 1001.",
    ),
    ("GET", "/healthz"): Op(OPS, "The process is alive", {200: "Health"}, public=True),
    ("GET", "/readyz"): Op(
        OPS,
        "Ready: the database answers and the switch (if any) is connected",
        {200: "Readiness", 503: "Readiness"},
        public=True,
    ),
    ("GET", "/metrics"): Op(OPS, "Prometheus metrics", {200: None}, public=True),
    ("GET", INDEX_PATH): Op(DOCS, "Where the API's documentation is", {200: "Index"}, public=True),
    ("GET", SPEC_PATH): Op(DOCS, "This OpenAPI document", {200: None}, public=True),
    ("GET", DOCS_PATH): Op(DOCS, "This document as a web page", {200: None}, public=True),
}

STATUS_TEXT = {
    101: "Switching Protocols: the WebSocket is open",
    200: "OK",
    201: "Created",
    202: "Accepted",
    204: "No Content",
    400: "Malformed JSON, or a body that is not a JSON object",
    401: "No valid credentials",
    403: "Not allowed",
    404: "No such resource (or a malformed id)",
    409: "Conflict",
    413: "The body is larger than server.max_body_bytes",
    422: "Invalid fields or parameters: detail names each one",
    502: SWITCH_DOWN,
    503: "Not ready: checks says why",
}
# Bodies not described by a component: the document itself, the page and the metrics.
_RAW_BODIES: dict[tuple[str, str], Schema] = {
    ("GET", SPEC_PATH): {"application/json": {"schema": {"type": "object"}}},
    ("GET", DOCS_PATH): {"text/html": {"schema": {"type": "string"}}},
    ("GET", "/metrics"): {"text/plain": {"schema": {"type": "string"}}},
}


def _security(method: str, path: str, op: Op) -> tuple[list[Schema], dict[int, str]]:
    """Who may call the operation, and the errors that follow from it."""
    if op.public:
        return [], {}
    if path == "/api/webhooks/freeswitch/cdr/":
        return [{"basic": []}], {401: "Missing or wrong Basic credentials, or the receiver is off"}
    if path.startswith(SIGNED_PREFIXES):
        return [{"signature": []}], {
            401: "Missing, malformed, wrong or stale Calld-Signature",
            403: "The peer address is not in the source's allow_ips",
        }
    scope = required_scope(method, path)
    assert scope is not None, f"{method} {path} is neither public, signed nor scoped"
    needs: list[Schema] = [{"bearer": [str(scope)]}]
    if path == "/api/ws":
        needs.append({"accessToken": [str(scope)]})
    errors = {401: "No token, or an unknown or revoked one"}
    if scope is not Scope.READ:
        errors[403] = f"The token's scope is below {scope}"
    return needs, errors


def _responses(method: str, path: str, op: Op, auth_errors: Mapping[int, str], *, bearer: bool) -> dict[str, Schema]:
    responses: dict[int, Schema] = {}
    for status, schema in op.ok.items():
        answer: Schema = {"description": STATUS_TEXT[status]}
        if schema is not None:
            answer["content"] = json_content(ref(schema))
        elif (method, path) in _RAW_BODIES:
            answer["content"] = _RAW_BODIES[(method, path)]
        if status == 201 and op.tag != CALLS:
            answer["headers"] = {"Location": {"description": "The new resource's path", "schema": string()}}
        responses[status] = answer
    errors: dict[int, str] = dict(auth_errors)
    if op.body is not None:
        errors.update({400: STATUS_TEXT[400], 413: STATUS_TEXT[413], 422: STATUS_TEXT[422]})
    if op.params:
        errors[422] = STATUS_TEXT[422]
    if "{" in path:
        errors[404] = STATUS_TEXT[404]
    errors.update(op.errors)
    for status, when in errors.items():
        answer = {"description": when[:1].upper() + when[1:], "content": json_content(ref("Error"))}
        if status == 401 and bearer:
            answer["headers"] = {"WWW-Authenticate": {"schema": string(), "description": 'Bearer realm="calld"'}}
        responses[status] = answer
    return {str(status): responses[status] for status in sorted(responses)}


def operation(method: str, path: str, op: Op) -> Schema:
    """The OpenAPI operation object of ``op`` at ``method path``."""
    security, auth_errors = _security(method, path, op)
    out: Schema = {
        "operationId": _operation_id(method, path),
        "tags": [op.tag],
        "summary": op.summary,
        "security": security,
        "responses": _responses(method, path, op, auth_errors, bearer=bool(security) and "bearer" in security[0]),
    }
    if op.description:
        out["description"] = op.description
    parameters = [*path_parameters(path), *op.params]
    if parameters:
        out["parameters"] = parameters
    if op.body is not None:
        content = json_content(ref(op.body))
        content["application/json"]["example"] = BODY_EXAMPLES[op.body]
        out["requestBody"] = {"required": op.body_required, "content": content}
    return out


# One example per request body schema, shown by /api/docs and in the README's walkthrough (a test
# checks each against its schema). The ids are placeholders for ones the API answered.
_CALL_ID = "3f2b6c1e-8a4d-4f7e-9c2a-5b1d0e6f7a89"
_CONFIG_ID = "0b9e4d2a-7c1f-4e3b-8a5d-6f2c9e1b3a47"
_CLIENT_ID = "5c8a1f3e-2b7d-4c9e-a6f1-8d3b0e5c7a21"
BODY_EXAMPLES: Mapping[str, Any] = {
    "CallCreate": {
        "direction": "outbound",
        "caller_number": "1001",
        "recipient_number": "+14155550123",
        "call_type": "voice",
        "notes": "Quote follow-up",
    },
    "OutboundCall": {"recipient_number": "+14155550123", "caller_number": "1001", "sip_configuration": _CONFIG_ID},
    "IncomingCall": {"caller_number": "+14155550123", "recipient_number": "1001", "sip_call_id": "a84b4c76e66710@pbx"},
    "CallPatch": {"notes": "Customer asked for a callback", "call_quality_score": 4.5, "client": _CLIENT_ID},
    "StatusChange": {"status": "answered"},
    "NewEvent": {"event_type": "dtmf", "metadata": {"digits": "1"}},
    "Transfer": {"transfer_to": "1002", "attended": False},
    "NoParameters": {},
    "ClientCreate": {
        "name": "Maria Gonzalez",
        "phone_numbers": ["+14155550123"],
        "email": "maria@northwind.example",
        "company": "Northwind Traders",
    },
    "ClientPatch": {"company": "Northwind Traders Ltd"},
    "SipConfigurationCreate": {
        "name": "office-pbx",
        "server": "pbx.example.internal",
        "username": "1001",
        "secret": "change-me-1001",
        "transport": "udp",
        "port": 5060,
    },
    "SipConfigurationPatch": {"active": False},
    "SipWebhook": {
        "event_type": "call_answered",
        "sip_call_id": "a84b4c76e66710@pbx",
        "timestamp": "2026-11-24T12:00:05Z",
        "caller_number": "+14155550123",
        "recipient_number": "1001",
        "direction": "inbound",
        "delivery_id": "evt-000123",
    },
    "RecordingWebhook": {
        "call_id": _CALL_ID,
        "status": "completed",
        "file_url": "https://recordings.example/3f2b6c1e.wav",
        "duration": 42.5,
        "format": "wav",
    },
    "FreeswitchCdr": {
        "core-uuid": "4b6e2d61-5a83-4a4e-9d2f-1b1d7a9c0e11",
        "channel_data": {"state": "CS_REPORTING", "direction": "inbound"},
        "variables": {
            "uuid": "98d1e8ca-ad7b-40d3-8256-865418918f30",
            "direction": "inbound",
            "start_uepoch": "1796229061004657",
            "answer_uepoch": "1796229062564783",
            "end_uepoch": "1796229066364668",
            "hangup_cause": "NORMAL_CLEARING",
        },
        "callflow": [
            {
                "profile_index": "1",
                "caller_profile": {"caller_id_number": "1000", "destination_number": "1001", "context": "default"},
            }
        ],
    },
    "WebhookSubscriptionCreate": {
        "url": "https://crm.example/hooks/calld",
        "event_types": ["answered", "ended"],
        "description": "CRM call sync",
    },
    "WebhookSubscriptionPatch": {"active": False},
}


def _operation_id(method: str, path: str) -> str:
    words = re.sub(r"[^a-z0-9]+", "_", path.replace("{", "by_").lower()).strip("_")
    return f"{method.lower()}_{words}"


def registered_routes(app: web.Application) -> list[tuple[str, str]]:
    """``(method, path template)`` of every route the app answers, HEAD (GET's twin) left out."""
    routes = []
    for route in app.router.routes():
        if route.resource is None or route.method in ("HEAD", "*"):
            continue
        routes.append((route.method, route.resource.canonical))
    return routes


def build_spec(app: web.Application) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the routes ``app`` has; a route missing from ``OPERATIONS`` is left out
    (and fails tests/http/test_openapi.py)."""
    paths: dict[str, dict[str, Any]] = {}
    for method, path in registered_routes(app):
        op = OPERATIONS.get((method, path))
        if op is not None:
            paths.setdefault(path, {})[method.lower()] = operation(method, path, op)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "calld",
            "version": calld.__version__,
            "description": "Call logging and call control for Asterisk and FreeSWITCH. Every error is "
            '`{"error": "...", "detail": {"field": "problem"}}`.',
        },
        "tags": [{"name": name} for name in (CALLS, CLIENTS, SIP, INBOUND, OUTBOUND, LIVE, OPS, DOCS)],
        "paths": paths,
        "components": {"schemas": component_schemas(), "securitySchemes": SECURITY_SCHEMES},
    }


async def openapi_json(request: web.Request) -> web.Response:
    """GET /api/openapi.json — this API's OpenAPI 3.1 document."""
    return web.json_response(build_spec(request.app))


async def docs_page(request: web.Request) -> web.Response:
    """GET /api/docs — the document as a self-contained HTML page."""
    return web.Response(text=openapi_html.render(build_spec(request.app)), content_type="text/html")


async def index(request: web.Request) -> web.Response:
    """GET / — where a newcomer's browser or curl finds the documentation."""
    body = {"name": "calld", "version": calld.__version__, "docs": DOCS_PATH, "openapi": SPEC_PATH}
    return web.json_response(body)


def add_routes(app: web.Application) -> None:
    app.router.add_get(INDEX_PATH, index)
    app.router.add_get(SPEC_PATH, openapi_json)
    app.router.add_get(DOCS_PATH, docs_page)

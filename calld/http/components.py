"""The OpenAPI document's components: the schemas of calld's JSON bodies, its security schemes and one
example per request body. Enumerations and limits come from the domain and the handlers' own tables, so
they cannot drift from the code."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from calld.domain.call import MAX_QUALITY_SCORE
from calld.domain.call_filter import Period
from calld.domain.controls import MAX_DTMF_DIGITS, MAX_DTMF_MS, MIN_DTMF_MS, Party
from calld.domain.delivery import SUBSCRIBABLE, DeliveryStatus
from calld.domain.hangup import HangupBy, HangupCause, MissedReason
from calld.domain.parking import MAX_SLOT_DIGITS
from calld.domain.participants import PartyRole
from calld.domain.scopes import Scope
from calld.domain.statistics import SERVICE_LEVELS, GroupBy, Interval
from calld.domain.vocabulary import (
    CallDirection,
    CallStatus,
    CallType,
    EventSource,
    EventType,
    RecordingStatus,
    SipTransport,
)
from calld.http import clients, sip_configurations, webhook_subscriptions, webhooks
from calld.http.call_logs import NOTES_MAX
from calld.http.schema import (
    ANY_OBJECT,
    BOOLEAN,
    DATE_TIME,
    PHONE,
    PRESENTED_NUMBER,
    STORED_NUMBER,
    UUID,
    Schema,
    array,
    choice,
    integer,
    nullable,
    number,
    obj,
    ref,
    response_object,
    string,
)
from calld.service.provider import RecordingFormat, SipEventType

# --- component schemas ----------------------------------------------------------------------------


def _error() -> Schema:
    return obj(
        {
            "error": string(description="What went wrong, in a few words, for people."),
            "code": string(
                description="What went wrong, stable for machines: not_found, validation_failed, invalid_value, "
                "illegal_transition, switch_refused, switch_unavailable, already_exists, unauthenticated, forbidden, "
                "malformed_request, body_too_large, database_unavailable, internal_error, ..."
            ),
            "detail": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "The offending field (or 'body', 'authorization', ...) and what is wrong with it.",
            },
            "current_status": string(description="409 on a status change: the status the call or recording has."),
            "requested": string(description="409 on a status change: what was asked for."),
            "number": string(description="409 on a client's number: the number that is taken."),
            "client": string(fmt="uuid", description="409 on a client's number: the client that has it."),
            "request_id": string(description="500: the id on the log line an operator looks for."),
        },
        ["error", "code", "detail"],
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
        "answered_by": nullable(
            string(
                description="Which party really answered (its number, else its endpoint): "
                "with a ring group, the phone that was connected."
            )
        ),
        "mos": nullable(
            number(
                1,
                5,
                description="Mean opinion score of the worst leg, from the switch (estimated by a simplified "
                "ITU-T G.107 E-model where it gives only loss, jitter and round-trip time).",
            )
        ),
        "jitter_ms": nullable(number(0, description="The worst leg's jitter, milliseconds.")),
        "packet_loss_pct": nullable(number(0, 100, description="The worst leg's share of packets lost, percent.")),
        "rtt_ms": nullable(number(0, description="The worst leg's round-trip time, milliseconds.")),
        "quality_source": nullable(string(description="What measured the quality (freeswitch, asterisk).")),
        "call_quality_score_by": nullable(
            choice(["person", "mos"], "Who set call_quality_score: a person (kept) or calld from the MOS.")
        ),
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
            "transcript": nullable(string()),
            "transcript_confidence": nullable(number(0, 1)),
            "started_at": nullable(DATE_TIME),
            "stopped_at": nullable(DATE_TIME),
            "paused_spans": array(
                response_object(
                    {"paused_at": DATE_TIME, "resumed_at": nullable(DATE_TIME)},
                    description="A stretch the recording was paused (silent in the file); resumed_at null: "
                    "still paused.",
                )
            ),
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


TAGS = array(string(64, min_length=1), 20)


def _call_log_listed() -> Schema:
    """A call as lists show it: with its tags there (live messages leave them out)."""
    schema = response_object(_call_log())
    schema["properties"] = {**schema["properties"], "tags": {**TAGS, "description": "In lists and details."}}
    return schema


def _call_detail() -> Schema:
    return response_object(
        {
            **_call_log(),
            "participants": array(ref("Participant")),
            "recording_paused": BOOLEAN,
            "parked": nullable(ref("Parked")),
            "tags": TAGS,
            "events": array(ref("CallEvent")),
            "recordings": array(ref("Recording")),
            "recording": nullable(ref("Recording")),
        },
        description="A call with its parties, its events (oldest first) and recordings; `recording` is the newest one.",
    )


def _parked() -> Schema:
    return response_object(
        {
            "slot": string(description="The parking slot (extension) the caller waits in: dial it to take the call."),
            "lot": nullable(string(description="The switch's parking lot, when it names it.")),
            "since": DATE_TIME,
        },
        description="Where a parked call waits: set by a `hold` event whose metadata names the slot "
        '(`{"parked": slot}`), cleared by the pickup (`unhold` with `{"picked_up": slot}`) or the call leaving.',
    )


def _participant() -> Schema:
    return response_object(
        {
            "leg": nullable(
                string(
                    description="The switch's leg (channel uniqueid / uuid); null for a call logged "
                    "through the API or a provider's webhook, whose parties come from its numbers."
                )
            ),
            "role": choice(PartyRole),
            "number": string(),
            "name": string(),
            "endpoint": string(description="The channel the party was on, e.g. PJSIP/1002 or sofia/internal/1002@..."),
            "joined_at": nullable(DATE_TIME),
            "answered_at": nullable(DATE_TIME),
            "left_at": nullable(DATE_TIME),
            "end_cause": nullable(
                string(
                    description="How its leg ended, as the switch said (LOSE_RACE: another phone of a ring group won)."
                )
            ),
            "quality": nullable(
                response_object(
                    {
                        "measured": BOOLEAN,
                        "mos": nullable(number(1, 5)),
                        "jitter_ms": nullable(number(0)),
                        "packet_loss_pct": nullable(number(0, 100)),
                        "rtt_ms": nullable(number(0)),
                        "packets": nullable(integer(0)),
                    },
                    description="What this party's leg received, as the switch reported it at hangup "
                    "(measured false: no media reached it); null where the switch reported nothing.",
                )
            ),
        },
        description="One party of a call with its role.",
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
                "tags": {
                    **TAGS,
                    "description": "The call's tags become these (lower-cased): 1 to 64 letters, digits and "
                    "- _ . : / (single spaces inside), starting and ending with a letter or digit; [] clears them.",
                },
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
        "Park": obj(
            {
                "slot": nullable(
                    string(
                        MAX_SLOT_DIGITS,
                        min_length=1,
                        pattern=f"^[0-9]{{1,{MAX_SLOT_DIGITS}}}$",
                        description="The parking slot (extension). Asterisk: default the lot's next free "
                        "space; FreeSWITCH: default `[freeswitch] park_extension`.",
                    )
                )
            },
            description="Where to park the far party; no body or {} means the default slot.",
        ),
        "Pickup": obj(
            {
                "to": {
                    **PHONE,
                    "description": "The phone (extension) that takes the parked call: it rings and, answered, "
                    "is joined to the parked caller.",
                }
            },
            ["to"],
        ),
        "PartyChoice": obj(
            {"party": nullable(choice(Party, "The caller or the callee; default the far party (not calld's user)."))},
            description="Which party of the call; no body or {} means the far party.",
        ),
        "Dtmf": obj(
            {
                "digits": string(MAX_DTMF_DIGITS, min_length=1, pattern=f"^[0-9*#A-Da-d]{{1,{MAX_DTMF_DIGITS}}}$"),
                "duration_ms": nullable(integer(MIN_DTMF_MS, MAX_DTMF_MS, description="Each digit's length.")),
                "party": nullable(choice(Party, "Who hears them. Default the far party (not calld's user).")),
            },
            ["digits"],
            description="DTMF digits 0-9 * # A-D played into the call, as if pressed on a phone's keypad.",
        ),
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


FILE_OUTCOMES = ("removed", "missing", "outside", "none", "already_deleted")


def _recording_deletion_schemas() -> dict[str, Schema]:
    deleted = _recording()
    deleted["properties"] = {
        **deleted["properties"],
        "file": choice(
            FILE_OUTCOMES,
            "What became of the file: removed; missing (not on this host); outside the recording "
            "directories (kept); none (the recording names no local file); already_deleted.",
        ),
    }
    deleted["required"] = [*deleted.get("required", []), "file"]
    count = integer(0)
    return {
        "RecordingDeleted": deleted,
        "RecordingsDeleted": response_object(
            {
                "recordings": count,
                "removed": count,
                "missing": count,
                "outside": count,
                "none": count,
                "dry_run": BOOLEAN,
            },
            description="Recordings deleted (or, with dry_run, that would be), by what became of their files.",
        ),
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


def _statistics_report() -> dict[str, Schema]:
    # What a report says of itself, in both of its forms.
    report_head: dict[str, Schema] = {
        "from": DATE_TIME,
        "until": DATE_TIME,
        "timezone": string(),
        "interval": nullable(choice(Interval)),
        "group_by": nullable(choice(GroupBy)),
        "service_level_seconds": integer(enum=list(SERVICE_LEVELS)),
        "totals": ref("StatisticsMetrics"),
    }
    count = integer(0)
    seconds = number(0)
    pct = number(0, 100)
    metrics: dict[str, Schema] = {
        "total_calls": count,
        "answered_calls": count,
        "missed_calls": count,
        "inbound_calls": count,
        "outbound_calls": count,
        "abandoned_calls": count,
        "answer_rate": pct,
        "abandon_rate": pct,
        "service_level": pct,
        "answered_within_service_level": count,
        "total_talk_seconds": seconds,
        "average_talk_seconds": seconds,
        "average_ring_seconds": seconds,
        "average_hold_seconds": seconds,
        "internal_calls": count,  # last: the series CSV's earlier columns keep their places
    }
    row = response_object(
        {"start": DATE_TIME, "end": DATE_TIME, "group": nullable(string()), **metrics},
        description="One bucket (clipped to [from, until)), or one group in it; group is null without "
        "group_by, and for the calls with no value (no client, no extension...).",
    )
    return {
        "StatisticsMetrics": response_object(
            metrics,
            description="answer_rate = answered / total; abandoned: inbound calls given up before an answer "
            "(missed or cancelled), abandon_rate = abandoned / inbound; service_level = answered within "
            "service_level_seconds of ringing / total; talk and hold averages over answered, ended calls; "
            "ring (time to answer) over answered calls.",
        ),
        "StatisticsRow": row,
        "StatisticsReport": response_object(
            {
                **report_head,
                "series": array(ref("StatisticsRow")),
            },
            description="Calls started in [from, until): totals, and the series in time order (groups sorted, "
            "no group last). Without group_by every bucket is listed, empty ones too.",
        ),
        "StatisticsReportCompact": response_object(
            {
                **report_head,
                "fields": array(string()),
                "rows": array(array({})),  # mixed: text, null and numbers
            },
            description="format=compact: a StatisticsReport whose series is `rows`, each an array of the "
            "values of `fields` (start, end, group and the metrics of StatisticsRow, in that order).",
        ),
        "StatisticsAnswer": {"anyOf": [ref("Statistics"), ref("StatisticsReport"), ref("StatisticsReportCompact")]},
    }


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
    turn = obj({"urls": string(fmt="uri")}, ["urls"])
    turn_in = obj(
        {"urls": string(description="turn: or turns: URI; credentials are minted per request from [turn] secret")},
        ["urls"],
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
                "password": nullable(
                    string(description="The line's SIP secret: only for the softphone token bound to this line.")
                ),
                "ice_servers": array(obj({"urls": string(), "username": string(), "credential": string()}, ["urls"])),
                "turn_expires_at": nullable(DATE_TIME),
                "register": BOOLEAN,
            },
            description="What a SIP.js or JsSIP user agent needs; TURN credentials are minted for this request.",
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
                "event_type": choice(SipEventType),
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
                "format": nullable(choice(RecordingFormat)),
                "transcript": nullable(string(1_000_000)),
                "transcript_confidence": nullable(number(0, 1)),
            },
            ["call_id", "status"],
            description="Without recording_id, the call's newest recording (or a new one) is updated.",
        ),
    }


def _provider_schemas() -> dict[str, Schema]:
    """The SIP providers' own webhooks: their fields calld reads (they send more, which is kept)."""
    form = {"type": "string"}
    return {
        "TwilioCallback": {
            "type": "object",
            "description": "A Twilio status callback (CallStatus) or recording status callback (RecordingSid), "
            "form-encoded as Twilio sends it.",
            "properties": {
                name: form
                for name in (
                    "CallSid",
                    "ParentCallSid",
                    "CallStatus",
                    "StatusCallbackEvent",
                    "From",
                    "To",
                    "Direction",
                    "CallDuration",
                    "Timestamp",
                    "SequenceNumber",
                    "RecordingSid",
                    "RecordingUrl",
                    "RecordingStatus",
                    "RecordingDuration",
                )
            },
            "required": ["CallSid"],
            "additionalProperties": True,
        },
        "TelnyxWebhook": {
            "type": "object",
            "description": "A Telnyx Call Control webhook: data.event_type call.initiated, call.answered, "
            "call.hangup (hangup_cause, hangup_source, sip_hangup_cause, call_quality_stats), "
            "call.recording.saved; any other is stored as provider_event.",
            "properties": {"data": {"type": "object", "additionalProperties": True}},
            "required": ["data"],
            "additionalProperties": True,
        },
        "VonageEvent": {
            "type": "object",
            "description": "A Vonage Voice API event (status) or recording event (recording_url).",
            "properties": {
                "conversation_uuid": string(),
                "uuid": string(),
                "status": string(),
                "from": string(),
                "to": string(),
                "timestamp": string(),
                "recording_url": string(),
            },
            "required": ["conversation_uuid"],
            "additionalProperties": True,
        },
        "PlivoCallback": {
            "type": "object",
            "description": "A Plivo answer, ring or hangup callback, or a recording callback (RecordUrl), "
            "form-encoded as Plivo sends it.",
            "properties": {
                name: form
                for name in (
                    "CallUUID",
                    "ALegUUID",
                    "CallStatus",
                    "Event",
                    "From",
                    "To",
                    "Direction",
                    "Duration",
                    "HangupCause",
                    "HangupSource",
                    "StartTime",
                    "AnswerTime",
                    "EndTime",
                    "RecordUrl",
                )
            },
            "required": ["CallUUID"],
            "additionalProperties": True,
        },
        "ProviderWebhookResult": obj(
            {
                "provider": choice(["twilio", "telnyx", "vonage", "plivo"]),
                "call": nullable(UUID),
                "events": array(ANY_OBJECT),
            },
            ["provider", "events"],
            description="Each of the delivery's calld events: stored (with the call and event ids), "
            "duplicate (a redelivery), or not needed (an implied event the call already has).",
        ),
    }


def _subscription_schemas() -> dict[str, Schema]:
    subscription = {
        "id": UUID,
        "url": string(),
        "event_types": array(choice(SUBSCRIBABLE)),
        "active": BOOLEAN,
        "description": string(),
        "created_at": DATE_TIME,
        "updated_at": DATE_TIME,
    }
    writable = {
        "url": string(2048, fmt="uri", description="An absolute http or https URL."),
        "secret": nullable(string(255, min_length=webhook_subscriptions.MIN_SECRET)),
        "event_types": nullable(array(choice(SUBSCRIBABLE), len(SUBSCRIBABLE))),
        "active": nullable(BOOLEAN),
        "description": nullable(string(200)),
    }
    return {
        "WebhookSubscription": response_object(subscription),
        "WebhookSubscriptionCreated": response_object(
            {**subscription, "secret": string(description="Answered this once, never again.")}
        ),
        "WebhookSubscriptionCreate": obj(
            writable,
            ["url"],
            description="No event_types (or []) means every call event; call.completed (the summary of a call that "
            "is over: timings, why it ended, who answered, its parties and recordings) is sent only when listed. "
            "No secret: one is generated.",
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
                "event_type": choice(SUBSCRIBABLE),
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
        "Whoami": response_object(
            {
                "id": UUID,
                "name": string(),
                "scope": choice(Scope),
                "sip_configuration_id": nullable(UUID),
            },
            description="The token the request presented (never the token itself); a softphone token's line.",
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
        "CallLog": _call_log_listed(),
        "CallEvent": _call_event(),
        "Recording": _recording(),
        "CallDetail": _call_detail(),
        "Participant": _participant(),
        "Parked": _parked(),
        "Statistics": _statistics(),
        **_statistics_report(),
        **_recording_deletion_schemas(),
        **_call_bodies(),
        **_client_schemas(),
        **_sip_schemas(),
        **_webhook_schemas(),
        **_provider_schemas(),
        **_subscription_schemas(),
        **_operations_schemas(),
    }
    schemas.update({f"{name}Page": page_of(name) for name in PAGED})
    return schemas


SECURITY_SCHEMES: dict[str, Schema] = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "An API token (`calld token create --scope read|write|admin|softphone`). Scopes nest: "
        "read < write < admin. Reads need read; other methods write; SIP configurations, webhook "
        "subscriptions and deleting recordings in bulk admin (but any token may read a line's webrtc_config). "
        "A softphone token may do what write may and reads the SIP password of the one line it is bound to.",
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
    "twilioSignature": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Twilio-Signature",
        "description": "Twilio's signature with the account's auth token ([webhooks.providers.twilio]) over "
        "the URL as configured (public_url) and the sorted parameters.",
    },
    "telnyxSignature": {
        "type": "apiKey",
        "in": "header",
        "name": "telnyx-signature-ed25519",
        "description": "Ed25519 signature of telnyx-timestamp + '|' + body, checked with the account's public "
        "key ([webhooks.providers.telnyx]); the timestamp must be within webhooks.replay_window_seconds.",
    },
    "vonageJwt": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "Vonage's signed webhook: an HS256 JWT with the signature secret "
        "([webhooks.providers.vonage]), payload_hash = SHA-256 of the body, iat within the replay window.",
    },
    "plivoSignature": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Plivo-Signature-V3",
        "description": "Plivo's V3 signature (with X-Plivo-Signature-V3-Nonce) with the auth token "
        "([webhooks.providers.plivo]) over the URL as configured (public_url) and the sorted parameters.",
    },
}


PROVIDER_SECURITY = {
    "twilio": "twilioSignature",
    "telnyx": "telnyxSignature",
    "vonage": "vonageJwt",
    "plivo": "plivoSignature",
}
PROVIDERS_PATH = "/api/webhooks/providers/"

# Request bodies providers send form-encoded, as they send them.
FORM = "application/x-www-form-urlencoded"
FORM_BODIES = {"TwilioCallback": FORM, "PlivoCallback": FORM}


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
    "CallPatch": {
        "notes": "Customer asked for a callback",
        "call_quality_score": 4.5,
        "client": _CLIENT_ID,
        "tags": ["callback", "vip"],
    },
    "StatusChange": {"status": "answered"},
    "NewEvent": {"event_type": "dtmf", "metadata": {"digits": "1"}},
    "Transfer": {"transfer_to": "1002", "attended": False},
    "PartyChoice": {"party": "caller"},
    "Park": {"slot": "701"},
    "Pickup": {"to": "1002"},
    "Dtmf": {"digits": "1234#", "duration_ms": 100},
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
    "TwilioCallback": {
        "CallSid": "CA5c1e5d53f8b2f1f7e4a0c6a9d2b1e3f4",
        "CallStatus": "completed",
        "From": "+14155550123",
        "To": "+14155550199",
        "Direction": "inbound",
        "CallDuration": "42",
        "Timestamp": "Tue, 24 Nov 2026 12:00:42 +0000",
        "SequenceNumber": "3",
    },
    "TelnyxWebhook": {
        "data": {
            "record_type": "event",
            "event_type": "call.hangup",
            "id": "0ccc7b54-4df3-4bca-a65a-3da1ecc777f0",
            "occurred_at": "2026-11-24T12:00:42.000000Z",
            "payload": {
                "call_control_id": "v3:MdI91X4lWFEs7IgbBEOT9M4AigoY08M0WWZFISt1Yw2axZ_IiE4pqg",
                "call_leg_id": "428c31b6-7af4-4bcb-b7f5-5013ef9657c1",
                "call_session_id": "428c31b6-abf3-3bc1-b7f4-5013ef9657c1",
                "from": "+14155550123",
                "to": "+14155550199",
                "hangup_cause": "normal_clearing",
                "hangup_source": "caller",
                "sip_hangup_cause": "200",
                "call_quality_stats": {"inbound": {"mos": "4.50"}, "outbound": {}},
            },
        }
    },
    "VonageEvent": {
        "from": "14155550123",
        "to": "14155550199",
        "uuid": "63f61863-4a51-4f6b-86e1-46edebio0391",
        "conversation_uuid": "CON-f972836a-550f-45fa-956c-12a2ab5b7d22",
        "status": "answered",
        "direction": "inbound",
        "timestamp": "2026-11-24T12:00:05.000Z",
    },
    "PlivoCallback": {
        "CallUUID": "2e2b5b8a-1b1e-11ee-9a3c-0242ac120002",
        "CallStatus": "completed",
        "Event": "Hangup",
        "From": "14155550123",
        "To": "14155550199",
        "Direction": "inbound",
        "Duration": "42",
        "HangupCause": "NORMAL_CLEARING",
        "HangupSource": "Caller",
        "AnswerTime": "2026-11-24 12:00:00",
        "EndTime": "2026-11-24 12:00:42",
    },
    "WebhookSubscriptionCreate": {
        "url": "https://crm.example/hooks/calld",
        "event_types": ["answered", "ended"],
        "description": "CRM call sync",
    },
    "WebhookSubscriptionPatch": {"active": False},
}

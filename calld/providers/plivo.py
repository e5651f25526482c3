"""Plivo Voice callbacks (answer, ring and hangup URLs; recording callbacks).

Signature (``X-Plivo-Signature-V3``, with ``X-Plivo-Signature-V3-Nonce``): base64 HMAC-SHA256, keyed
by the auth token, of ``<URL>.<nonce>`` where a POST's URL is followed by its parameters sorted by
name, each name then value (a comma may separate several signatures, one per token). Plivo signs no
time: the event's own time is bounded by the replay window where the callback carries one, and
``CallUUID`` + ``Event`` + ``CallStatus`` identify a delivery. Legs of a ``<Dial>`` name their
A leg (``ALegUUID``), which is the call's identity here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from calld.domain.vocabulary import CallDirection, EventType, RecordingStatus
from calld.providers.model import (
    Attempt,
    PayloadProblem,
    ProviderEvent,
    RecordingReport,
    SignatureRejected,
    SignedRequest,
    check_age,
    compact,
    ending,
    event_key,
    form_fields,
    hangup_by,
    hangup_cause,
    instant,
    number,
    optional,
    party,
    required,
)

PROVIDER = "plivo"
SIGNATURE_HEADER = "X-Plivo-Signature-V3"
NONCE_HEADER = "X-Plivo-Signature-V3-Nonce"

# CallStatus -> the outcome of a call that ends so (None: a plain end).
_ENDINGS: Mapping[str, str | None] = {
    "completed": None,
    "busy": "busy",
    "no-answer": "no_answer",
    "timeout": "no_answer",
    "cancel": "cancelled",
    "canceled": "cancelled",
    "cancelled": "cancelled",
    "failed": "failed",
}


def signed_url(url: str, params: Mapping[str, str]) -> str:
    """The string Plivo signs for a POST to ``url`` with ``params`` (before ``.<nonce>``)."""
    parts = urlsplit(url)
    base = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    query = sorted(parse_qsl(parts.query, keep_blank_values=True))
    # As Plivo's own helper writes it: "?" whenever there are parameters of either kind, "." between.
    if query or params:
        base += "?" + "&".join(f"{name}={value}" for name, value in query)
    if query and params:
        base += "."
    return base + "".join(name + params[name] for name in sorted(params))


def signature(auth_token: str, url: str, nonce: str, params: Mapping[str, str]) -> str:
    digest = hmac.new(auth_token.encode(), f"{signed_url(url, params)}.{nonce}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def verify(auth_token: str, request: SignedRequest) -> dict[str, str]:
    """Check the V3 signature; return the form parameters."""
    given = request.header(SIGNATURE_HEADER)
    nonce = request.header(NONCE_HEADER)
    if not given or not nonce:
        raise SignatureRejected(f"missing {SIGNATURE_HEADER} or {NONCE_HEADER} header")
    try:
        params = form_fields(request.body)
    except PayloadProblem:  # nothing the provider signed
        raise SignatureRejected("the body is not form data") from None
    expected = signature(auth_token, request.url, nonce, params).encode()
    matched = False
    for candidate in given.split(","):
        matched |= hmac.compare_digest(candidate.strip().encode(), expected)
    if not matched:
        raise SignatureRejected("signature does not match the URL, parameters and nonce")
    return params


def parse(fields: Mapping[str, Any], region: str | None, now: datetime, window: timedelta) -> list[ProviderEvent]:
    """A callback's events (an event time outside the window: refused)."""
    call_uuid = required(fields, "CallUUID")
    a_leg = optional(fields, "ALegUUID") or call_uuid
    if optional(fields, "RecordUrl") is not None:
        return [_recording(fields, a_leg, call_uuid, now)]
    status = required(fields, "CallStatus").lower()
    event = optional(fields, "Event") or status
    when = optional(fields, "EndTime") if status in _ENDINGS else optional(fields, "AnswerTime")
    if status not in _ENDINGS and status != "in-progress":
        when = None
    timestamp = instant(when, "EndTime" if status in _ENDINGS else "AnswerTime") if when else now
    check_age(timestamp, now, window, "event time")
    meta = compact(
        {
            "provider": PROVIDER,
            "provider_event": event,
            "provider_call_id": a_leg,
            "leg": call_uuid,
            "call_status": status,
            "from_raw": optional(fields, "From"),
            "to_raw": optional(fields, "To"),
            "plivo_direction": optional(fields, "Direction"),
        }
    )
    duration = number(fields.get("Duration"), "Duration")
    if duration is not None:
        meta["duration_seconds"] = duration
    if status in _ENDINGS:
        raw_cause = optional(fields, "HangupCause") or optional(fields, "HangupCauseName") or status
        meta.update(
            compact(
                {
                    "hangup_cause": hangup_cause(raw_cause),
                    "provider_hangup_cause": raw_cause,
                    "hangup_cause_code": optional(fields, "HangupCauseCode"),
                    "hangup_by": hangup_by(optional(fields, "HangupSource")),
                }
            )
        )
    child = a_leg != call_uuid
    caller, recipient = party(optional(fields, "From"), region), party(optional(fields, "To"), region)
    attempts: tuple[Attempt, ...] = ()
    if status == "ringing":
        attempts = (Attempt(EventType.RINGING, meta),)
    elif status == "in-progress":
        attempts = (Attempt(EventType.ANSWERED, meta),)
    elif status in _ENDINGS and not child:
        attempts = ending(_ENDINGS[status], meta)
    events = []
    answered_at = optional(fields, "AnswerTime")
    if status in _ENDINGS and not child and answered_at:
        # The hangup callback says when the call was answered: an answer calld has not heard of.
        events.append(
            ProviderEvent(
                provider=PROVIDER,
                call_ref=a_leg,
                attempts=(Attempt(EventType.ANSWERED, {**meta, "implied_by": event}),),
                timestamp=instant(answered_at, "AnswerTime"),
                dedup_key=event_key(PROVIDER, call_uuid, "answered"),
                metadata=meta,
                caller=caller,
                recipient=recipient,
                direction=_direction(fields),
                implied=True,
            )
        )
    events.append(
        ProviderEvent(
            provider=PROVIDER,
            call_ref=a_leg,
            attempts=attempts,
            timestamp=timestamp,
            dedup_key=event_key(PROVIDER, call_uuid, event, status),
            metadata=meta,
            caller=caller,
            recipient=recipient,
            direction=_direction(fields),
        )
    )
    return events


def _direction(fields: Mapping[str, Any]) -> CallDirection:
    return CallDirection.OUTBOUND if fields.get("Direction") == "outbound" else CallDirection.INBOUND


def _recording(fields: Mapping[str, Any], a_leg: str, call_uuid: str, now: datetime) -> ProviderEvent:
    url = required(fields, "RecordUrl")
    recording_id = optional(fields, "RecordingID") or url
    duration = number(fields.get("RecordingDuration"), "RecordingDuration")
    meta = compact(
        {
            "provider": PROVIDER,
            "provider_event": "recording",
            "provider_call_id": a_leg,
            "leg": call_uuid,
            "recording_id": recording_id,
            "recording_url": url,
            "recording_status": "completed",
            "recording_duration_seconds": duration,
        }
    )
    fmt = url.rsplit(".", 1)[-1].lower() if "." in url.rsplit("/", 1)[-1] else None
    return ProviderEvent(
        provider=PROVIDER,
        call_ref=a_leg,
        attempts=(),
        timestamp=now,
        dedup_key=event_key(PROVIDER, "recording", recording_id),
        metadata=meta,
        recording=RecordingReport(RecordingStatus.COMPLETED, url, duration, fmt),
    )

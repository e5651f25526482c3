"""Vonage Voice API event webhooks (signed webhooks).

Signature: ``Authorization: Bearer <JWT>``, HS256 with the account's signature secret, whose
``payload_hash`` claim is the SHA-256 (hex) of the raw body and whose ``iat`` must lie within the
replay window. Legs of one call share ``conversation_uuid``, the call's identity here; a leg's
``uuid`` and ``status`` identify a delivery.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

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
    hangup_by,
    hangup_cause,
    instant,
    number,
    optional,
    party,
    required,
)

PROVIDER = "vonage"

# status -> the outcome of a call that ends so (None: a plain end).
_ENDINGS: Mapping[str, str | None] = {
    "completed": None,
    "busy": "busy",
    "rejected": "busy",
    "timeout": "no_answer",
    "unanswered": "no_answer",
    "cancelled": "cancelled",
    "failed": "failed",
}


def _b64url(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def verify(secret: str, request: SignedRequest, now: datetime, window: timedelta) -> dict[str, Any]:
    """Check the JWT (HS256, ``iat``, ``payload_hash``); return the JSON body."""
    header = request.header("Authorization") or ""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise SignatureRejected("missing Authorization: Bearer <signed JWT>")
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise SignatureRejected("the bearer token is not a JWT")
    try:
        head, claims = json.loads(_b64url(parts[0])), json.loads(_b64url(parts[1]))
        given = _b64url(parts[2])
    except (binascii.Error, ValueError):
        raise SignatureRejected("the bearer token is not a JWT") from None
    if not isinstance(head, dict) or head.get("alg") != "HS256" or not isinstance(claims, dict):
        raise SignatureRejected("the JWT must be signed with HS256")
    expected = hmac.new(secret.encode(), f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(expected, given):
        raise SignatureRejected("JWT signature does not match the signature secret")
    issued = claims.get("iat")
    if isinstance(issued, bool) or not isinstance(issued, int | float):
        raise SignatureRejected("the JWT has no iat")
    check_age(float(issued), now, window, "iat")
    payload_hash = claims.get("payload_hash")
    if not isinstance(payload_hash, str) or not hmac.compare_digest(
        payload_hash.lower(), hashlib.sha256(request.body).hexdigest()
    ):
        raise SignatureRejected("payload_hash does not match the body")
    try:
        body = json.loads(request.body)
    except ValueError:
        raise PayloadProblem("body", "is not valid JSON") from None
    if not isinstance(body, dict):
        raise PayloadProblem("body", "must be a JSON object")
    return body


def parse(body: Mapping[str, Any], region: str | None, now: datetime) -> list[ProviderEvent]:
    """An event webhook's events (a call status, or a recording when it carries ``recording_url``)."""
    conversation = required(body, "conversation_uuid")
    leg = optional(body, "uuid")
    stamp = optional(body, "timestamp")
    timestamp = instant(stamp, "timestamp") if stamp is not None else now
    if optional(body, "recording_url") is not None:
        return [_recording(body, conversation, timestamp)]
    status = required(body, "status").lower()
    meta = compact(
        {
            "provider": PROVIDER,
            "provider_event": status,
            "provider_call_id": conversation,
            "leg": leg,
            "from_raw": optional(body, "from"),
            "to_raw": optional(body, "to"),
            "vonage_direction": optional(body, "direction"),
            "network": optional(body, "network"),
            "detail": optional(body, "detail"),
        }
    )
    duration = number(body.get("duration"), "duration")
    if duration is not None:
        meta["duration_seconds"] = duration
    if status in _ENDINGS:
        meta["hangup_cause"] = hangup_cause(status)
        by = hangup_by(optional(body, "disconnected_by"))
        if by is not None:
            meta["hangup_by"] = by
    attempts: tuple[Attempt, ...] = ()
    if status == "started":
        attempts = (Attempt(EventType.INITIATED, meta),)
    elif status == "ringing":
        attempts = (Attempt(EventType.RINGING, meta),)
    elif status == "answered":
        attempts = (Attempt(EventType.ANSWERED, meta),)
    elif status in _ENDINGS:
        attempts = ending(_ENDINGS[status], meta)
    direction = CallDirection.OUTBOUND if body.get("direction") == "outbound" else CallDirection.INBOUND
    return [
        ProviderEvent(
            provider=PROVIDER,
            call_ref=conversation,
            attempts=attempts,
            timestamp=timestamp,
            dedup_key=event_key(PROVIDER, leg or conversation, status, stamp or ""),
            metadata=meta,
            caller=party(optional(body, "from"), region),
            recipient=party(optional(body, "to"), region),
            direction=direction,
        )
    ]


def _recording(body: Mapping[str, Any], conversation: str, timestamp: datetime) -> ProviderEvent:
    url = required(body, "recording_url")
    recording_id = optional(body, "recording_uuid") or url
    duration = None
    started, ended = optional(body, "start_time"), optional(body, "end_time")
    if started is not None and ended is not None:
        duration = max((instant(ended, "end_time") - instant(started, "start_time")).total_seconds(), 0.0)
    meta = compact(
        {
            "provider": PROVIDER,
            "provider_event": "recording",
            "provider_call_id": conversation,
            "recording_id": recording_id,
            "recording_url": url,
            "recording_status": "completed",
            "recording_duration_seconds": duration,
            "recording_size": optional(body, "size"),
        }
    )
    return ProviderEvent(
        provider=PROVIDER,
        call_ref=conversation,
        attempts=(),
        timestamp=timestamp,
        dedup_key=event_key(PROVIDER, "recording", recording_id),
        metadata=meta,
        # Vonage records MP3 unless the NCCO asks for another format.
        recording=RecordingReport(RecordingStatus.COMPLETED, url, duration, "mp3"),
    )

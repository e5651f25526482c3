"""Telnyx Call Control (Voice API) webhooks.

Signature: ``telnyx-signature-ed25519`` is the base64 Ed25519 signature, by Telnyx's key, of
``"<telnyx-timestamp>|<raw body>"``; the account's public key (base64, from the portal) checks it and
the timestamp must lie within the replay window. Legs of one call share ``call_session_id``, which
is the call's identity here; ``data.id`` identifies an event across redeliveries.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

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
)

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

PROVIDER = "telnyx"
SIGNATURE_HEADER = "telnyx-signature-ed25519"
TIMESTAMP_HEADER = "telnyx-timestamp"

# hangup_cause -> the outcome of a call that ends so (None: a plain end).
_OUTCOMES: Mapping[str, str | None] = {
    "user_busy": "busy",
    "call_rejected": "busy",
    "timeout": "no_answer",
    "no_answer": "no_answer",
    "originator_cancel": "cancelled",
    "not_found": "failed",
}


def public_key(encoded: str) -> Ed25519PublicKey:
    """The account's public key as the portal shows it (base64 of the 32 raw bytes)."""
    # Imported here: cryptography takes 10-30 ms to load, which a calld without Telnyx need not pay.
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        raw = base64.b64decode(encoded, validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("must be the base64 Ed25519 public key shown in the Telnyx portal (32 bytes)") from exc


def verify(key: Ed25519PublicKey, request: SignedRequest, now: datetime, window: timedelta) -> dict[str, Any]:
    """Check the signature and its time; return the JSON body."""
    from cryptography.exceptions import InvalidSignature

    signature = request.header(SIGNATURE_HEADER)
    stamp = request.header(TIMESTAMP_HEADER)
    if not signature or not stamp:
        raise SignatureRejected(f"missing {SIGNATURE_HEADER} or {TIMESTAMP_HEADER} header")
    if not (stamp.isascii() and stamp.isdigit()) or len(stamp) > 12:
        raise SignatureRejected(f"{TIMESTAMP_HEADER} must be Unix seconds")
    check_age(int(stamp), now, window, "timestamp")
    try:
        raw_signature = base64.b64decode(signature, validate=True)
    except binascii.Error:
        raise SignatureRejected(f"{SIGNATURE_HEADER} is not base64") from None
    try:
        key.verify(raw_signature, stamp.encode() + b"|" + request.body)
    except InvalidSignature:
        raise SignatureRejected("signature does not match the timestamp and body") from None
    try:
        body = json.loads(request.body)
    except ValueError:
        raise PayloadProblem("body", "is not valid JSON") from None
    if not isinstance(body, dict):
        raise PayloadProblem("body", "must be a JSON object")
    return body


def parse(body: Mapping[str, Any], region: str | None, now: datetime) -> list[ProviderEvent]:
    """A webhook's events: ``data.event_type`` mapped, ``data.payload`` read."""
    data = body.get("data")
    if not isinstance(data, dict):
        raise PayloadProblem("data", "this field is required (a JSON object)")
    event_id = optional(data, "id")
    kind = optional(data, "event_type")
    if event_id is None or kind is None:
        raise PayloadProblem("data.id" if event_id is None else "data.event_type", "this field is required")
    payload = data.get("payload")
    if not isinstance(payload, dict):
        raise PayloadProblem("data.payload", "this field is required (a JSON object)")
    session = optional(payload, "call_session_id") or optional(payload, "call_leg_id")
    if session is None:
        raise PayloadProblem("data.payload.call_session_id", "this field is required")
    occurred = optional(data, "occurred_at")
    timestamp = instant(occurred, "data.occurred_at") if occurred is not None else now
    parties = (party(optional(payload, "from"), region), party(optional(payload, "to"), region))
    meta = compact(
        {
            "provider": PROVIDER,
            "provider_event": kind,
            "provider_call_id": session,
            "leg": optional(payload, "call_leg_id"),
            "call_control_id": optional(payload, "call_control_id"),
            "from_raw": optional(payload, "from"),
            "to_raw": optional(payload, "to"),
            "telnyx_direction": optional(payload, "direction"),
            "state": optional(payload, "state"),
        }
    )
    attempts: tuple[Attempt, ...] = ()
    recording = None
    extra: list[ProviderEvent] = []
    key = event_key(PROVIDER, event_id)
    if kind == "call.initiated":
        attempts = (Attempt(EventType.INITIATED, meta),)
    elif kind == "call.answered":
        attempts = (Attempt(EventType.ANSWERED, meta),)
    elif kind == "call.hangup":
        meta.update(_hangup(payload))
        attempts = ending(_OUTCOMES.get(str(meta.get("hangup_cause"))), meta)
        if "mos" in meta:
            quality = {**meta, "score": meta["mos"]}
            extra.append(
                _event(
                    session,
                    (Attempt(EventType.QUALITY_CHANGE, quality),),
                    timestamp,
                    key + ":quality",
                    quality,
                    payload,
                    parties,
                )
            )
    elif kind == "call.dtmf.received" and optional(payload, "digit") is not None:
        attempts = (Attempt(EventType.DTMF, {**meta, "digit": optional(payload, "digit")}),)
    elif kind == "call.recording.saved":
        recording, details = _recording(payload)
        meta.update(details)
    elif kind == "call.recording.error":
        recording = RecordingReport(RecordingStatus.FAILED, None)
        meta["recording_status"] = "failed"
    return [_event(session, attempts, timestamp, key, meta, payload, parties, recording), *extra]


def _event(
    session: str,
    attempts: tuple[Attempt, ...],
    timestamp: datetime,
    key: str,
    meta: Mapping[str, Any],
    payload: Mapping[str, Any],
    parties: tuple[str | None, str | None],
    recording: RecordingReport | None = None,
) -> ProviderEvent:
    direction = CallDirection.OUTBOUND if payload.get("direction") == "outgoing" else CallDirection.INBOUND
    return ProviderEvent(
        provider=PROVIDER,
        call_ref=session,
        attempts=attempts,
        timestamp=timestamp,
        dedup_key=key,
        metadata=meta,
        caller=parties[0],
        recipient=parties[1],
        direction=direction,
        recording=recording,
    )


def _hangup(payload: Mapping[str, Any]) -> dict[str, Any]:
    raw_cause = optional(payload, "hangup_cause")
    sip = optional(payload, "sip_hangup_cause")
    details: dict[str, Any] = compact(
        {
            "hangup_cause": hangup_cause(raw_cause),
            "provider_hangup_cause": raw_cause,
            "hangup_by": hangup_by(optional(payload, "hangup_source")),
            "sip_status": int(sip) if sip is not None and sip.isdigit() else None,
        }
    )
    stats = payload.get("call_quality_stats")
    if isinstance(stats, dict):
        details["call_quality_stats"] = stats
        inbound = stats.get("inbound")
        if isinstance(inbound, dict):
            try:
                mos = number(inbound.get("mos"), "mos")
            except PayloadProblem:  # a garbled statistic does not make the hangup less true
                mos = None
            if mos is not None and 0 <= mos <= 5:
                details["mos"] = mos
    return details


def _recording(payload: Mapping[str, Any]) -> tuple[RecordingReport, dict[str, Any]]:
    urls = payload.get("recording_urls")
    if not isinstance(urls, dict) or not urls:
        urls = payload.get("public_recording_urls")
    fmt, url = None, None
    if isinstance(urls, dict):
        for candidate in ("mp3", "wav"):
            if optional(urls, candidate) is not None:
                fmt, url = candidate, optional(urls, candidate)
                break
    duration = None
    started, ended = optional(payload, "recording_started_at"), optional(payload, "recording_ended_at")
    if started is not None and ended is not None:
        span = instant(ended, "recording_ended_at") - instant(started, "recording_started_at")
        duration = max(span.total_seconds(), 0.0)
    details = compact(
        {
            "recording_url": url,
            "recording_status": "completed",
            "recording_duration_seconds": duration,
            "recording_channels": optional(payload, "channels"),
        }
    )
    return RecordingReport(RecordingStatus.COMPLETED, url, duration, fmt), details

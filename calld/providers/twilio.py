"""Twilio Programmable Voice: status callbacks and recording status callbacks.

Signature (``X-Twilio-Signature``): base64 HMAC-SHA1, keyed by the account's auth token, of the URL
Twilio was given followed by every POST parameter's name and value, sorted by name. A JSON body is
signed through its SHA-256 in the URL's ``bodySHA256`` parameter. Twilio signs no time, so a
callback's own ``Timestamp`` is bounded by the replay window and ``CallSid`` + ``SequenceNumber``
identify a delivery. A child leg (``<Dial>``, ``ParentCallSid``) folds into its parent's call.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

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
    hangup_cause,
    instant,
    number,
    optional,
    party,
    required,
)

PROVIDER = "twilio"
SIGNATURE_HEADER = "X-Twilio-Signature"
SETTINGS_HEADER = "X-Twilio-Webhooks-Signature-Settings"
_HASHES = {"HMAC_SHA1": hashlib.sha1, "HMAC_SHA256": hashlib.sha256}
# Twilio ends a call after 4 hours at most; a far larger CallDuration is garbage, not a call.
MAX_DURATION = 7 * 86400

# CallStatus -> the outcome of a call that ends so (None: a plain end).
_ENDINGS: Mapping[str, str | None] = {
    "completed": None,
    "busy": "busy",
    "no-answer": "no_answer",
    "canceled": "cancelled",
    "failed": "failed",
}
_RECORDING_STATUS: Mapping[str, RecordingStatus] = {
    "in-progress": RecordingStatus.RECORDING,
    "completed": RecordingStatus.COMPLETED,
    "absent": RecordingStatus.FAILED,
    "failed": RecordingStatus.FAILED,
}


def _with_port(url: str) -> str:
    parts = urlsplit(url)
    if parts.port is not None:
        return url
    port = 443 if parts.scheme == "https" else 80
    return urlunsplit(parts._replace(netloc=f"{parts.netloc}:{port}"))


def _without_port(url: str) -> str:
    parts = urlsplit(url)
    if parts.port is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit(":", 1)[0]))


def signature(auth_token: str, url: str, params: Mapping[str, str], algorithm: str = "HMAC_SHA1") -> str:
    """Twilio's signature of a request to ``url`` with POST parameters ``params``."""
    text = url + "".join(name + params[name] for name in sorted(params))
    digest = hmac.new(auth_token.encode(), text.encode(), _HASHES[algorithm]).digest()
    return base64.b64encode(digest).decode()


def verify(auth_token: str, request: SignedRequest) -> dict[str, Any]:
    """Check the signature; return the request's parameters (form fields or the JSON object)."""
    given = request.header(SIGNATURE_HEADER)
    if not given:
        raise SignatureRejected(f"missing {SIGNATURE_HEADER} header")
    algorithm = "HMAC_SHA1"
    for part in (request.header(SETTINGS_HEADER) or "").split(","):
        name, _, value = part.partition("=")
        if name.strip() == "algorithm" and value.strip():
            algorithm = value.strip().upper()
    if algorithm not in _HASHES:
        raise SignatureRejected(f"unsupported signature algorithm {algorithm}")
    body_hash = parse_qs(urlsplit(request.url).query).get("bodySHA256")
    params: dict[str, str] = {}
    if body_hash is None:
        try:
            params = form_fields(request.body)
        except PayloadProblem:  # nothing Twilio signed
            raise SignatureRejected("the body is not form data") from None
    elif not hmac.compare_digest(hashlib.sha256(request.body).hexdigest(), body_hash[0]):
        raise SignatureRejected("bodySHA256 does not match the body")
    matched = False
    # Twilio signs the URL with or without its default port, as it was given; both are tried.
    for url in (_without_port(request.url), _with_port(request.url)):
        matched |= hmac.compare_digest(signature(auth_token, url, params, algorithm).encode(), given.encode())
    if not matched:
        raise SignatureRejected("signature does not match the URL and parameters")
    if body_hash is None:
        return dict(params)
    try:
        loaded = json.loads(request.body)
    except ValueError:
        raise PayloadProblem("body", "is not valid JSON") from None
    if not isinstance(loaded, dict):
        raise PayloadProblem("body", "must be a JSON object")
    return loaded


def parse(fields: Mapping[str, Any], region: str | None, now: datetime, window: timedelta) -> list[ProviderEvent]:
    """A status or recording callback's events (``Timestamp`` outside the window: refused)."""
    call_sid = required(fields, "CallSid")
    parent = optional(fields, "ParentCallSid")
    stamp = optional(fields, "Timestamp")
    timestamp = instant(stamp, "Timestamp") if stamp is not None else now
    check_age(timestamp, now, window, "Timestamp")
    if optional(fields, "RecordingSid") is not None:
        return [_recording(fields, call_sid, parent, timestamp)]
    # CallStatus names the state; StatusCallbackEvent, where sent, the progress event (answered = in-progress).
    status = (optional(fields, "CallStatus") or required(fields, "CallStatus")).lower()
    if status not in _ENDINGS and optional(fields, "StatusCallbackEvent") == "answered":
        status = "in-progress"
    sequence = optional(fields, "SequenceNumber")
    meta = compact(
        {
            "provider": PROVIDER,
            "provider_event": optional(fields, "StatusCallbackEvent") or status,
            "provider_call_id": parent or call_sid,
            "leg": call_sid,
            "sequence_number": sequence,
            "from_raw": optional(fields, "From"),
            "to_raw": optional(fields, "To"),
            "twilio_direction": optional(fields, "Direction"),
            "sip_status": _sip_status(fields),
            # Twilio's answering machine detection (human, machine_start, fax...), not a party.
            "machine_detection": optional(fields, "AnsweredBy"),
            "callback_source": optional(fields, "CallbackSource"),
        }
    )
    duration = number(fields.get("CallDuration"), "CallDuration")
    if duration is not None and not 0 <= duration <= MAX_DURATION:
        raise PayloadProblem("CallDuration", f"must be 0 to {MAX_DURATION} seconds")
    if duration is not None:
        meta["duration_seconds"] = duration
    if status in _ENDINGS:
        meta["hangup_cause"] = hangup_cause(status)
    key = event_key(PROVIDER, call_sid, sequence if sequence is not None else stamp or "", status)
    common: dict[str, Any] = {
        "provider": PROVIDER,
        "call_ref": parent or call_sid,
        "timestamp": timestamp,
        "caller": party(optional(fields, "From"), region),
        "recipient": party(optional(fields, "To"), region),
        "direction": _direction(optional(fields, "Direction"), parent),
    }
    if parent is not None:
        return [ProviderEvent(attempts=_child_attempts(status, meta), dedup_key=key, metadata=meta, **common)]
    events = []
    if status == "completed" and duration:
        # A call completed after this long was connected that long before (Twilio's own log says
        # answered); an answer calld already holds (a <Dial> leg's) takes precedence.
        events.append(
            ProviderEvent(
                attempts=(Attempt(EventType.ANSWERED, {**meta, "implied_by": "completed"}),),
                dedup_key=key + ":answered",
                metadata=meta,
                implied=True,
                **{**common, "timestamp": timestamp - timedelta(seconds=duration)},
            )
        )
    events.append(ProviderEvent(attempts=_attempts(status, meta), dedup_key=key, metadata=meta, **common))
    return events


def _attempts(status: str, meta: Mapping[str, Any]) -> tuple[Attempt, ...]:
    if status in ("queued", "initiated"):
        return (Attempt(EventType.INITIATED, meta),)
    if status == "ringing":
        return (Attempt(EventType.RINGING, meta),)
    if status in ("in-progress", "answered"):
        return (Attempt(EventType.ANSWERED, meta),)
    if status in _ENDINGS:
        return ending(_ENDINGS[status], meta)
    return ()  # an unknown status: stored as the provider's event


def _child_attempts(status: str, meta: Mapping[str, Any]) -> tuple[Attempt, ...]:
    """A <Dial> leg: its ringing and answer are the call's; its end is not (the parent may go on to
    another number or to voicemail), it is stored as the leg's event and the parent's end ends the call."""
    if status == "ringing":
        return (Attempt(EventType.RINGING, meta),)
    if status in ("in-progress", "answered"):
        return (Attempt(EventType.ANSWERED, meta),)
    return ()


def _recording(fields: Mapping[str, Any], call_sid: str, parent: str | None, timestamp: datetime) -> ProviderEvent:
    recording_sid = required(fields, "RecordingSid")
    status = (optional(fields, "RecordingStatus") or "completed").lower()
    url = optional(fields, "RecordingUrl")
    duration = number(fields.get("RecordingDuration"), "RecordingDuration")
    meta = compact(
        {
            "provider": PROVIDER,
            "provider_event": f"recording.{status}",
            "provider_call_id": parent or call_sid,
            "leg": call_sid,
            "recording_id": recording_sid,
            "recording_url": url,
            "recording_status": status,
            "recording_duration_seconds": duration,
            "recording_source": optional(fields, "RecordingSource"),
        }
    )
    report = RecordingReport(
        status=_RECORDING_STATUS.get(status, RecordingStatus.PROCESSING),
        url=url,
        duration_seconds=duration,
        # Twilio serves the file as WAV at RecordingUrl (MP3 with ".mp3" appended).
        format="wav" if url else None,
    )
    return ProviderEvent(
        provider=PROVIDER,
        call_ref=parent or call_sid,
        attempts=(),
        timestamp=timestamp,
        dedup_key=event_key(PROVIDER, "recording", recording_sid, status),
        metadata=meta,
        recording=report,
    )


def _direction(raw: str | None, parent: str | None) -> CallDirection:
    # A <Dial> leg ("outbound-dial") is most often a forwarded inbound call; outbound-api is calld's own.
    if raw is not None and raw.startswith("outbound") and parent is None:
        return CallDirection.OUTBOUND
    return CallDirection.INBOUND


def _sip_status(fields: Mapping[str, Any]) -> int | None:
    raw = optional(fields, "SipResponseCode")
    return int(raw) if raw is not None and raw.isdigit() else None

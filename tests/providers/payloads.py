"""Realistic webhook sequences of each provider, shaped as their published documentation shows them
(field names, value formats, event order). Times are given relative to a start instant."""

from __future__ import annotations

from datetime import datetime, timedelta
from email.utils import format_datetime
from typing import Any

ACCOUNT = "AC0123456789abcdef0123456789abcdef"


def rfc2822(at: datetime) -> str:
    """Twilio's Timestamp form: ``Tue, 24 Nov 2026 12:00:00 +0000``."""
    return format_datetime(at).replace("-0000", "+0000")


def twilio_call(
    call_sid: str,
    status: str,
    at: datetime,
    sequence: int,
    *,
    direction: str = "outbound-api",
    parent: str | None = None,
    duration: int | None = None,
    caller: str = "+14155550100",
    callee: str = "+14155550199",
) -> dict[str, str]:
    """One Twilio status callback (call progress event)."""
    params = {
        "AccountSid": ACCOUNT,
        "ApiVersion": "2010-04-01",
        "CallSid": call_sid,
        "CallStatus": status,
        "Called": callee,
        "Caller": caller,
        "From": caller,
        "To": callee,
        "Direction": direction,
        "CallbackSource": "call-progress-events",
        "SequenceNumber": str(sequence),
        "Timestamp": rfc2822(at),
        "ToCountry": "US",
        "FromCountry": "US",
    }
    if parent is not None:
        params["ParentCallSid"] = parent
    if duration is not None:
        params["CallDuration"] = str(duration)
        params["Duration"] = str((duration + 59) // 60)
    return params


def twilio_recording(call_sid: str, recording_sid: str, status: str, at: datetime, duration: int) -> dict[str, str]:
    """One Twilio recording status callback."""
    return {
        "AccountSid": ACCOUNT,
        "CallSid": call_sid,
        "RecordingSid": recording_sid,
        "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Recordings/{recording_sid}",
        "RecordingStatus": status,
        "RecordingDuration": str(duration),
        "RecordingChannels": "1",
        "RecordingStartTime": rfc2822(at - timedelta(seconds=duration)),
        "RecordingSource": "DialVerb",
        "RecordingTrack": "both",
        "Timestamp": rfc2822(at),
    }


def telnyx(event_type: str, event_id: str, at: datetime, session: str, **payload: Any) -> dict[str, Any]:
    """One Telnyx Call Control webhook."""
    body: dict[str, Any] = {
        "call_control_id": "v3:MdI91X4lWFEs7IgbBEOT9M4AigoY08M0WWZFISt1Yw2axZ_IiE4pqg",
        "connection_id": "1494404757140276705",
        "call_leg_id": session,
        "call_session_id": session,
        "client_state": None,
        "from": "+13129457420",
        "to": "+35319605860",
        **payload,
    }
    return {
        "data": {
            "record_type": "event",
            "event_type": event_type,
            "id": event_id,
            "occurred_at": at.isoformat().replace("+00:00", "Z"),
            "payload": body,
        },
        "meta": {"attempt": 1, "delivered_to": "https://calld.example.com/api/webhooks/providers/telnyx/"},
    }


def vonage(status: str, at: datetime, leg: str, conversation: str, **extra: Any) -> dict[str, Any]:
    """One Vonage Voice event."""
    return {
        "from": "447911123456",
        "to": "14155550199",
        "uuid": leg,
        "conversation_uuid": conversation,
        "status": status,
        "direction": "outbound",
        "timestamp": at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        **extra,
    }


def plivo_time(at: datetime) -> str:
    """Plivo's time form: ``2026-11-24 12:00:00`` (UTC)."""
    return at.strftime("%Y-%m-%d %H:%M:%S")


def plivo(event: str, status: str, call_uuid: str, **extra: str) -> dict[str, str]:
    """One Plivo callback (answer_url: StartApp, ring_url: Ring, hangup_url: Hangup)."""
    return {
        "CallUUID": call_uuid,
        "ALegUUID": call_uuid,
        "ALegRequestUUID": "d4f2c3a1-0b9e-4d7c-8a6f-5e4d3c2b1a09",
        "CallStatus": status,
        "Direction": "inbound",
        "Event": event,
        "From": "14155550100",
        "To": "14155550199",
        "CallerName": "+14155550100",
        "SessionStart": "2026-11-24 12:00:00.000000",
        **extra,
    }

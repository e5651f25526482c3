"""JSON shapes of calls, their events and recordings, as the API returns them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from calld.storage.models import CallEvent, CallLog, CallRecording

# Each shape is read from a model object or from a Core row with the same attribute names
# (``calld.storage.call_queries.CALL_COLUMNS`` and friends).
CallLike = CallLog | sa.Row[Any]
EventLike = CallEvent | sa.Row[Any]
RecordingLike = CallRecording | sa.Row[Any]


def iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def call_log_json(call: CallLike) -> dict[str, Any]:
    return {
        "id": str(call.id),
        "direction": call.direction.value,
        "call_type": call.call_type.value,
        "status": call.status.value,
        "caller_number": call.caller_number,
        "recipient_number": call.recipient_number,
        "sip_call_id": call.sip_call_id,
        "client": str(call.client_id) if call.client_id else None,
        "sip_configuration": str(call.sip_configuration_id) if call.sip_configuration_id else None,
        "started_at": iso(call.started_at),
        "ringing_at": iso(call.ringing_at),
        "answered_at": iso(call.answered_at),
        "ended_at": iso(call.ended_at),
        "duration_seconds": call.duration_seconds,
        "ring_seconds": call.ring_seconds,
        "hold_seconds": call.hold_seconds,
        "on_hold_since": iso(call.held_since),
        "is_recording": call.recording,
        "transfer_target": call.transfer_target,
        "call_quality_score": call.call_quality_score,
        "notes": call.notes,
        "switch": call.switch_name,
        "created_at": iso(call.created_at),
        "updated_at": iso(call.updated_at),
    }


def call_event_json(event: EventLike) -> dict[str, Any]:
    return {
        "id": event.id,
        "call": str(event.call_id),
        "event_type": event.event_type.value,
        "timestamp": iso(event.timestamp),
        "metadata": event.meta,
        "source": event.source.value,
    }


def recording_json(rec: RecordingLike) -> dict[str, Any]:
    return {
        "id": str(rec.id),
        "call": str(rec.call_id),
        "status": rec.status.value,
        "local_path": rec.local_path,
        "external_url": rec.external_url,
        "file_size": rec.file_size,
        "duration_seconds": rec.duration_seconds,
        "format": rec.format,
        "transcript": rec.transcript,
        "transcript_confidence": rec.transcript_confidence,
        "created_at": iso(rec.created_at),
        "updated_at": iso(rec.updated_at),
    }


def call_detail_json(
    call: CallLike, events: Iterable[EventLike], recordings: Iterable[RecordingLike]
) -> dict[str, Any]:
    """A call with its events (oldest first) and recordings; ``recording`` is the newest one."""
    recs = [recording_json(r) for r in recordings]
    return {
        **call_log_json(call),
        "events": [call_event_json(e) for e in events],
        "recordings": recs,
        "recording": recs[-1] if recs else None,
    }

"""JSON shapes of calls, their events and recordings, as the API returns them."""

from __future__ import annotations

from collections.abc import Callable, Iterable
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


def _text(value: object) -> str | None:
    return str(value) if value else None


def _reader(obj: Any) -> Callable[[str], Any]:
    """Read fields by name: from a Core row through its mapping (a Row's attribute access costs
    ~0.24 µs a field, a list page reads 1,200), from a model object as attributes."""
    if isinstance(obj, sa.Row):
        return obj._mapping.__getitem__
    getter: Callable[[str], Any] = obj.__getattribute__
    return getter


def call_log_json(call: CallLike) -> dict[str, Any]:
    c = _reader(call)
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
        "notes": c("notes"),
        "switch": c("switch_name"),
        "created_at": iso(c("created_at")),
        "updated_at": iso(c("updated_at")),
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
        "started_at": iso(r("started_at")),
        "stopped_at": iso(r("stopped_at")),
        "created_at": iso(r("created_at")),
        "updated_at": iso(r("updated_at")),
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

"""The summary of a call that is over (``call.completed``): the whole story in one message, so a CRM
gets timings, why it ended, who answered, who took part, how it sounded and its recordings in one
delivery instead of piecing them together from the call's events."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from calld.domain.vocabulary import ENDING_EVENTS
from calld.service.views import call_log_json, participants_json, recording_json
from calld.storage import call_queries as q
from calld.storage.models import CallEvent, CallLog


def completes(event: CallEvent) -> bool:
    """Whether ``event`` ends its call (and so calls for a ``call.completed`` summary)."""
    return event.event_type in ENDING_EVENTS


def completed_summary(session: Session, call: CallLog, ending: CallEvent) -> dict[str, Any]:
    """The call as it ended (``ending``: its ended or failed event), with its timings split out, its
    parties (with what each leg received) and its recordings."""
    participants = q.participants_of(session.connection(), call.id)
    recordings = q.recordings_in(session, call.id)
    log = call_log_json(call)
    connected = call.duration_seconds or 0.0
    hold = call.hold_seconds or 0.0
    total = (call.ended_at - call.started_at).total_seconds() if call.ended_at is not None else None
    return {
        "call": log,
        "timings": {
            "total_seconds": total,
            "ring_seconds": call.ring_seconds or 0.0,
            "connected_seconds": connected,  # from the answer to the end
            "hold_seconds": hold,
            "talk_seconds": round(max(connected - hold, 0.0), 3),  # connected and not on hold
        },
        "ended": {
            "status": log["status"],
            "hangup_cause": log["hangup_cause"],
            "hangup_cause_q850": log["hangup_cause_q850"],
            "sip_status": log["sip_status"],
            "hangup_by": log["hangup_by"],
            "missed_reason": log["missed_reason"],
        },
        "answered_by": log["answered_by"],
        "participants": participants_json(call, participants, ending.meta),
        "recordings": [recording_json(r) for r in recordings],
    }

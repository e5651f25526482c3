"""Deliveries from outside calld: call events a SIP provider reports and results a recording system reports.

SIP events go through the same machinery as every other source: applied with ``CallStore`` (state
machine, derived timestamps, de-duplication by the delivery's identity); out-of-order deliveries are
folded in by time. Recording results update the call's recording rows in one transaction. The
transport verifies each delivery's signature and parses it before it gets here.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from calld.domain.call import NewCall
from calld.domain.errors import AlreadyExists, Conflict, InvalidValues, NotFound
from calld.domain.vocabulary import CallDirection, CallStatus, CallType, EventSource, EventType, RecordingStatus
from calld.service.views import recording_json
from calld.storage.calls import CallStore
from calld.storage.database import Database
from calld.storage.models import CallEvent, CallLog, CallRecording


class SipEventType(StrEnum):
    """Event types a SIP provider's webhook may carry."""

    CALL_INITIATED = "call_initiated"
    CALL_RINGING = "call_ringing"
    CALL_ANSWERED = "call_answered"
    CALL_HELD = "call_held"
    CALL_RESUMED = "call_resumed"
    CALL_TRANSFERRED = "call_transferred"
    CALL_RECORDING_STARTED = "call_recording_started"
    CALL_RECORDING_STOPPED = "call_recording_stopped"
    CALL_DTMF = "call_dtmf"
    CALL_QUALITY = "call_quality"
    CALL_ENDED = "call_ended"
    CALL_FAILED = "call_failed"
    CALL_MISSED = "call_missed"
    CALL_BUSY = "call_busy"
    CALL_NO_ANSWER = "call_no_answer"
    CALL_CANCELLED = "call_cancelled"


# Provider event -> (domain event, the ``outcome`` an ``ended`` event carries, if any).
SIP_EVENT_MAP: Mapping[SipEventType, tuple[EventType, CallStatus | None]] = {
    SipEventType.CALL_INITIATED: (EventType.INITIATED, None),
    SipEventType.CALL_RINGING: (EventType.RINGING, None),
    SipEventType.CALL_ANSWERED: (EventType.ANSWERED, None),
    SipEventType.CALL_HELD: (EventType.HOLD, None),
    SipEventType.CALL_RESUMED: (EventType.UNHOLD, None),
    SipEventType.CALL_TRANSFERRED: (EventType.TRANSFER_INITIATED, None),
    SipEventType.CALL_RECORDING_STARTED: (EventType.RECORDING_STARTED, None),
    SipEventType.CALL_RECORDING_STOPPED: (EventType.RECORDING_STOPPED, None),
    SipEventType.CALL_DTMF: (EventType.DTMF, None),
    SipEventType.CALL_QUALITY: (EventType.QUALITY_CHANGE, None),
    SipEventType.CALL_ENDED: (EventType.ENDED, None),
    SipEventType.CALL_FAILED: (EventType.FAILED, None),
    SipEventType.CALL_MISSED: (EventType.ENDED, CallStatus.MISSED),
    SipEventType.CALL_BUSY: (EventType.ENDED, CallStatus.BUSY),
    SipEventType.CALL_NO_ANSWER: (EventType.ENDED, CallStatus.NO_ANSWER),
    SipEventType.CALL_CANCELLED: (EventType.ENDED, CallStatus.CANCELLED),
}


class RecordingFormat(StrEnum):
    WAV = "wav"
    MP3 = "mp3"
    OGG = "ogg"
    OPUS = "opus"
    FLAC = "flac"
    M4A = "m4a"


# A completed recording's audio exists; going back to these would claim it does not.
_BEFORE_COMPLETED = frozenset({RecordingStatus.PENDING, RecordingStatus.RECORDING})


@dataclass(frozen=True, slots=True)
class SipDelivery:
    """A validated SIP provider webhook."""

    event: SipEventType
    sip_call_id: str
    caller_number: str | None
    recipient_number: str | None
    direction: CallDirection
    call_type: CallType
    timestamp: datetime
    delivery_id: str | None
    metadata: dict[str, Any]

    @property
    def dedup_key(self) -> str:
        """The delivery's identity: the provider's delivery id, else a digest of what it says."""
        if self.delivery_id is not None:
            return f"sip:{self.delivery_id}"
        # The instant is normalised to UTC ISO with microseconds, so "…Z", "+01:00" and epoch forms
        # of it agree; the payload is part of what is said (four DTMF digits in one second are four).
        what = json.dumps(
            [
                self.sip_call_id,
                self.event.value,
                self.timestamp.isoformat(timespec="microseconds"),
                self.metadata,
            ],
            sort_keys=True,
            separators=(",", ":"),
        )
        return "sip:" + hashlib.sha256(what.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class RecordingDelivery:
    """A validated recording-system webhook; ``changes`` holds the recording columns it sets."""

    call_id: uuid.UUID
    status: RecordingStatus
    recording_id: uuid.UUID | None
    changes: dict[str, Any]


def check_recording_status(current: RecordingStatus, requested: RecordingStatus) -> None:
    """Refuse a status change that would resurrect a deleted recording or un-complete a finished one."""
    reason = None
    if current is RecordingStatus.DELETED and requested is not RecordingStatus.DELETED:
        reason = "the recording is deleted and cannot come back"
    elif current is RecordingStatus.COMPLETED and requested in _BEFORE_COMPLETED:
        reason = "the recording is completed and cannot go back to " + requested.value
    if reason is not None:
        raise Conflict(
            "illegal_recording_status_change",
            "illegal recording status change",
            {"status": reason},
            current_status=current.value,
            requested=requested.value,
        )


class ProviderDeliveries:
    """Stores what SIP providers and recording systems deliver."""

    def __init__(self, db: Database, calls: CallStore) -> None:
        self.db = db
        self.calls = calls

    async def store_sip(self, delivery: SipDelivery) -> dict[str, Any]:
        """Apply one provider event: ``{"status": "stored"|"duplicate", "call": id, "event"?: id}``."""
        try:
            return await self._store_sip(delivery)
        except AlreadyExists:
            # A concurrent delivery won a race on a unique column (dedup_key, or sip_call_id when both
            # created the call). Its transaction has committed, so a second pass sees it: a duplicate is
            # answered as such, and a different event for the same new call is applied to that call.
            return await self._store_sip(delivery)

    async def _store_sip(self, delivery: SipDelivery) -> dict[str, Any]:
        key = delivery.dedup_key
        event_type, outcome = SIP_EVENT_MAP[delivery.event]
        metadata = dict(delivery.metadata)
        if outcome is not None:
            metadata["outcome"] = outcome.value
        async with self.db.write() as session:
            # Lock the call first: a concurrent redelivery then waits here and finds this one's event.
            call = await self.calls.find_by(session, sip_call_id=delivery.sip_call_id)
            duplicate_of = await _call_of_delivery(session, key)
            if duplicate_of is not None:
                return {"status": "duplicate", "call": str(duplicate_of)}
            if call is None:
                call = await self.calls.create(
                    session,
                    _new_call(delivery),
                    EventSource.WEBHOOK,
                    started_at=delivery.timestamp,
                    dedup_key=key if event_type is EventType.INITIATED else None,
                )
                if event_type is EventType.INITIATED:
                    event_id = await _initiated_event_id(session, call.id)
                    return {"status": "stored", "call": str(call.id), "event": event_id}
            # Providers do not guarantee order: an event that happened before the call's latest one (or
            # the reported start of a call first heard of through a later event) is folded in by time.
            late = event_type is EventType.INITIATED or delivery.timestamp < call.last_event_at
            store = self.calls.apply_in_time if late else self.calls.apply
            event = await store(
                session,
                call,
                event_type,
                EventSource.WEBHOOK,
                metadata=metadata,
                timestamp=delivery.timestamp,
                dedup_key=key,
            )
            return {"status": "stored", "call": str(call.id), "event": event.id}

    async def store_recording(self, delivery: RecordingDelivery) -> dict[str, Any]:
        """Update (or create) the recording a recording system reports; the recording as stored."""
        async with self.db.write() as session:
            # Locking the call serialises deliveries for it, so two cannot both create "its" recording.
            call = await self.calls.get_for_update(session, delivery.call_id)
            if call is None:
                raise NotFound("call log", "call_id", delivery.call_id)
            recording = await _recording_for(session, call, delivery)
            check_recording_status(RecordingStatus(recording.status), delivery.status)
            recording.status = delivery.status
            for name, value in delivery.changes.items():
                setattr(recording, name, value)
            await session.flush()
            await session.refresh(recording)
            return recording_json(recording)


def _new_call(delivery: SipDelivery) -> NewCall:
    caller, recipient = delivery.caller_number, delivery.recipient_number
    if caller is None or recipient is None:
        missing = {"caller_number": caller, "recipient_number": recipient}
        required = "this field is required when the call is new"
        raise InvalidValues({name: required for name, value in missing.items() if value is None})
    return NewCall(
        direction=delivery.direction,
        caller_number=caller,
        recipient_number=recipient,
        call_type=delivery.call_type,
        sip_call_id=delivery.sip_call_id,
        # The initiated event of a call first heard of through a later event was implied, not reported.
        metadata={} if delivery.event is SipEventType.CALL_INITIATED else {"implied_by": delivery.event.value},
    )


async def _call_of_delivery(session: AsyncSession, dedup_key: str) -> uuid.UUID | None:
    """The call whose stored event came from this delivery, if one did."""
    stmt = sa.select(CallEvent.call_id).where(CallEvent.dedup_key == dedup_key)
    return (await session.execute(stmt)).scalar_one_or_none()


async def _initiated_event_id(session: AsyncSession, call_id: uuid.UUID) -> int:
    stmt = sa.select(CallEvent.id).where(CallEvent.call_id == call_id, CallEvent.event_type == EventType.INITIATED)
    return int((await session.execute(stmt)).scalar_one())


async def _recording_for(session: AsyncSession, call: CallLog, delivery: RecordingDelivery) -> CallRecording:
    """The recording named by the delivery, else the call's newest one, else a new one."""
    stmt = sa.select(CallRecording).where(CallRecording.call_id == call.id).with_for_update()
    if delivery.recording_id is not None:
        found = (await session.execute(stmt.where(CallRecording.id == delivery.recording_id))).scalar_one_or_none()
        if found is None:
            raise NotFound("recording of this call", "recording_id", delivery.recording_id)
        return found
    newest = stmt.order_by(CallRecording.created_at.desc(), CallRecording.id.desc()).limit(1)
    found = (await session.execute(newest)).scalar_one_or_none()
    if found is not None:
        return found
    recording = CallRecording(id=uuid.uuid4(), call_id=call.id, status=delivery.status)
    session.add(recording)
    return recording

"""Inbound webhooks: call events from a third-party SIP provider and results from a recording system.

Both go through the same machinery as every other source: SIP events are applied with ``CallStore``
(state machine, derived timestamps, de-duplication) and recordings are updated inside one write
transaction. Every delivery passes ``verify_delivery`` first: signed by its source, from an allowed address.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
import sqlalchemy.exc
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from calld.domain.call import validate_quality_score
from calld.domain.errors import InvalidValue
from calld.domain.vocabulary import CallDirection, CallStatus, CallType, EventSource, EventType, RecordingStatus
from calld.http.context import Services, services
from calld.http.errors import ApiError, not_found, read_json_object
from calld.http.serialize import recording_json
from calld.http.validation import Fields, framing_problem, is_http_url, json_problem
from calld.http.webhook_auth import verify_delivery
from calld.storage.calls import NewCall, presented
from calld.storage.models import CallEvent, CallLog, CallRecording

# Providers' clocks drift a little; anything further ahead than this is a bad or forged timestamp.
MAX_CLOCK_SKEW = timedelta(minutes=5)
# The dedup_key column holds 255 characters, "sip:" included.
MAX_DELIVERY_ID = 200
# The largest file size the recordings' BIGINT column can store.
MAX_FILE_SIZE = 2**63 - 1


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


W = SipEventType

# Provider event -> (domain event, the ``outcome`` an ``ended`` event carries, if any).
SIP_EVENT_MAP: Mapping[SipEventType, tuple[EventType, CallStatus | None]] = {
    W.CALL_INITIATED: (EventType.INITIATED, None),
    W.CALL_RINGING: (EventType.RINGING, None),
    W.CALL_ANSWERED: (EventType.ANSWERED, None),
    W.CALL_HELD: (EventType.HOLD, None),
    W.CALL_RESUMED: (EventType.UNHOLD, None),
    W.CALL_TRANSFERRED: (EventType.TRANSFER_INITIATED, None),
    W.CALL_RECORDING_STARTED: (EventType.RECORDING_STARTED, None),
    W.CALL_RECORDING_STOPPED: (EventType.RECORDING_STOPPED, None),
    W.CALL_DTMF: (EventType.DTMF, None),
    W.CALL_QUALITY: (EventType.QUALITY_CHANGE, None),
    W.CALL_ENDED: (EventType.ENDED, None),
    W.CALL_FAILED: (EventType.FAILED, None),
    W.CALL_MISSED: (EventType.ENDED, CallStatus.MISSED),
    W.CALL_BUSY: (EventType.ENDED, CallStatus.BUSY),
    W.CALL_NO_ANSWER: (EventType.ENDED, CallStatus.NO_ANSWER),
    W.CALL_CANCELLED: (EventType.ENDED, CallStatus.CANCELLED),
}

SIP_FIELDS = (
    "event_type",
    "sip_call_id",
    "caller_number",
    "recipient_number",
    "direction",
    "call_type",
    "timestamp",
    "delivery_id",
    "metadata",
)


class RecordingFormat(StrEnum):
    WAV = "wav"
    MP3 = "mp3"
    OGG = "ogg"
    OPUS = "opus"
    FLAC = "flac"
    M4A = "m4a"


RECORDING_FIELDS = (
    "call_id",
    "status",
    "recording_id",
    "file_url",
    "local_path",
    "file_size",
    "duration",
    "format",
    "transcript",
    "transcript_confidence",
)

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


def parse_sip_delivery(body: Mapping[str, Any], region: str | None, now: datetime) -> SipDelivery:
    """Validate a SIP webhook body (one 422 naming every bad field)."""
    f = Fields(body, allowed=SIP_FIELDS)
    event = f.choice("event_type", SipEventType, required=True)
    sip_call_id = f.string("sip_call_id", required=True)
    caller = f.presented("caller_number")
    recipient = f.presented("recipient_number")
    direction = f.choice("direction", CallDirection, default=CallDirection.INBOUND)
    call_type = f.choice("call_type", CallType, default=CallType.VOICE)
    timestamp = f.timestamp("timestamp", required=True)
    delivery_id = f.string("delivery_id", max_length=MAX_DELIVERY_ID)
    metadata = f.mapping("metadata", default={})
    if timestamp is not None and timestamp > now + MAX_CLOCK_SKEW:
        f.fail("timestamp", f"is more than {MAX_CLOCK_SKEW.seconds // 60} minutes in the future")
    if event is not None and metadata is not None:
        _check_metadata(f, event, metadata)
    f.done()
    return SipDelivery(
        event, sip_call_id, caller, recipient, direction, call_type, timestamp, delivery_id, dict(metadata)
    )


def _check_metadata(f: Fields, event: SipEventType, metadata: Mapping[str, Any]) -> None:
    problem = json_problem(metadata)
    if problem is not None:
        f.fail("metadata", problem)
    if event is W.CALL_QUALITY:
        if "score" not in metadata:
            f.fail("metadata.score", "this field is required for call_quality")
        else:
            try:
                validate_quality_score(metadata["score"], "metadata.score")
            except InvalidValue as exc:
                f.fail(exc.field, exc.message)
    if event is W.CALL_TRANSFERRED and "transfer_to" in metadata:
        target = metadata["transfer_to"]
        if not isinstance(target, str) or not target.strip():
            f.fail("metadata.transfer_to", "must be a non-empty string")


async def sip_webhook(request: web.Request) -> web.Response:
    """``POST /api/webhooks/sip/``: apply one call event reported by a SIP provider."""
    await verify_delivery(request, "sip")
    svc = services(request)
    body = await read_json_object(request)
    delivery = parse_sip_delivery(body, svc.config.calls.default_region, svc.calls.clock())
    try:
        return await _store_sip(svc, delivery)
    except sqlalchemy.exc.IntegrityError:
        # A concurrent delivery won a race on a unique column (dedup_key, or sip_call_id when both
        # created the call). Its transaction has committed, so a second pass sees it: a duplicate is
        # answered as such, and a different event for the same new call is applied to that call.
        return await _store_sip(svc, delivery)


async def _store_sip(svc: Services, delivery: SipDelivery) -> web.Response:
    key = delivery.dedup_key
    event_type, outcome = SIP_EVENT_MAP[delivery.event]
    metadata = dict(delivery.metadata)
    if outcome is not None:
        metadata["outcome"] = outcome.value
    async with svc.db.write() as session:
        # Lock the call first: a concurrent redelivery then waits here and finds this one's event.
        call = await svc.calls.find_by(session, sip_call_id=delivery.sip_call_id)
        duplicate_of = await _call_of_delivery(session, key)
        if duplicate_of is not None:
            return web.json_response({"status": "duplicate", "call": str(duplicate_of)})
        if call is None:
            call = await svc.calls.create(
                session,
                presented(_new_call(delivery), svc.config.calls.numbers),
                EventSource.WEBHOOK,
                started_at=delivery.timestamp,
                dedup_key=key if event_type is EventType.INITIATED else None,
            )
            if event_type is EventType.INITIATED:
                event_id = await _initiated_event_id(session, call.id)
                return web.json_response({"status": "stored", "call": str(call.id), "event": event_id})
        # Providers do not guarantee order: an event that happened before the call's latest one (or
        # the reported start of a call first heard of through a later event) is folded in by time.
        late = event_type is EventType.INITIATED or delivery.timestamp < call.last_event_at
        store = svc.calls.apply_in_time if late else svc.calls.apply
        event = await store(
            session,
            call,
            event_type,
            EventSource.WEBHOOK,
            metadata=metadata,
            timestamp=delivery.timestamp,
            dedup_key=key,
        )
        return web.json_response({"status": "stored", "call": str(call.id), "event": event.id})


def _new_call(delivery: SipDelivery) -> NewCall:
    caller, recipient = delivery.caller_number, delivery.recipient_number
    if caller is None or recipient is None:
        missing = {"caller_number": caller, "recipient_number": recipient}
        required = "this field is required when the call is new"
        raise ApiError(422, "validation failed", {name: required for name, value in missing.items() if value is None})
    return NewCall(
        direction=delivery.direction,
        caller_number=caller,
        recipient_number=recipient,
        call_type=delivery.call_type,
        sip_call_id=delivery.sip_call_id,
        # The initiated event of a call first heard of through a later event was implied, not reported.
        metadata={} if delivery.event is W.CALL_INITIATED else {"implied_by": delivery.event.value},
    )


async def _call_of_delivery(session: AsyncSession, dedup_key: str) -> uuid.UUID | None:
    """The call whose stored event came from this delivery, if one did."""
    stmt = sa.select(CallEvent.call_id).where(CallEvent.dedup_key == dedup_key)
    return (await session.execute(stmt)).scalar_one_or_none()


async def _initiated_event_id(session: AsyncSession, call_id: uuid.UUID) -> int:
    stmt = sa.select(CallEvent.id).where(CallEvent.call_id == call_id, CallEvent.event_type == EventType.INITIATED)
    return int((await session.execute(stmt)).scalar_one())


@dataclass(frozen=True, slots=True)
class RecordingDelivery:
    """A validated recording-system webhook; ``changes`` holds the recording columns it sets."""

    call_id: uuid.UUID
    status: RecordingStatus
    recording_id: uuid.UUID | None
    changes: dict[str, Any]


def parse_recording_delivery(body: Mapping[str, Any]) -> RecordingDelivery:
    """Validate a recording webhook body (one 422 naming every bad field)."""
    f = Fields(body, allowed=RECORDING_FIELDS)
    call_id = f.uuid("call_id", required=True)
    status = f.choice("status", RecordingStatus, required=True)
    recording_id = f.uuid("recording_id")
    file_url = f.string("file_url", max_length=2048)
    if file_url is not None and not is_http_url(file_url):
        f.fail("file_url", "must be an http or https URL")
    fmt = f.choice("format", RecordingFormat)
    local_path = f.string("local_path", max_length=1024)
    problem = framing_problem(local_path) if local_path is not None else None
    if problem is not None:  # stop_recording hands it to the switch (uuid_record ... stop <path>)
        f.fail("local_path", problem)
    candidates = {
        "external_url": file_url,
        "local_path": local_path,
        "file_size": f.integer("file_size", minimum=0, maximum=MAX_FILE_SIZE),
        "duration_seconds": f.number("duration", minimum=0),
        "format": fmt.value if fmt is not None else None,
        "transcript": f.string("transcript", max_length=1_000_000, blank=True),
        "transcript_confidence": f.number("transcript_confidence", minimum=0, maximum=1),
    }
    f.done()
    changes = {name: value for name, value in candidates.items() if value is not None}
    return RecordingDelivery(call_id, status, recording_id, changes)


def check_recording_status(current: RecordingStatus, requested: RecordingStatus) -> None:
    """Refuse a status change that would resurrect a deleted recording or un-complete a finished one."""
    reason = None
    if current is RecordingStatus.DELETED and requested is not RecordingStatus.DELETED:
        reason = "the recording is deleted and cannot come back"
    elif current is RecordingStatus.COMPLETED and requested in _BEFORE_COMPLETED:
        reason = "the recording is completed and cannot go back to " + requested.value
    if reason is not None:
        raise ApiError(
            409,
            "illegal recording status change",
            {"status": reason},
            current_status=current.value,
            requested=requested.value,
        )


async def recording_webhook(request: web.Request) -> web.Response:
    """``POST /api/webhooks/recording/``: a recording system reports a recording's state."""
    await verify_delivery(request, "recording")
    svc = services(request)
    delivery = parse_recording_delivery(await read_json_object(request))
    async with svc.db.write() as session:
        # Locking the call serialises deliveries for it, so two cannot both create "its" recording.
        call = await svc.calls.get_for_update(session, delivery.call_id)
        if call is None:
            raise not_found("call log", "call_id", delivery.call_id)
        recording = await _recording_for(session, call, delivery)
        check_recording_status(RecordingStatus(recording.status), delivery.status)
        recording.status = delivery.status
        for name, value in delivery.changes.items():
            setattr(recording, name, value)
        await session.flush()
        await session.refresh(recording)
        return web.json_response(recording_json(recording))


async def _recording_for(session: AsyncSession, call: CallLog, delivery: RecordingDelivery) -> CallRecording:
    """The recording named by the delivery, else the call's newest one, else a new one."""
    stmt = sa.select(CallRecording).where(CallRecording.call_id == call.id).with_for_update()
    if delivery.recording_id is not None:
        found = (await session.execute(stmt.where(CallRecording.id == delivery.recording_id))).scalar_one_or_none()
        if found is None:
            raise not_found("recording of this call", "recording_id", delivery.recording_id)
        return found
    newest = stmt.order_by(CallRecording.created_at.desc(), CallRecording.id.desc()).limit(1)
    found = (await session.execute(newest)).scalar_one_or_none()
    if found is not None:
        return found
    recording = CallRecording(id=uuid.uuid4(), call_id=call.id, status=delivery.status)
    session.add(recording)
    return recording


def add_routes(app: web.Application) -> None:
    """Register the webhook routes on ``app``."""
    app.router.add_post("/api/webhooks/sip/", sip_webhook)
    app.router.add_post("/api/webhooks/recording/", recording_webhook)

"""The call store: the one way calls are created and events applied, whatever their source.

API actions, inbound webhooks and switch adapters all go through ``CallStore``, so the state
machine, derived timestamps, client matching and event de-duplication behave the same for each.
Methods take the caller's session so that one request's changes commit (or fail) together.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from calld.domain.call import CallState, NewCall, TimedEvent, apply_event, fold, new_call
from calld.domain.errors import IllegalTransition
from calld.domain.hangup import END_COLUMNS, end_columns
from calld.domain.numbers import NumberPolicy
from calld.domain.participants import PARTY_COLUMNS, participants_of, party_columns
from calld.domain.quality import DEFAULT_MOS_THRESHOLD, QUALITY_COLUMNS, apply_quality, quality_alert
from calld.domain.recording import finished_recording, implied_events
from calld.domain.vocabulary import CallDirection, CallStatus, EventSource, EventType, RecordingStatus
from calld.storage.call_queries import active_recording_in
from calld.storage.models import CallEvent, CallLog, CallRecording, ClientPhoneNumber
from calld.storage.participants import store_participants
from calld.storage.recording_files import RecordingFiles

Clock = Callable[[], datetime]
# Runs inside the transaction that stores each call event (the outbox is one), synchronously: the
# switch ingest's whole transaction runs in a thread (``Database.transact``); what must wait for the
# commit registers with ``calld.storage.database.on_commit``.
EventHook = Callable[[Session, CallLog, CallEvent], None]
# Where new calls get their ids (uuid4); injectable so a test can give a call the id a switch
# capture already uses.
CallIds = Callable[[], uuid.UUID]


def system_clock() -> datetime:
    return datetime.now(UTC)


# The call_logs columns that hold the domain state (CallState has a field of each name).
STATE_FIELDS = (
    "status",
    "started_at",
    "last_event_at",
    "ringing_at",
    "answered_at",
    "ended_at",
    "held_since",
    "ring_seconds",
    "hold_seconds",
    "duration_seconds",
    "recording",
    "transfer_target",
    "call_quality_score",
)


def state_of(call: CallLog | sa.Row[Any]) -> CallState:
    """The domain state held in a stored call (an ORM object or a row of ``call_logs``)."""
    return CallState(
        direction=CallDirection(call.direction),
        status=CallStatus(call.status),
        started_at=call.started_at,
        last_event_at=call.last_event_at,
        ringing_at=call.ringing_at,
        answered_at=call.answered_at,
        ended_at=call.ended_at,
        held_since=call.held_since,
        ring_seconds=call.ring_seconds,
        hold_seconds=call.hold_seconds,
        duration_seconds=call.duration_seconds,
        recording=call.recording,
        transfer_target=call.transfer_target,
        call_quality_score=call.call_quality_score,
    )


def _store_state(call: CallLog, state: CallState) -> None:
    for name, value in state_values(state).items():
        setattr(call, name, value)


def far_then_near(new: NewCall) -> tuple[str, str]:
    """The numbers that decide whose call it is, in order: the far party first (an inbound
    call's caller, an outbound call's callee), then the near one."""
    if new.direction is CallDirection.INBOUND:
        return new.caller_number, new.recipient_number
    return new.recipient_number, new.caller_number


def call_values(new: NewCall, call_id: uuid.UUID, client_id: uuid.UUID | None, state: CallState) -> dict[str, Any]:
    """The ``call_logs`` column values of a call created from ``new`` (by attribute name)."""
    values: dict[str, Any] = {
        "id": call_id,
        "direction": new.direction,
        "call_type": new.call_type,
        "caller_number": new.caller_number,
        "recipient_number": new.recipient_number,
        "caller_number_raw": new.caller_number_raw if new.caller_number_raw is not None else new.caller_number,
        "recipient_number_raw": (
            new.recipient_number_raw if new.recipient_number_raw is not None else new.recipient_number
        ),
        "caller_withheld": new.caller_withheld,
        "sip_call_id": new.sip_call_id,
        "client_id": client_id,
        "sip_configuration_id": new.sip_configuration_id,
        "switch_name": new.switch_name,
        "switch_call_ref": new.switch_call_ref,
        "notes": new.notes,
        "seeded": new.seeded,
        **dict.fromkeys(STORY_COLUMNS),
    }
    values.update(state_values(state))
    return values


# The call_logs columns the call's story sets: why it ended, who answered, how it sounded.
STORY_COLUMNS = (*END_COLUMNS, *PARTY_COLUMNS, *QUALITY_COLUMNS, "quality_score_by")


def story_columns(event_type: EventType, meta: Mapping[str, Any], status: CallStatus) -> dict[str, Any]:
    """The ``call_logs`` columns ``event_type`` with ``meta`` sets (``calld.domain.hangup``,
    ``calld.domain.participants``)."""
    return end_columns(event_type, meta, status) | party_columns(event_type, meta)


async def _store_parties(session: AsyncSession, call_id: uuid.UUID, meta: Mapping[str, Any]) -> None:
    parties = participants_of(meta)
    if parties is not None:
        await session.run_sync(store_participants, call_id, parties)


def state_values(state: CallState) -> dict[str, Any]:
    """The ``call_logs`` columns that hold ``state``."""
    return {name: getattr(state, name) for name in STATE_FIELDS}


def presented(new: NewCall, numbers: NumberPolicy) -> NewCall:
    """``new`` with its numbers read by ``numbers`` (once: a call whose numbers were read is kept)."""
    if new.caller_number_raw is not None:
        return new
    caller = numbers.classify(new.caller_number)
    recipient = numbers.classify(new.recipient_number)
    return replace(
        new,
        caller_number=caller.number,
        recipient_number=recipient.number,
        caller_number_raw=caller.raw,
        recipient_number_raw=recipient.raw,
        caller_withheld=caller.withheld,
    )


def number_owners(session: Session, numbers: Collection[str]) -> dict[str, uuid.UUID]:
    """The client each of ``numbers`` belongs to, for those that belong to one."""
    if not numbers:
        return {}
    session.flush()  # as the session's own execute would: numbers added or moved in it count
    rows = session.connection().execute(_OWNERS, {"numbers": list(set(numbers))})
    return {number: client_id for number, client_id in rows}


# Built once, run on the connection: looked up in every ingest transaction that creates a call.
_OWNERS = sa.select(ClientPhoneNumber.number, ClientPhoneNumber.client_id).where(
    ClientPhoneNumber.number.in_(sa.bindparam("numbers", expanding=True))
)


def first_owner(owners: Mapping[str, uuid.UUID], numbers: Iterable[str]) -> uuid.UUID | None:
    """The client of the first of ``numbers`` that ``owners`` (from ``number_owners``) knows."""
    return next((owners[number] for number in numbers if number in owners), None)


def recording_changed(
    session: Session,
    call_id: uuid.UUID,
    seeded: bool,
    change: tuple[bool, bool],
    meta: Mapping[str, Any],
    at: datetime,
    files: RecordingFiles | None = None,
) -> None:
    """Keep the call's recordings in step with its ``recording`` flag (``change``: was, now).

    Started: one CallRecording per recording; a row made ``pending`` when calld asked the switch
    to record becomes ``recording`` when the switch confirms, otherwise a new row is made.
    Stopped, or the call ended while recording: the row takes the file's size and length from the
    stop event (FreeSWITCH), else from the file on disk (``files``: calld beside the switch), else its
    length from its start and stop times (``calld.domain.recording.finished_recording``); it is
    ``completed`` when the file is known, else ``processing`` until the recording webhook completes it.
    """
    was, now = change
    if now == was:
        return
    active = active_recording_in(session, call_id)
    path = meta.get("path")
    local_path = path if isinstance(path, str) and path else None
    if not now:
        if active is not None:
            disk = files.facts(local_path or active.local_path) if files is not None else None
            done = finished_recording(meta, disk, active.started_at, at)
            active.status, active.stopped_at = done.status, at
            active.file_size = done.file_size if done.file_size is not None else active.file_size
            active.duration_seconds = (
                done.duration_seconds if done.duration_seconds is not None else active.duration_seconds
            )
        return
    if active is not None:
        active.status = RecordingStatus.RECORDING
        # The switch reports where the file really is (calld asked with a relative path).
        active.local_path = local_path or active.local_path
        active.started_at = at
        return
    suffix = PurePosixPath(local_path).suffix.lstrip(".").lower() if local_path else ""
    session.add(
        CallRecording(
            call_id=call_id,
            status=RecordingStatus.RECORDING,
            local_path=local_path,
            format=suffix or "wav",
            seeded=seeded,
            started_at=at,
        )
    )


class CallStore:
    """Creates calls and applies events to them inside the caller's transaction."""

    def __init__(
        self,
        clock: Clock = system_clock,
        logger: Any = None,
        call_ids: CallIds = uuid.uuid4,
        hooks: Sequence[EventHook] = (),
        numbers: NumberPolicy | None = None,
        files: RecordingFiles | None = None,
        mos_threshold: float = DEFAULT_MOS_THRESHOLD,
    ) -> None:
        self.clock = clock
        # A call whose MOS is below this gets a quality_change event after its end (calls.mos_threshold).
        self.mos_threshold = mos_threshold
        # Recording files on disk, read for the switch's and calld's own stops (not a provider's).
        self.files = files if files is not None else RecordingFiles()
        self.numbers = numbers if numbers is not None else NumberPolicy()
        self.call_ids = call_ids
        self.hooks = tuple(hooks)
        self.log = logger if logger is not None else structlog.get_logger("calld.calls")

    def presented(self, new: NewCall) -> NewCall:
        """``new`` with its numbers read by this store's number policy (see ``presented``)."""
        return presented(new, self.numbers)

    async def match_client(self, session: AsyncSession, *numbers: str) -> uuid.UUID | None:
        """The client one of ``numbers`` belongs to (first number wins)."""
        return first_owner(await session.run_sync(number_owners, numbers), numbers)

    async def create(
        self,
        session: AsyncSession,
        new: NewCall,
        source: EventSource,
        *,
        started_at: datetime | None = None,
        dedup_key: str | None = None,
    ) -> CallLog:
        """Store a new call and its ``initiated`` event."""
        started = started_at or self.clock()
        new = self.presented(new)
        client_id = new.client_id
        if client_id is None:
            client_id = await self.match_client(session, *far_then_near(new))
        call = CallLog(**call_values(new, self.call_ids(), client_id, new_call(new.direction, started)))
        session.add(call)
        await session.flush()
        await self._add_event(session, call, EventType.INITIATED, started, dict(new.metadata), source, dedup_key)
        return call

    async def get_for_update(self, session: AsyncSession, call_id: uuid.UUID) -> CallLog | None:
        """Load a call and lock its row (PostgreSQL) so concurrent events apply one after another."""
        stmt = sa.select(CallLog).where(CallLog.id == call_id).with_for_update()
        return (await session.execute(stmt)).scalar_one_or_none()

    async def find_by(self, session: AsyncSession, *, sip_call_id: str) -> CallLog | None:
        """Find (and lock) a call by its SIP Call-ID."""
        stmt = sa.select(CallLog).where(CallLog.sip_call_id == sip_call_id).with_for_update()
        return (await session.execute(stmt)).scalar_one_or_none()

    async def apply(
        self,
        session: AsyncSession,
        call: CallLog,
        event_type: EventType,
        source: EventSource,
        *,
        metadata: Mapping[str, Any] | None = None,
        timestamp: datetime | None = None,
        dedup_key: str | None = None,
    ) -> CallEvent:
        """Apply one event to ``call`` (raises ``IllegalTransition`` / ``InvalidValue``) and store it."""
        ts = timestamp or self.clock()
        meta = dict(metadata or {})
        for implied, implied_meta in implied_events(CallStatus(call.status), event_type):
            await self._apply_one(session, call, implied, source, implied_meta, ts, None)
        event = await self._apply_one(session, call, event_type, source, meta, ts, dedup_key)
        alert = quality_alert(event_type, meta, self.mos_threshold)
        if alert is not None:
            key = f"{dedup_key}:quality" if dedup_key is not None else None
            await self._apply_one(session, call, EventType.QUALITY_CHANGE, source, alert, ts, key)
        return event

    async def _apply_one(
        self,
        session: AsyncSession,
        call: CallLog,
        event_type: EventType,
        source: EventSource,
        meta: dict[str, Any],
        ts: datetime,
        dedup_key: str | None,
    ) -> CallEvent:
        was_recording = call.recording
        state = apply_event(state_of(call), event_type, ts, meta)
        state, quality = apply_quality(state, event_type, meta, call.quality_score_by)
        _store_state(call, state)
        for name, value in (story_columns(event_type, meta, state.status) | quality).items():
            setattr(call, name, value)
        change = (was_recording, state.recording)
        at, files = state.last_event_at, self._files(source)
        await session.run_sync(recording_changed, call.id, call.seeded, change, meta, at, files)
        await _store_parties(session, call.id, meta)
        return await self._add_event(session, call, event_type, state.last_event_at, meta, source, dedup_key)

    def _files(self, source: EventSource) -> RecordingFiles | None:
        return self.files if source in (EventSource.SWITCH, EventSource.API) else None

    async def apply_in_time(
        self,
        session: AsyncSession,
        call: CallLog,
        event_type: EventType,
        source: EventSource,
        *,
        timestamp: datetime,
        metadata: Mapping[str, Any] | None = None,
        dedup_key: str | None = None,
    ) -> CallEvent:
        """Store an event that happened before the call's latest one (a provider delivered it late):
        the call's state is folded anew from all its events in time order (``fold``), and
        ``IllegalTransition`` is raised, changing nothing, if that order is impossible.

        An ``initiated`` event replaces the one implied when the call was first heard of through a
        later event (and is refused if a reported one exists); an event earlier than an implied
        start moves that start back to it.
        """
        meta = dict(metadata or {})
        rows = list(
            (await session.execute(sa.select(CallEvent).where(CallEvent.call_id == call.id).order_by(CallEvent.id)))
            .scalars()
            .all()
        )
        initiated = next(row for row in rows if row.event_type is EventType.INITIATED)
        implied = "implied_by" in initiated.meta
        if event_type is EventType.INITIATED and not implied:
            raise IllegalTransition(CallStatus(call.status), event_type, "a call is initiated only once")
        start = initiated.timestamp
        if event_type is EventType.INITIATED or (implied and timestamp < start):
            start = timestamp
        timed = [
            TimedEvent(row.event_type, start if row is initiated else row.timestamp, row.meta)
            for row in rows
            if not (row is initiated and event_type is EventType.INITIATED)
        ]
        if event_type is EventType.INITIATED:
            timed.insert(0, TimedEvent(EventType.INITIATED, timestamp, meta))
        else:
            timed.append(TimedEvent(event_type, timestamp, meta))
        was_recording = call.recording
        try:
            state = fold(CallDirection(call.direction), timed)
        except IllegalTransition as exc:  # answered with the call's status, not a step of the fold
            raise IllegalTransition(CallStatus(call.status), event_type, f"in time order, {exc}") from None
        if state.call_quality_score is None:  # a score set by PATCH (or from a MOS) is not an event: keep it
            state = replace(state, call_quality_score=call.call_quality_score)
        state, quality = apply_quality(state, event_type, meta, call.quality_score_by)
        _store_state(call, state)
        for name, value in (story_columns(event_type, meta, state.status) | quality).items():
            setattr(call, name, value)
        change = (was_recording, state.recording)
        await session.run_sync(recording_changed, call.id, call.seeded, change, meta, timestamp, self._files(source))
        await _store_parties(session, call.id, meta)
        initiated.timestamp = start
        if event_type is not EventType.INITIATED:
            return await self._add_event(session, call, event_type, timestamp, meta, source, dedup_key)
        initiated.meta, initiated.source, initiated.dedup_key = meta, source, dedup_key
        await session.flush()
        await self.stored(session, call, initiated)
        return initiated

    async def _add_event(
        self,
        session: AsyncSession,
        call: CallLog,
        event_type: EventType,
        timestamp: datetime,
        metadata: dict[str, Any],
        source: EventSource,
        dedup_key: str | None,
    ) -> CallEvent:
        event = CallEvent(
            call_id=call.id,
            event_type=event_type,
            timestamp=timestamp,
            meta=metadata,
            source=source,
            dedup_key=dedup_key,
        )
        session.add(event)
        await session.flush()
        await self.stored(session, call, event)
        return event

    async def stored(self, session: AsyncSession, call: CallLog, event: CallEvent) -> None:
        """Log a stored event and run the hooks (``call`` as it was right after ``event``)."""
        self.log.info(
            "call event stored",
            call_id=str(call.id),
            event_type=event.event_type.value,
            status=CallStatus(call.status).value,
            source=event.source.value,
        )
        await session.run_sync(self.run_hooks, call, event)

    def run_hooks(self, session: Session, call: CallLog, event: CallEvent) -> None:
        """Run the hooks on a stored event, in its transaction (``call`` as it was right after it)."""
        for hook in self.hooks:
            hook(session, call, event)

"""Switch events into storage: find or create each event's call and apply the event once.

Both adapters hand their ``SwitchEvent``s to ``SwitchIngest`` (it is the adapters' ``EventSink``).
A call is found by the calld call id the switch echoed back (calls calld originated), else by the
switch's own reference; it is created on ``initiated``. Every event carries the switch's identity
of it (``key``), stored as the event's de-duplication key, so replaying events after a reconnect
stores nothing twice. An event the state machine refuses is logged and dropped: the switch is the
truth about the call, and one odd event must not stop the stream.
"""

from __future__ import annotations

import uuid
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from calld.domain.errors import IllegalTransition, InvalidValue
from calld.domain.events import SwitchEvent
from calld.domain.vocabulary import EventSource, EventType
from calld.storage.calls import CallStore, NewCall
from calld.storage.database import Database
from calld.storage.models import CallLog


class SwitchIngest:
    """Stores one switch's events (use as the adapter's ``EventSink``)."""

    def __init__(self, db: Database, calls: CallStore, switch_name: str, logger: Any = None) -> None:
        self.db = db
        self.calls = calls
        self.switch_name = switch_name
        self.log = logger if logger is not None else structlog.get_logger("calld.ingest")
        self.stored = 0
        self.duplicates = 0
        self.refused = 0

    async def __call__(self, event: SwitchEvent) -> None:
        async with self.db.write() as session:
            await self.store(session, event)

    async def store(self, session: AsyncSession, event: SwitchEvent) -> CallLog | None:
        """Store ``event`` in ``session``'s transaction; return its call (None if it has none yet)."""
        key = f"{self.switch_name}:{event.key}"
        if await self.calls.has_event(session, key):
            self.duplicates += 1
            return None
        call = await self._find(session, event)
        if call is None:
            if event.event_type is not EventType.INITIATED or event.parties is None:
                self.log.warning(
                    "switch event for an unknown call dropped",
                    switch=self.switch_name,
                    call_ref=event.call_ref,
                    event_type=event.event_type.value,
                )
                self.refused += 1
                return None
            parties = event.parties
            new = NewCall(
                direction=parties.direction,
                caller_number=parties.caller_number,
                recipient_number=parties.recipient_number,
                call_type=parties.call_type,
                sip_call_id=parties.sip_call_id,
                switch_name=self.switch_name,
                switch_call_ref=event.call_ref,
                metadata=dict(event.metadata),
            )
            call = await self.calls.create(session, new, EventSource.SWITCH, started_at=event.timestamp, dedup_key=key)
            self.stored += 1
            return call
        if call.switch_call_ref is None:
            call.switch_name, call.switch_call_ref = self.switch_name, event.call_ref
        if event.event_type is EventType.INITIATED:
            # calld originated this call and already stored its initiated event.
            return call
        try:
            await self.calls.apply(
                session,
                call,
                event.event_type,
                EventSource.SWITCH,
                metadata=event.metadata,
                timestamp=event.timestamp,
                dedup_key=key,
            )
        except (IllegalTransition, InvalidValue) as exc:
            self.refused += 1
            self.log.warning(
                "switch event refused by the call state machine",
                switch=self.switch_name,
                call_id=str(call.id),
                event_type=event.event_type.value,
                reason=str(exc),
            )
            return call
        self.stored += 1
        return call

    async def _find(self, session: AsyncSession, event: SwitchEvent) -> CallLog | None:
        # Adapters originate with calld's call id as the switch's channel id (Asterisk ChannelId,
        # FreeSWITCH origination_uuid), so even the first events, before any channel variable is
        # echoed, name the call by calld's id.
        for candidate in (event.calld_call_id, event.call_ref):
            call_id = _as_uuid(candidate)
            if call_id is None:
                continue
            call = await self.calls.get_for_update(session, call_id)
            if call is not None and call.switch_name in (None, self.switch_name):
                return call
        return await self.calls.find_by(session, switch=(self.switch_name, event.call_ref))


def _as_uuid(value: str | None) -> uuid.UUID | None:
    if not value:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None

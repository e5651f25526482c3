"""The SIP providers' own webhooks, stored: each event a provider reported, through the same use case
as calld's own SIP webhook (state machine, order by time, de-duplication by the provider's ids)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from calld.domain.call import NewCall
from calld.domain.errors import IllegalTransition, InvalidValue, InvalidValues
from calld.domain.vocabulary import EventType
from calld.providers.model import Attempt, ProviderEvent
from calld.service.provider import CallEventDelivery, ProviderDeliveries
from calld.service.provider_recordings import keep_provider_recording
from calld.storage.calls import CallStore
from calld.storage.database import Database


class ProviderEvents:
    """Stores what a provider's webhook said, never refusing it for its content."""

    def __init__(self, db: Database, calls: CallStore, deliveries: ProviderDeliveries) -> None:
        self.db = db
        self.calls = calls
        self.deliveries = deliveries

    async def store(self, event: ProviderEvent) -> dict[str, Any]:
        """Store the first of the event's attempts the call takes, else the event as the provider said it
        (``provider_event``); the answer for this event."""
        reason = None
        for attempt in event.attempts:
            try:
                answer = await self.deliveries.store_call_event(_delivery(event, attempt, dict(attempt.metadata)))
            except (IllegalTransition, InvalidValue) as exc:
                reason = str(exc)
                continue
            return await self._with_recording(event, answer)
        if event.implied:  # derived only: the reported event it came with is stored
            return {"status": "not needed", "event_type": event.attempts[0].event_type.value}
        metadata = dict(event.metadata)
        if event.attempts:
            metadata.update(not_applied=event.attempts[0].event_type.value, reason=reason)
        fallback = Attempt(EventType.PROVIDER_EVENT, metadata)
        answer = await self.deliveries.store_call_event(_delivery(event, fallback, metadata))
        return await self._with_recording(event, answer)

    async def _with_recording(self, event: ProviderEvent, answer: dict[str, Any]) -> dict[str, Any]:
        if event.recording is None or answer.get("status") != "stored":
            return answer
        async with self.db.write() as session:
            call = await self.calls.get_for_update(session, uuid.UUID(answer["call"]))
            if call is not None:
                recording = await keep_provider_recording(session, call.id, event.recording)
                answer = {**answer, "recording": str(recording.id)}
        return answer


def _delivery(event: ProviderEvent, attempt: Attempt, metadata: dict[str, Any]) -> CallEventDelivery:
    return CallEventDelivery(
        sip_call_id=event.sip_call_id,
        event_type=attempt.event_type,
        timestamp=event.timestamp,
        dedup_key=event.dedup_key,
        metadata=metadata,
        new_call=_new_call(event, attempt),
    )


def _new_call(event: ProviderEvent, attempt: Attempt) -> Callable[[], NewCall]:
    def new() -> NewCall:
        if event.caller is None or event.recipient is None:
            required = "the call is not known yet and this delivery does not name its parties"
            names = {"caller": event.caller, "recipient": event.recipient}
            raise InvalidValues({name: required for name, value in names.items() if value is None})
        if attempt.event_type is EventType.INITIATED:
            metadata = dict(attempt.metadata)
        else:  # the start of a call first heard of through a later event is implied, not reported
            metadata = {
                "implied_by": str(event.metadata.get("provider_event", attempt.event_type.value)),
                "provider": event.provider,
                "provider_call_id": event.call_ref,
            }
        return NewCall(
            direction=event.direction,
            caller_number=event.caller,
            recipient_number=event.recipient,
            sip_call_id=event.sip_call_id,
            metadata=metadata,
        )

    return new

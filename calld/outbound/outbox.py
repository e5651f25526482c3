"""The outbox: each stored call event becomes one delivery row per matching subscription, in the
event's own transaction, so an event is never stored without its deliveries or the other way round."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from calld.domain.delivery import CALL_COMPLETED, DeliveryStatus
from calld.service.summary import completed_summary, completes
from calld.service.views import call_event_json, call_log_json, iso
from calld.storage.calls import Clock, system_clock
from calld.storage.database import on_commit
from calld.storage.models import CallEvent, CallLog, WebhookDelivery, WebhookSubscription

_WAKE_REGISTERED = "calld.outbox.wake"
# How long the active subscriptions are kept in memory. A change through this process's API
# invalidates them at once; one made through another instance (PostgreSQL, several calld) is seen
# by this one's events within this many seconds.
SUBSCRIPTIONS_TTL_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class ActiveSubscription:
    """What the outbox needs of an active subscription."""

    id: uuid.UUID
    event_types: tuple[str, ...]


def _nothing() -> None:
    return None


def payload(delivery_id: uuid.UUID, call: CallLog, event: CallEvent) -> dict[str, Any]:
    """What the receiver gets: the event and the call as it was right after it."""
    return {
        "delivery_id": str(delivery_id),
        "event_type": event.event_type.value,
        "occurred_at": iso(event.timestamp),
        "call": call_log_json(call),
        "event": call_event_json(event),
    }


class Outbox:
    """A ``CallStore`` event hook. ``wake`` is called once the transaction that added deliveries
    commits (the worker then sends them without waiting for its next poll)."""

    def __init__(self, clock: Clock = system_clock, wake: Callable[[], None] = _nothing) -> None:
        self.clock = clock
        self.wake = wake
        # (read at, monotonic; the active subscriptions) and a count of invalidations, so a read
        # that overlapped a change is not kept (the ingest reads in its writer thread).
        self._cached: tuple[float, list[ActiveSubscription]] | None = None
        self._generation = 0

    def subscriptions_changed(self) -> None:
        """A subscription was created, changed or deleted (and committed): read them again."""
        self._generation += 1
        self._cached = None

    def __call__(self, session: Session, call: CallLog, event: CallEvent) -> None:
        subscriptions = self._active(session)
        kind = event.event_type.value
        added = False
        now = self.clock()
        for sub in subscriptions:
            if sub.event_types and kind not in sub.event_types:
                continue
            delivery_id = uuid.uuid4()
            session.add(self._delivery(delivery_id, sub, call, event, kind, payload(delivery_id, call, event), now))
            added = True
        if completes(event):
            # After the event itself, so a receiver that takes both gets the ending first.
            wanting = [sub for sub in subscriptions if CALL_COMPLETED in sub.event_types]
            summary = completed_summary(session, call, event) if wanting else None
            for sub in wanting:
                delivery_id = uuid.uuid4()
                body = {
                    "delivery_id": str(delivery_id),
                    "event_type": CALL_COMPLETED,
                    "occurred_at": iso(event.timestamp),
                    **(summary or {}),
                }
                session.add(self._delivery(delivery_id, sub, call, event, CALL_COMPLETED, body, now))
                added = True
        if added and not session.info.get(_WAKE_REGISTERED):
            session.info[_WAKE_REGISTERED] = True
            on_commit(session, self.wake)

    @staticmethod
    def _delivery(
        delivery_id: uuid.UUID,
        sub: ActiveSubscription,
        call: CallLog,
        event: CallEvent,
        kind: str,
        body: dict[str, Any],
        now: datetime,
    ) -> WebhookDelivery:
        return WebhookDelivery(
            delivery_id=delivery_id,
            subscription_id=sub.id,
            call_id=call.id,
            event_id=event.id,
            event_type=kind,
            payload=body,
            status=DeliveryStatus.PENDING,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )

    def _active(self, session: Session) -> list[ActiveSubscription]:
        """The active subscriptions, from memory (see ``SUBSCRIPTIONS_TTL_SECONDS``)."""
        cached, now = self._cached, time.monotonic()
        if cached is not None and now - cached[0] < SUBSCRIPTIONS_TTL_SECONDS:
            return cached[1]
        generation = self._generation
        stmt = sa.select(WebhookSubscription.id, WebhookSubscription.event_types).where(
            WebhookSubscription.active.is_(True)
        )
        active = [ActiveSubscription(sub_id, tuple(types or ())) for sub_id, types in session.execute(stmt)]
        if generation == self._generation:
            self._cached = (now, active)
        return active

"""Live updates: call changes pushed to connected WebSocket clients once they are committed.

``LiveHub`` is a ``CallStore`` event hook: it notes each stored event's message in the session and
publishes them when (and only if) the transaction commits. Each subscriber has a bounded queue; a
client that cannot keep up is dropped rather than buffered without bound. On PostgreSQL a ``relay``
(``calld.cluster.feed``) also tells the other calld instances sharing the database of each change,
and publishes theirs here.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from calld.domain.delivery import CALL_COMPLETED
from calld.domain.vocabulary import EventType
from calld.service.summary import completed_summary, completes
from calld.service.views import call_event_json, call_log_json
from calld.storage.database import on_commit
from calld.storage.models import CallEvent, CallLog

# WebSocket close codes: 1001 going away (shutdown), 1008 policy violation (too slow, token revoked).
GOING_AWAY = 1001
TOO_SLOW = 1008
REVOKED = 1008


@dataclass(frozen=True, slots=True)
class LiveMessage:
    """One push: ``body`` is the JSON sent; call and client ids decide who gets it."""

    call_id: str
    client_id: str | None
    body: dict[str, Any]


def call_message(kind: str, call: CallLog, **extra: Any) -> LiveMessage:
    """A message about ``call`` (``kind``: call.created, call.event, call.updated, call.deleted)."""
    client = str(call.client_id) if call.client_id else None
    return LiveMessage(str(call.id), client, {"type": kind, "call": call_log_json(call), **extra})


@dataclass(eq=False, slots=True)
class Subscriber:
    """One connected client: what it wants, what waits to be sent to it, and why it was dropped."""

    calls: frozenset[str]
    clients: frozenset[str]
    queue: asyncio.Queue[dict[str, Any]]
    close_code: int | None = None
    close_reason: str | None = None
    on_close: Callable[[], object] = field(default=lambda: None)
    # The API token the client connected with: re-checked while it listens (revocation closes it).
    token: str | None = None

    def wants(self, message: LiveMessage) -> bool:
        if not self.calls and not self.clients:
            return True
        return message.call_id in self.calls or (message.client_id is not None and message.client_id in self.clients)

    def close(self, code: int, reason: str) -> None:
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason
            self.on_close()


class Relay(Protocol):
    """Tells the other calld instances of a change when its transaction commits."""

    def note(
        self, session: Session | AsyncSession, kind: str, call_id: str, event_id: int | None, client: str | None
    ) -> None:
        """Note the change in ``session``'s transaction."""


class LiveHub:
    """Fans committed call changes out to subscribers (and, with a ``relay``, to other instances)."""

    def __init__(self, max_queued: int = 256, logger: Any = None) -> None:
        self.max_queued = max_queued
        self.relay: Relay | None = None
        self.log = logger if logger is not None else structlog.get_logger("calld.service.live_feed")
        self._subscribers: set[Subscriber] = set()

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def subscribe(
        self, calls: Iterable[uuid.UUID] = (), clients: Iterable[uuid.UUID] = (), token: str | None = None
    ) -> Subscriber:
        sub = Subscriber(
            frozenset(str(c) for c in calls),
            frozenset(str(c) for c in clients),
            asyncio.Queue(self.max_queued),
            token=token,
        )
        self._subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self._subscribers.discard(sub)

    def publish(self, message: LiveMessage) -> None:
        for sub in list(self._subscribers):
            if sub.close_code is not None or not sub.wants(message):
                continue
            try:
                sub.queue.put_nowait(message.body)
            except asyncio.QueueFull:
                self.drop(sub, f"too slow: {self.max_queued} messages were waiting to be sent")

    def drop(self, sub: Subscriber, reason: str) -> None:
        self.log.warning("live client dropped", reason=reason, subscribers=len(self._subscribers) - 1)
        self._subscribers.discard(sub)
        sub.close(TOO_SLOW, reason)

    def tokens(self) -> set[str]:
        """The tokens live clients connected with."""
        return {sub.token for sub in self._subscribers if sub.token is not None}

    def revoke(self, token: str) -> None:
        """Close (1008) every client that connected with ``token``: it is no longer valid."""
        for sub in [s for s in self._subscribers if s.token == token]:
            self.log.info("live client closed: its token is no longer valid", subscribers=len(self._subscribers) - 1)
            self._subscribers.discard(sub)
            sub.close(REVOKED, "token revoked")

    def close_all(self) -> None:
        for sub in list(self._subscribers):
            sub.close(GOING_AWAY, "calld is shutting down")
        self._subscribers.clear()

    def __call__(self, session: Session, call: CallLog, event: CallEvent) -> None:
        """``CallStore`` hook: keep the event's message until its transaction commits."""
        kind = "call.created" if event.event_type is EventType.INITIATED else "call.event"
        if self.relay is not None:
            client = str(call.client_id) if call.client_id else None
            self.relay.note(session, kind, str(call.id), event.id, client)
        if not self._subscribers:
            return  # nobody is listening: spare the ingest path the serialising
        self._after_commit(session, call_message(kind, call, event=call_event_json(event)))
        if completes(event):
            summary = completed_summary(session, call, event)
            client = str(call.client_id) if call.client_id else None
            self._after_commit(session, LiveMessage(str(call.id), client, {"type": CALL_COMPLETED, **summary}))

    def after_commit(self, session: Session | AsyncSession, message: LiveMessage) -> None:
        """Publish ``message`` (a call.updated or call.deleted) once ``session``'s transaction commits,
        here and through the relay; drop it if it rolls back."""
        if self.relay is not None:
            self.relay.note(session, message.body["type"], message.call_id, None, message.client_id)
        self._after_commit(session, message)

    def _after_commit(self, session: Session | AsyncSession, message: LiveMessage) -> None:
        on_commit(session, functools.partial(self.publish, message))

"""One live feed across calld instances: committed call changes relayed through LISTEN/NOTIFY.

Each change a ``LiveHub`` publishes locally is also noted (``note``) in its transaction, and
sent with one ``pg_notify`` per change just before the transaction commits, so PostgreSQL
delivers it only if it commits, in commit order. A payload holds ids only (NOTIFY payloads are
limited to 8000 bytes): ``kind|call id|event id|client id|instance``. Every instance listens; one
that did not make the change reads the call (and the event) and publishes it to its own
WebSocket clients, filtered per client as local pushes are. The instance that made it skips it:
its clients had it from the local push, so nobody sees a change twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from calld.cluster.listener import Listener
from calld.domain.delivery import CALL_COMPLETED
from calld.service.live_feed import LiveHub, LiveMessage, call_message
from calld.service.summary import completed_summary, completes
from calld.service.views import call_event_json
from calld.storage.database import Database
from calld.storage.models import CallEvent, CallLog

CHANNEL = "calld_calls"
_NOTES = "calld.cluster.feed.notes"
_NOTIFY = sa.text(f"SELECT pg_notify('{CHANNEL}', note) FROM unnest(CAST(:notes AS text[])) AS note")
# Payloads waiting to be read and pushed; beyond this (a database too slow to read them) the oldest
# wait and new ones are dropped with a log line, as a local client that falls behind is dropped.
MAX_WAITING = 100_000
_READ_TOGETHER = 500  # changes read with one query each for calls and events


class ClusterFeed:
    """Relays this instance's call changes to the others, and theirs to this instance's clients."""

    def __init__(self, db: Database, hub: LiveHub, instance: str, listener: Listener) -> None:
        self.db = db
        self.hub = hub
        self.instance = instance
        self.log = structlog.get_logger("calld.cluster")
        self._waiting: asyncio.Queue[str] = asyncio.Queue(MAX_WAITING)
        self.relayed = 0  # changes from other instances pushed to this one's clients
        listener.on(CHANNEL, self._received)

    # --- sending ------------------------------------------------------------------------------

    def note(
        self, session: Session | AsyncSession, kind: str, call_id: str, event_id: int | None, client: str | None
    ) -> None:
        """Notify the other instances of this change when ``session``'s transaction commits (an API
        request's async session, or the switch ingest's sync one: ``Database.transact``)."""
        sync = session.sync_session if isinstance(session, AsyncSession) else session
        notes: list[str] | None = sync.info.get(_NOTES)
        if notes is None:
            notes = sync.info[_NOTES] = []
            sa.event.listen(sync, "before_commit", _send, once=True)
            sa.event.listen(sync, "after_rollback", lambda s: s.info.pop(_NOTES, None), once=True)
        notes.append(f"{kind}|{call_id}|{event_id or ''}|{client or ''}|{self.instance}")

    # --- receiving ----------------------------------------------------------------------------

    def _received(self, payload: str) -> None:
        if payload.endswith(f"|{self.instance}"):
            return  # made here: already pushed locally
        if not self.hub.subscribers:
            return  # nobody here listens: nothing to read
        try:
            self._waiting.put_nowait(payload)
        except asyncio.QueueFull:
            self.log.warning("live change from another instance dropped: too many waiting", waiting=MAX_WAITING)

    async def run(self) -> None:
        """Read and push what the other instances changed, in the order it was committed: whatever
        waits is read together (one query for the calls, one for the events), then pushed in order."""
        while True:
            payloads = [await self._waiting.get()]
            while len(payloads) < _READ_TOGETHER and not self._waiting.empty():
                payloads.append(self._waiting.get_nowait())
            try:
                for message in await self._messages([_Change.parse(p) for p in payloads]):
                    self.hub.publish(message)
                self.relayed += len(payloads)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database is away: these changes are skipped, not the feed
                self.log.warning(
                    "live changes from another instance not pushed", changes=len(payloads), error=repr(exc)
                )

    async def _messages(self, changes: list[_Change]) -> list[LiveMessage]:
        call_ids = {uuid.UUID(c.call_id) for c in changes if c.kind != "call.deleted"}
        event_ids = {c.event_id for c in changes if c.event_id is not None}
        messages: list[LiveMessage] = []
        async with self.db.read() as session:
            calls: dict[str, CallLog] = {}
            events: dict[int, CallEvent] = {}
            if call_ids:
                found = await session.execute(sa.select(CallLog).where(CallLog.id.in_(call_ids)))
                calls = {str(call.id): call for call in found.scalars()}
            if event_ids:
                found_events = await session.execute(sa.select(CallEvent).where(CallEvent.id.in_(event_ids)))
                events = {event.id: event for event in found_events.scalars()}
            for change in changes:
                if change.kind == "call.deleted":
                    body = {"type": change.kind, "call": {"id": change.call_id}}
                    messages.append(LiveMessage(change.call_id, change.client, body))
                    continue
                call = calls.get(change.call_id)
                if call is None:
                    continue  # deleted since
                if change.event_id is None:
                    messages.append(call_message(change.kind, call))
                    continue
                event = events.get(change.event_id)
                if event is None:
                    continue
                messages.append(call_message(change.kind, call, event=call_event_json(event)))
                if completes(event):
                    summary = await session.run_sync(completed_summary, call, event)
                    messages.append(LiveMessage(change.call_id, change.client, {"type": CALL_COMPLETED, **summary}))
        return messages


@dataclass(frozen=True, slots=True)
class _Change:
    """One notification: ``kind|call id|event id|client id|instance``."""

    kind: str
    call_id: str
    event_id: int | None
    client: str | None

    @classmethod
    def parse(cls, payload: str) -> _Change:
        kind, call_id, event_id, client, _instance = payload.split("|")
        return cls(kind, call_id, int(event_id) if event_id else None, client or None)


def _send(session: Any) -> None:
    # Runs inside the commit (SQLAlchemy's greenlet): the NOTIFYs join the transaction.
    notes = session.info.pop(_NOTES, None)
    if notes:
        session.execute(_NOTIFY, {"notes": notes})


async def run_all(feed: ClusterFeed, listener: Listener) -> None:
    """The listener and the feed's reader, until cancelled."""
    tasks = [asyncio.create_task(listener.run(), name="cluster-listener"), asyncio.create_task(feed.run())]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

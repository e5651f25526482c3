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
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

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

    def note(self, session: AsyncSession, kind: str, call_id: str, event_id: int | None, client: str | None) -> None:
        """Notify the other instances of this change when ``session``'s transaction commits."""
        notes: list[str] | None = session.info.get(_NOTES)
        if notes is None:
            notes = session.info[_NOTES] = []
            sync = session.sync_session
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
        """Read and push what the other instances changed, one at a time (so in commit order)."""
        while True:
            payload = await self._waiting.get()
            try:
                for message in await self._messages(payload):
                    self.hub.publish(message)
                self.relayed += 1
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database is away: this change is skipped, not the feed
                self.log.warning("live change from another instance not pushed", payload=payload, error=repr(exc))

    async def _messages(self, payload: str) -> list[LiveMessage]:
        kind, call_id, event_id, client, _instance = payload.split("|")
        if kind == "call.deleted":
            return [LiveMessage(call_id, client or None, {"type": kind, "call": {"id": call_id}})]
        async with self.db.read() as session:
            call = await session.get(CallLog, uuid.UUID(call_id))
            if call is None:
                return []  # deleted since
            if not event_id:
                return [call_message(kind, call)]
            event = await session.get(CallEvent, int(event_id))
            if event is None:
                return []
            messages = [call_message(kind, call, event=call_event_json(event))]
            if completes(event):
                summary = await completed_summary(session, call, event)
                messages.append(LiveMessage(call_id, client or None, {"type": CALL_COMPLETED, **summary}))
            return messages


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

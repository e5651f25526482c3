"""Switch events into storage: find or create each event's call and apply the event once.

Both adapters hand their ``SwitchEvent``s to an ``EventSink``: ``BatchedIngest`` in the daemon
(queued, stored many per transaction), or ``SwitchIngest`` itself (one transaction per event).
A call is found by the calld call id the switch echoed back (calls calld originated), else by the
switch's own reference; it is created on ``initiated``. Every event carries the switch's identity
of it (``key``), stored as the event's de-duplication key, so replaying events after a reconnect
stores nothing twice. An event the state machine refuses is logged and dropped: the switch is the
truth about the call, and one odd event must not stop the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Session

from calld.domain.call import NewCall
from calld.domain.errors import IllegalTransition, InvalidValue
from calld.domain.events import SwitchEvent
from calld.domain.vanished import VanishedWhile, as_stored, vanished_end
from calld.domain.vocabulary import TERMINAL_STATUSES, EventSource, EventType
from calld.ingest.spill import SpillFile
from calld.storage.call_batch import AlreadyStored, BatchCall, CallBatch
from calld.storage.call_queries import existing_dedup_keys
from calld.storage.calls import CallStore
from calld.storage.cluster import NotLeader
from calld.storage.database import Database
from calld.storage.models import CallLog


class Outcome(enum.Enum):
    """What storing one switch event did."""

    STORED = "stored"
    DUPLICATE = "duplicate"
    REFUSED = "refused"


# Told of each committed batch: the switch, its events and what storing each did (for metrics).
Committed = Callable[[str, Sequence[SwitchEvent], Sequence["Outcome"]], None]
# Run first in each ingest transaction: raises ``NotLeader`` when this instance no longer leads the
# PBX (``calld.cluster.leadership.Elector.fence``), so a deposed leader writes nothing.
# Synchronous: it runs inside ``Database.transact``'s batch function.
Fence = Callable[[Session], None]


class SwitchIngest:
    """Stores one switch's events (usable directly as an adapter's ``EventSink``).

    ``stored``, ``duplicates`` and ``refused`` count events whose transaction committed.
    """

    def __init__(
        self,
        db: Database,
        calls: CallStore,
        switch_name: str,
        logger: Any = None,
        on_committed: Committed | None = None,
        fence: Fence | None = None,
    ) -> None:
        self.db = db
        self.fence = fence
        self.calls = calls
        self.switch_name = switch_name
        self.on_committed = on_committed
        self.log = logger if logger is not None else structlog.get_logger("calld.ingest.switch_ingest")
        self.stored = 0
        self.duplicates = 0
        self.refused = 0

    async def __call__(self, event: SwitchEvent) -> None:
        await self.store_batch([event])

    async def store_batch(self, events: Sequence[SwitchEvent]) -> None:
        """Store ``events`` in one transaction (all or nothing), in order: one ``Database.transact``
        (on SQLite one hop to the writer thread), then one log line for the batch."""
        try:
            outcomes = await self.db.transact(self._store, events, checked=False)
        except AlreadyStored:  # a replay (after a reconnect, a restart): skip what is stored
            outcomes = await self.db.transact(self._store, events, checked=True)
        self.count(outcomes)
        stored = outcomes.count(Outcome.STORED)
        self.log.info(
            "switch events stored",
            switch=self.switch_name,
            stored=stored,
            duplicates=outcomes.count(Outcome.DUPLICATE),
            refused=len(outcomes) - stored - outcomes.count(Outcome.DUPLICATE),
        )
        if self.on_committed is not None:
            self.on_committed(self.switch_name, events, outcomes)

    def _store(self, session: Session, events: Sequence[SwitchEvent], *, checked: bool) -> list[Outcome]:
        """The batch's transaction: load its calls, apply, write. ``checked``: skip the events already
        stored (one look-up); else an event already stored raises ``AlreadyStored`` (see ``CallBatch.write``)."""
        if self.fence is not None:
            self.fence(session)
        batch = CallBatch(self.calls, session)
        ids = {call_id for event in events for call_id in _ids_named(event)}
        batch.load(ids, self.switch_name, {event.call_ref for event in events})
        seen = existing_dedup_keys(session, [self._key(event) for event in events]) if checked else set()
        outcomes = [self._apply(batch, event, seen, checked) for event in events]
        batch.write(checked=checked)
        return outcomes

    def _key(self, event: SwitchEvent) -> str:
        return f"{self.switch_name}:{event.key}"

    def count(self, outcomes: Sequence[Outcome]) -> None:
        """Add committed outcomes to the counters."""
        for outcome in outcomes:
            if outcome is Outcome.STORED:
                self.stored += 1
            elif outcome is Outcome.DUPLICATE:
                self.duplicates += 1
            else:
                self.refused += 1

    def _apply(self, batch: CallBatch, event: SwitchEvent, seen: set[str], checked: bool) -> Outcome:
        """Add ``event`` to ``batch``; ``seen`` holds the keys already stored (if ``checked``) or in this
        batch. Unchecked, an event that would not be stored raises ``AlreadyStored``: it may be a
        replay, which only the look-up tells (a replayed event for an ended call is refused by the
        state machine, where it is a duplicate)."""
        key = self._key(event)
        if key in seen:
            return Outcome.DUPLICATE
        seen.add(key)
        call = self._find(batch, event)
        if call is None:
            if event.event_type is not EventType.INITIATED or event.parties is None:
                if not checked:
                    raise AlreadyStored
                if event.recovered_from is not None:
                    # A record of a call that began before what the records cover: nothing to add to.
                    return Outcome.DUPLICATE
                self.log.warning(
                    "switch event for an unknown call dropped",
                    switch=self.switch_name,
                    call_ref=event.call_ref,
                    event_type=event.event_type.value,
                )
                return Outcome.REFUSED
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
            batch.create(new, EventSource.SWITCH, started_at=event.timestamp, dedup_key=key)
            return Outcome.STORED
        if call.switch_call_ref is None:
            batch.set_switch(call, self.switch_name, event.call_ref)
        if event.event_type is EventType.INITIATED:
            # calld originated this call and already stored its initiated event.
            return Outcome.DUPLICATE
        event_type: EventType = event.event_type
        metadata: Mapping[str, Any] = event.metadata
        restated = as_stored(event_type, metadata, call.state.answered_at is not None)
        if restated is not None:
            event_type, metadata = restated.event_type, restated.metadata
        try:
            batch.apply(
                call,
                event_type,
                EventSource.SWITCH,
                metadata=metadata,
                timestamp=event.timestamp,
                dedup_key=key,
            )
        except (IllegalTransition, InvalidValue) as exc:
            if not checked:
                raise AlreadyStored from exc
            if event.recovered_from is not None:
                # Recovered events restate the call as the switch saw it; where calld already has
                # that (answered, ended...), the live event it stored is the record.
                return Outcome.DUPLICATE
            self.log.warning(
                "switch event refused by the call state machine",
                switch=self.switch_name,
                call_id=str(call.id),
                event_type=event.event_type.value,
                reason=str(exc),
            )
            return Outcome.REFUSED
        return Outcome.STORED

    async def recovery_start(self) -> datetime | None:
        """When this switch's last stored call started: what the switch's records must be read from
        after a restart (None when calld never stored a call of it: there is nothing to resume)."""
        async with self.db.read() as session:
            stmt = sa.select(sa.func.max(CallLog.started_at)).where(CallLog.switch_name == self.switch_name)
            latest: datetime | None = (await session.execute(stmt)).scalar()
        if latest is not None and latest.tzinfo is None:
            latest = latest.replace(tzinfo=UTC)  # SQLite hands back naive UTC
        return latest

    async def close_left_open(self, live_refs: Collection[str], before: datetime) -> int:
        """Close this switch's calls still open in the database that the switch no longer has.

        They ended while calld was not running (a restart, an upgrade), so their end was reported
        to nobody. Only calls started before ``before`` (this run's start) are looked at: a call this
        run is storing is never touched. They are closed now by the domain's vanished-call rule
        (``calld.domain.vanished``), marked ``ended_while_calld_was_down``.
        Returns how many were closed.
        """
        live = set(live_refs)
        closed = 0
        async with self.db.write() as session:
            if self.fence is not None:
                await session.run_sync(self.fence)
            stmt = (
                sa.select(CallLog)
                .where(
                    CallLog.switch_name == self.switch_name,
                    CallLog.status.not_in(TERMINAL_STATUSES),
                    CallLog.started_at < before,
                )
                .with_for_update()
            )
            for call in (await session.execute(stmt)).scalars():
                if call.switch_call_ref in live:
                    continue
                end = vanished_end(call.answered_at is not None, VanishedWhile.CALLD_WAS_DOWN)
                key = f"{self.switch_name}:left-open:{call.id}"
                try:
                    await self.calls.apply(
                        session, call, end.event_type, EventSource.SWITCH, metadata=dict(end.metadata), dedup_key=key
                    )
                except (IllegalTransition, InvalidValue) as exc:
                    self.log.warning("call left open not closed", call_id=str(call.id), reason=str(exc))
                    continue
                closed += 1
        return closed

    def _find(self, batch: CallBatch, event: SwitchEvent) -> BatchCall | None:
        # Adapters originate with calld's call id as the switch's channel id (Asterisk ChannelId,
        # FreeSWITCH origination_uuid), so even the first events, before any channel variable is
        # echoed, name the call by calld's id.
        for call_id in _ids_named(event):
            call = batch.by_id(call_id)
            if call is not None and call.switch_name in (None, self.switch_name):
                return call
        return batch.by_switch(self.switch_name, event.call_ref)


def _ids_named(event: SwitchEvent) -> list[uuid.UUID]:
    """The calld call ids ``event`` may name, most likely first."""
    return [call_id for call_id in map(_as_uuid, (event.calld_call_id, event.call_ref)) if call_id is not None]


def _as_uuid(value: str | None) -> uuid.UUID | None:
    if not value:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


class BatchedIngest:
    """The daemon's ``EventSink``: queues switch events and stores them many per transaction.

    One worker takes whatever is queued (up to ``batch_size``) and stores it in one transaction,
    so a quiet switch sees each event stored at once and a busy one shares each commit among many
    events (group commit), without waiting on a timer. One worker keeps every call's events in the
    order the switch sent them.

    The queue in memory holds ``max_pending`` events. Beyond that (the database is down or slow)
    events go to ``spill``, a file on local disk, and are stored from it in order once the
    database keeps up; a restart stores what a killed calld left there. Without a spill file, or
    when it is full too, the adapter's ``await sink(event)`` waits: it stops reading its socket and
    TCP slows the switch down. Both bounds are logged and counted when hit; nothing is dropped.

    A batch the database refuses is retried event by event, so one bad event loses only itself.
    A database that cannot be reached is retried with capped backoff, holding the batch.
    """

    def __init__(
        self,
        ingest: SwitchIngest,
        *,
        batch_size: int = 500,
        max_pending: int = 10000,
        spill: SpillFile | None = None,
        retry_max_seconds: float = 5.0,
        logger: Any = None,
    ) -> None:
        self.ingest = ingest
        self.batch_size = batch_size
        self.spill = spill
        self.retry_max_seconds = retry_max_seconds
        self.log = logger if logger is not None else structlog.get_logger("calld.ingest.switch_ingest")
        self._queue: asyncio.Queue[SwitchEvent] = asyncio.Queue(max_pending)
        self._progress = asyncio.Event()  # set whenever the worker stored something
        self._worker: asyncio.Task[None] | None = None
        self.batches = 0
        self.failed = 0  # events dropped because the database refused them on their own
        self.fenced = 0  # events not stored because this instance no longer leads the PBX
        self.memory_full = 0  # times the memory bound was reached
        self.spill_full = 0  # times the disk bound was reached (the adapter then waited)
        self._bound: str | None = None  # the bound reached now, if any
        self._in_flight = 0  # events of the batch being stored from memory

    @property
    def pending(self) -> int:
        """Events received and not yet committed (in memory, on disk, or being stored)."""
        on_disk = self.spill.waiting if self.spill is not None else 0
        return self._queue.qsize() + on_disk + self._in_flight

    def start(self) -> None:
        """Start the worker (a spill file left by a previous run is stored at once)."""
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._run(), name=f"ingest-{self.ingest.switch_name}")

    async def __call__(self, event: SwitchEvent) -> None:
        self.start()
        spill = self.spill
        if spill is None:
            if self._queue.full():
                self._bound_hit("memory", "the switch connection waits")
            else:
                self._bound = None
            await self._queue.put(event)
            return
        while spill.waiting and spill.full:
            self._bound_hit("disk", "the switch connection waits")
            self._progress.clear()
            await self._progress.wait()
        if not spill.waiting and not self._queue.full():
            self._bound = None
            self._queue.put_nowait(event)
            return
        # Once events wait on disk, newer ones queue behind them there: the switch's order holds.
        if self._bound is None:
            self._bound_hit("memory", f"spilling to {spill.path}")
        spill.append(event)

    def _bound_hit(self, bound: str, then: str) -> None:
        """Count and log (once per episode) that the memory or disk bound was reached."""
        if self._bound == bound:
            return
        self._bound = bound
        if bound == "memory":
            self.memory_full += 1
        else:
            self.spill_full += 1
        self.log.warning("ingest queue full", bound=bound, then=then, pending=self.pending)

    async def flush(self) -> None:
        """Wait until every queued event is committed (or dropped as refused)."""
        if self._worker is None:
            return
        while True:
            await self._queue.join()
            if self.spill is None or not self.spill.waiting:
                return
            self._progress.clear()
            await self._progress.wait()

    async def close(self, timeout_seconds: float | None = None) -> None:
        """Store what is queued (waiting at most ``timeout_seconds``), then stop the worker.

        What is still on disk stays there for the next start.
        """
        try:
            await asyncio.wait_for(self.flush(), timeout_seconds)
        except TimeoutError:
            self.log.error("switch events not stored before shutdown", pending=self.pending)
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
        if self.spill is not None:
            self.spill.close()

    async def _run(self) -> None:
        while True:
            try:
                await self._next_batch()
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug or a disk error must not silently stop all storing
                self.log.exception("ingest worker failed; retrying")
                await asyncio.sleep(1.0)

    async def _next_batch(self) -> None:
        spill = self.spill
        if self._queue.empty() and spill is not None and spill.waiting:
            # Older than anything arriving now: memory is drained first, then the file.
            events, offset, lines = spill.peek(self.batch_size)
            if lines > len(events):
                self.failed += lines - len(events)
                self.log.error("unreadable switch events in the spill file skipped", lines=lines - len(events))
            await self._store(events)
            spill.consume(offset, lines)
            self._progress.set()
            return
        batch = [await self._queue.get()]
        while len(batch) < self.batch_size and not self._queue.empty():
            batch.append(self._queue.get_nowait())
        self._in_flight = len(batch)
        try:
            await self._store(batch)
        finally:
            self._in_flight = 0
            for _ in batch:
                self._queue.task_done()
            self._progress.set()

    async def _store(self, batch: list[SwitchEvent]) -> None:
        if not batch:
            return
        delay = 0.1
        while True:
            try:
                await self.ingest.store_batch(batch)
                self.batches += 1
                return
            except NotLeader as exc:
                # Deposed: the new leader reads the switch now (and resyncs); these are not ours to write.
                self.fenced += len(batch)
                self.log.warning("switch events not stored: no longer the leader", events=len(batch), reason=str(exc))
                return
            except Exception as exc:
                if not _unreachable(exc):
                    refused = exc
                    break
                self.log.warning("database unreachable; holding switch events", pending=len(batch), error=str(exc))
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry_max_seconds)
        if len(batch) > 1:
            for event in batch:  # find the event at fault; the others are stored
                await self._store([event])
            return
        self.failed += 1
        self.log.error(
            "switch event could not be stored", call_ref=batch[0].call_ref, key=batch[0].key, error=repr(refused)
        )


def _unreachable(exc: Exception) -> bool:
    """A failure of the connection (retry later), not of the data (would fail again)."""
    if isinstance(exc, OperationalError | InterfaceError | OSError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated

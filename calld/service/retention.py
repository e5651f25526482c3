"""Retention: what calld forgets, and when (``[retention]``).

Each run, in small transactions (``batch_size`` rows each, so switch ingest and requests wait at
most one batch on SQLite's single writer):

1. recordings of calls started more than ``recordings_days`` ago: files removed (inside the
   recording directories), rows marked deleted, transcripts cleared (as ``DELETE`` of a recording);
2. calls started more than ``calls_days`` ago that have ended: their recordings as above, then the
   calls with their events and recordings. Each is marked ``purging`` first, so the statistics
   rollup keeps their counts (migration 0016): statistics over purged periods answer as before;
3. webhook deliveries created more than ``webhook_deliveries_days`` ago that are delivered or dead;
4. numbers of calls started more than ``pseudonymise_days`` ago that have ended: caller, recipient,
   transfer target, the numbers as presented, who answered, and the parties' numbers and caller ID
   names replaced by their keyed hash (``calld.domain.privacy``; the same number is the same token, so
   per-number reports still group; the PBX's extensions stay), and every event metadata value equal to
   one of them likewise.

0 days keeps that kind for ever. ``dry_run`` counts what a run would remove and changes nothing.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from calld.config import RetentionConfig
from calld.domain.call_filter import CallFilter
from calld.domain.delivery import DeliveryStatus
from calld.domain.privacy import pseudonyms
from calld.service.live_feed import LiveHub, call_message
from calld.service.recording_files import RecordingFiles
from calld.storage.database import Database
from calld.storage.models import CallEvent, CallLog, CallParticipant, WebhookDelivery

KINDS = ("recordings", "calls", "webhook_deliveries", "pseudonymised")


@dataclass(frozen=True, slots=True)
class RetentionReport:
    """What one run removed or changed (or, dry, would have); ``files_removed`` of the recordings."""

    dry_run: bool
    recordings: int = 0
    files_removed: int = 0
    calls: int = 0
    webhook_deliveries: int = 0
    pseudonymised: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _ended_before(cutoff: datetime) -> list[sa.ColumnElement[bool]]:
    return [CallLog.started_at < cutoff, CallLog.ended_at.is_not(None)]


def _replace_values(value: Any, tokens: dict[str, str]) -> Any:
    """``value`` with every string equal to a key of ``tokens`` replaced by its token, at any depth."""
    if isinstance(value, str):
        return tokens.get(value, value)
    if isinstance(value, list):
        return [_replace_values(v, tokens) for v in value]
    if isinstance(value, dict):
        return {k: _replace_values(v, tokens) for k, v in value.items()}
    return value


class Retention:
    """Runs ``settings`` against the database, ``now`` from ``clock``."""

    def __init__(
        self,
        db: Database,
        files: RecordingFiles,
        settings: RetentionConfig,
        clock: Callable[[], datetime],
        key: bytes | None = None,
        live: LiveHub | None = None,
    ) -> None:
        self.db = db
        self.live = live
        self.files = files
        self.settings = settings
        self.clock = clock
        self.key = key
        if settings.pseudonymise_days and key is None:
            raise ValueError("pseudonymising numbers needs the pseudonym key")

    @property
    def enabled(self) -> bool:
        s = self.settings
        return any((s.calls_days, s.recordings_days, s.webhook_deliveries_days, s.pseudonymise_days))

    def _cutoff(self, days: int) -> datetime | None:
        return self.clock() - timedelta(days=days) if days else None

    async def run(self, *, dry_run: bool = False) -> RetentionReport:
        """One pass over every kind, oldest first, until nothing more is due."""
        s = self.settings
        recordings_cutoff, calls_cutoff = self._cutoff(s.recordings_days), self._cutoff(s.calls_days)
        deliveries_cutoff, names_cutoff = self._cutoff(s.webhook_deliveries_days), self._cutoff(s.pseudonymise_days)
        # A call's recordings go before the call, files included (the cascade would leave the files).
        recordings_before = max((c for c in (recordings_cutoff, calls_cutoff) if c is not None), default=None)
        if dry_run:
            return await self._count(recordings_before, calls_cutoff, deliveries_cutoff, names_cutoff)
        found: dict[str, int] = dict.fromkeys((*KINDS, "files_removed"), 0)
        if recordings_before is not None:
            done = await self.files.delete_matching(CallFilter(started_before=recordings_before))
            found["recordings"], found["files_removed"] = done["recordings"], done["removed"]
        if calls_cutoff is not None:
            found["calls"] = await self._in_batches(lambda session: self._purge_calls(session, calls_cutoff))
        if deliveries_cutoff is not None:
            found["webhook_deliveries"] = await self._in_batches(
                lambda session: self._purge_deliveries(session, deliveries_cutoff)
            )
        if names_cutoff is not None:
            found["pseudonymised"] = await self._in_batches(lambda session: self._pseudonymise(session, names_cutoff))
        return RetentionReport(dry_run=False, **found)

    async def _in_batches(self, step: Callable[[AsyncSession], Any]) -> int:
        total = 0
        while True:
            async with self.db.write() as session:
                done: int = await step(session)
            total += done
            if done < self.settings.batch_size:
                return total
            await asyncio.sleep(0)  # let requests and ingest in between batches

    async def _ids(self, session: AsyncSession, stmt: sa.Select[Any]) -> list[Any]:
        # Several calld instances on one PostgreSQL database share the work: rows another one is
        # removing are skipped, not waited for (SQLite has one writer: no-op there).
        stmt = stmt.limit(self.settings.batch_size).with_for_update(skip_locked=True)
        return list((await session.execute(stmt)).scalars())

    async def _purge_calls(self, session: AsyncSession, cutoff: datetime) -> int:
        ids = await self._ids(session, sa.select(CallLog.id).where(*_ended_before(cutoff)).order_by(CallLog.started_at))
        if ids:
            self._announce_deleted(session, await session.execute(sa.select(CallLog).where(CallLog.id.in_(ids))))
            # Marked first: the rollup's delete trigger then keeps their counts (migration 0016).
            await session.execute(
                sa.update(CallLog).where(CallLog.id.in_(ids)).values(purging=True),
                execution_options={"synchronize_session": False},
            )
            await session.execute(
                sa.delete(CallLog).where(CallLog.id.in_(ids)), execution_options={"synchronize_session": False}
            )
        return len(ids)

    def _announce_deleted(self, session: AsyncSession, found: sa.Result[Any]) -> None:
        """Live clients hear of each purged call as of one deleted through the API (once it commits)."""
        if self.live is None or (not self.live.subscribers and self.live.relay is None):
            return  # nobody here listens, and no other instance is told
        for call in found.scalars():
            self.live.after_commit(session, call_message("call.deleted", call))

    async def _purge_deliveries(self, session: AsyncSession, cutoff: datetime) -> int:
        stmt = (
            sa.select(WebhookDelivery.id)
            .where(WebhookDelivery.created_at < cutoff, WebhookDelivery.status != DeliveryStatus.PENDING)
            .order_by(WebhookDelivery.id)
        )
        ids = await self._ids(session, stmt)
        if ids:
            await session.execute(
                sa.delete(WebhookDelivery).where(WebhookDelivery.id.in_(ids)),
                execution_options={"synchronize_session": False},
            )
        return len(ids)

    async def _pseudonymise(self, session: AsyncSession, cutoff: datetime) -> int:
        assert self.key is not None
        stmt = (
            sa.select(CallLog)
            .where(*_ended_before(cutoff), CallLog.pseudonymised_at.is_(None))
            .order_by(CallLog.started_at)
            .limit(self.settings.batch_size)
            .with_for_update(skip_locked=True)
        )
        calls: Sequence[CallLog] = (await session.execute(stmt)).scalars().all()
        now = self.clock()
        ids = [call.id for call in calls]
        parties: dict[uuid.UUID, list[CallParticipant]] = {}
        if ids:
            found = await session.execute(sa.select(CallParticipant).where(CallParticipant.call_id.in_(ids)))
            for party in found.scalars():
                parties.setdefault(party.call_id, []).append(party)
        tokens_of: dict[uuid.UUID, dict[str, str]] = {}
        for call in calls:
            own = parties.get(call.id, [])
            tokens = pseudonyms(
                self.key,
                [
                    call.caller_number,
                    call.recipient_number,
                    call.transfer_target,
                    call.caller_number_raw,
                    call.recipient_number_raw,
                    *(party.number for party in own),
                    *(party.name for party in own),
                ],
            )
            tokens_of[call.id] = tokens
            call.caller_number = tokens.get(call.caller_number, call.caller_number)
            call.recipient_number = tokens.get(call.recipient_number, call.recipient_number)
            for name in ("transfer_target", "caller_number_raw", "recipient_number_raw", "answered_by"):
                value = getattr(call, name)
                if value:
                    setattr(call, name, tokens.get(value, value))
            for party in own:
                party.number = tokens.get(party.number, party.number)
                party.name = tokens.get(party.name, party.name)
            call.pseudonymised_at = now
        if tokens_of:
            events = await session.execute(sa.select(CallEvent).where(CallEvent.call_id.in_(list(tokens_of))))
            for event in events.scalars():
                changed = _replace_values(event.meta, tokens_of[event.call_id])
                if changed != event.meta:
                    event.meta = changed
        return len(calls)

    async def _count(
        self,
        recordings_before: datetime | None,
        calls_cutoff: datetime | None,
        deliveries_cutoff: datetime | None,
        names_cutoff: datetime | None,
    ) -> RetentionReport:
        found: dict[str, int] = {}
        if recordings_before is not None:
            found["recordings"] = await self.files.count_matching(CallFilter(started_before=recordings_before))
        async with self.db.read() as session:

            async def count(*where: sa.ColumnElement[bool], model: Any = CallLog) -> int:
                stmt = sa.select(sa.func.count()).select_from(model).where(*where)
                return int((await session.execute(stmt)).scalar_one())

            if calls_cutoff is not None:
                found["calls"] = await count(*_ended_before(calls_cutoff))
            if deliveries_cutoff is not None:
                found["webhook_deliveries"] = await count(
                    WebhookDelivery.created_at < deliveries_cutoff,
                    WebhookDelivery.status != DeliveryStatus.PENDING,
                    model=WebhookDelivery,
                )
            if names_cutoff is not None:
                found["pseudonymised"] = await count(*_ended_before(names_cutoff), CallLog.pseudonymised_at.is_(None))
        return RetentionReport(dry_run=True, **found)


def purge_summary(settings: RetentionConfig, report: RetentionReport) -> str:
    """One line of what a run did (or would do), each kind with its age limit."""
    parts = []
    recordings_days = (
        min(d for d in (settings.recordings_days, settings.calls_days) if d)
        if (settings.recordings_days or settings.calls_days)
        else 0
    )
    if recordings_days:
        files = "" if report.dry_run else f" ({report.files_removed} files removed)"
        parts.append(f"{report.recordings} recordings{files} of calls older than {recordings_days} days")
    if settings.calls_days:
        parts.append(f"{report.calls} ended calls older than {settings.calls_days} days")
    if settings.webhook_deliveries_days:
        parts.append(
            f"{report.webhook_deliveries} delivered or dead webhook deliveries older than "
            f"{settings.webhook_deliveries_days} days"
        )
    if settings.pseudonymise_days:
        parts.append(f"numbers of {report.pseudonymised} calls older than {settings.pseudonymise_days} days")
    return "; ".join(parts)

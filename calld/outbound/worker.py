"""The delivery worker: sends due outbox rows to their subscriptions, signed, retried with backoff.

A row is *claimed* by moving its ``next_attempt_at`` a lease into the future before it is sent, so
another calld instance on the same database (or this one after a crash) leaves it alone while it is
in flight and takes it up again if the lease runs out. Only the oldest pending row of each
(subscription, call) is ever due, so one call's events reach a receiver in order. Every send is
its own task with a timeout: a slow or dead receiver holds up only its own rows, never ingestion.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import sqlalchemy as sa
import structlog
from sqlalchemy.orm import aliased

from calld import signing
from calld.config import OutboundWebhooksConfig
from calld.domain.delivery import DeliveryStatus, retry_delay
from calld.egress import EgressPolicy
from calld.storage.calls import Clock, system_clock
from calld.storage.database import Database
from calld.storage.models import WebhookDelivery, WebhookSubscription

DELIVERY_HEADER = "Calld-Delivery"
EVENT_HEADER = "Calld-Event"
# Beyond the send timeout, time for the result to be written before another claimant may retry.
LEASE_MARGIN = timedelta(seconds=30)
MAX_ERROR_LENGTH = 500


@dataclass(frozen=True, slots=True)
class Claimed:
    """What is needed to send one claimed row (read in the claiming transaction)."""

    id: int
    delivery_id: uuid.UUID
    event_type: str
    url: str
    secret: str
    payload: dict[str, Any]


class DeliveryWorker:
    """Runs until cancelled; ``wake()`` makes it look for due rows now."""

    def __init__(
        self,
        db: Database,
        settings: OutboundWebhooksConfig,
        *,
        clock: Clock = system_clock,
        rand: random.Random | None = None,
        logger: Any = None,
        egress: EgressPolicy | None = None,
    ) -> None:
        """``egress``: where deliveries may connect (None: public addresses only)."""
        self.db = db
        self.egress = egress if egress is not None else EgressPolicy()
        self.settings = settings
        self.clock = clock
        self.rand = rand or random.Random()
        self.log = logger if logger is not None else structlog.get_logger("calld.outbound")
        self._wake = asyncio.Event()
        self._closing = False
        self._grace = 0.0
        self._in_flight: dict[int, asyncio.Task[None]] = {}
        self._lease = timedelta(seconds=settings.timeout_seconds) + LEASE_MARGIN

    def wake(self) -> None:
        self._wake.set()

    def close(self, grace_seconds: float = 0.0) -> None:
        """Make ``run`` return at its next turn, claiming nothing new; sends in progress get up to
        ``grace_seconds`` to finish (cancel its task as well to cut them short at once)."""
        self._closing = True
        self._grace = grace_seconds
        self.wake()

    async def run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self.settings.timeout_seconds)
        # Every connection's address is checked as it is opened (after DNS, so rebinding is caught).
        connector = aiohttp.TCPConnector(socket_factory=self.egress.socket_factory)
        async with aiohttp.ClientSession(
            timeout=timeout, headers={"User-Agent": "calld-webhooks/1"}, connector=connector
        ) as http:
            try:
                while not self._closing:
                    self._wake.clear()
                    try:
                        for row in await self._claim_due():
                            self._start(http, row)
                        idle = await self._idle_seconds()
                    except Exception:
                        # The database may be briefly unreachable (PostgreSQL restarting): try again later.
                        self.log.exception("webhook delivery worker could not read the outbox")
                        idle = self.settings.poll_interval_seconds
                    # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
                    # arrives as the wake-up does, and stop() would wait forever.
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(idle):
                            await self._wake.wait()
            finally:
                if self._closing and self._grace > 0 and self._in_flight:
                    # Stopping: a send under way is most likely answered in a moment.
                    with contextlib.suppress(asyncio.CancelledError):
                        await asyncio.wait(list(self._in_flight.values()), timeout=self._grace)
                await self._abandon_in_flight()

    def _start(self, http: aiohttp.ClientSession, row: Claimed) -> None:
        task = asyncio.create_task(self._send(http, row), name=f"delivery-{row.id}")
        self._in_flight[row.id] = task
        task.add_done_callback(lambda _task: self._finished(row.id))

    def _finished(self, row_id: int) -> None:
        self._in_flight.pop(row_id, None)
        self.wake()  # the next row of its call may be due now, and a slot is free

    async def _claim_due(self) -> list[Claimed]:
        room = self.settings.concurrency - len(self._in_flight)
        if room <= 0:
            return []
        now = self.clock()
        d = WebhookDelivery
        earlier = aliased(WebhookDelivery)
        older_pending = (
            sa.select(earlier.id)
            .where(
                earlier.subscription_id == d.subscription_id,
                earlier.call_id == d.call_id,
                earlier.status == DeliveryStatus.PENDING,
                earlier.id < d.id,
            )
            .exists()
        )
        stmt = (
            sa.select(d, WebhookSubscription.url, WebhookSubscription.secret)
            .join(WebhookSubscription, WebhookSubscription.id == d.subscription_id)
            .where(
                d.status == DeliveryStatus.PENDING,
                d.next_attempt_at <= now,
                WebhookSubscription.active.is_(True),
                ~older_pending,
            )
            .order_by(d.id)
            .limit(room)
            .with_for_update(of=d, skip_locked=True)
        )
        if self._in_flight:
            stmt = stmt.where(d.id.not_in(list(self._in_flight)))
        async with self.db.write() as session:
            claimed: list[Claimed] = []
            for row, url, secret in (await session.execute(stmt)).all():
                row.next_attempt_at = now + self._lease
                claimed.append(Claimed(row.id, row.delivery_id, row.event_type, url, secret, dict(row.payload)))
        return claimed

    async def _idle_seconds(self) -> float:
        """Until the next pending row falls due, but never longer than the poll interval."""
        poll = self.settings.poll_interval_seconds
        async with self.db.read() as session:
            stmt = sa.select(sa.func.min(WebhookDelivery.next_attempt_at)).where(
                WebhookDelivery.status == DeliveryStatus.PENDING,
                WebhookDelivery.id.not_in(list(self._in_flight)) if self._in_flight else sa.true(),
            )
            soonest: datetime | None = (await session.execute(stmt)).scalar_one_or_none()
        if soonest is None:
            return poll
        return min(poll, max(0.0, (soonest - self.clock()).total_seconds()) + 0.001)

    async def _send(self, http: aiohttp.ClientSession, row: Claimed) -> None:
        body = json.dumps(row.payload, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            signing.SIGNATURE_HEADER: signing.sign(row.secret, body, self.clock()),
            DELIVERY_HEADER: str(row.delivery_id),
            EVENT_HEADER: row.event_type,
        }
        status: int | None = None
        error: str | None = None
        try:
            async with http.post(row.url, data=body, headers=headers, allow_redirects=False) as resp:
                status = resp.status
            if not 200 <= status < 300:
                error = f"HTTP {status}"
        except TimeoutError:
            error = f"no answer within {self.settings.timeout_seconds:g} s"
        except aiohttp.ClientError as exc:
            error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_LENGTH]
        await self._record(row, status, error)

    async def _record(self, row: Claimed, status: int | None, error: str | None) -> None:
        now = self.clock()
        async with self.db.write() as session:
            stored = await session.get(WebhookDelivery, row.id, with_for_update=True)
            if stored is None or stored.status is not DeliveryStatus.PENDING:
                return  # deleted with its subscription meanwhile
            stored.attempts += 1
            stored.last_attempt_at = now
            stored.last_status_code = status
            stored.last_error = error
            if error is None:
                stored.status = DeliveryStatus.DELIVERED
                stored.delivered_at = now
            elif stored.attempts >= self.settings.max_attempts:
                stored.status = DeliveryStatus.DEAD
            else:
                s = self.settings
                delay = retry_delay(stored.attempts, s.backoff_base_seconds, s.backoff_max_seconds, self.rand)
                stored.next_attempt_at = now + timedelta(seconds=delay)
            outcome, attempts = stored.status, stored.attempts
        log = self.log.info if error is None else self.log.warning
        log(
            "webhook delivery attempt",
            delivery_id=str(row.delivery_id),
            call_id=row.payload.get("call", {}).get("id"),
            event_type=row.event_type,
            attempt=attempts,
            outcome=outcome.value,
            http_status=status,
            error=error,
        )

    async def _abandon_in_flight(self) -> None:
        """On stop: cancel sends in progress and hand their rows back at once (not after the lease)."""
        tasks = list(self._in_flight.values())
        ids = list(self._in_flight)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if ids:
            await self._release(ids)

    async def _release(self, ids: Sequence[int]) -> None:
        async with self.db.write() as session:
            await session.execute(
                sa.update(WebhookDelivery)
                .where(WebhookDelivery.id.in_(ids), WebhookDelivery.status == DeliveryStatus.PENDING)
                .values(next_attempt_at=self.clock())
            )

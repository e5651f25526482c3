"""Outbound webhook subscriptions and their deliveries."""

from __future__ import annotations

import secrets
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from calld.domain.delivery import DeliveryStatus
from calld.domain.errors import NotFound
from calld.outbound.outbox import Outbox
from calld.service.views import delivery_json, subscription_json
from calld.storage.database import Database
from calld.storage.models import WebhookDelivery, WebhookSubscription

WHAT = "webhook subscription"


async def _load(session: AsyncSession, sub_id: uuid.UUID) -> WebhookSubscription:
    sub = await session.get(WebhookSubscription, sub_id)
    if sub is None:
        raise NotFound(WHAT, value=sub_id)
    return sub


async def _count(session: AsyncSession, stmt: sa.Select[Any]) -> int:
    return int((await session.execute(sa.select(sa.func.count()).select_from(stmt.subquery()))).scalar_one())


class SubscriptionService:
    """Subscriptions (the secret is shown once, when created) and their deliveries; the outbox's
    worker is woken when deliveries become due."""

    def __init__(self, db: Database, outbox: Outbox) -> None:
        self.db = db
        self.outbox = outbox

    async def page(self, active: bool | None, *, limit: int, offset: int) -> tuple[int, list[dict[str, Any]]]:
        """Subscriptions, oldest first."""
        stmt = sa.select(WebhookSubscription)
        if active is not None:
            stmt = stmt.where(WebhookSubscription.active.is_(active))
        async with self.db.read() as session:
            count = await _count(session, stmt)
            ordered = stmt.order_by(WebhookSubscription.created_at, WebhookSubscription.id).limit(limit).offset(offset)
            return count, [subscription_json(s) for s in (await session.execute(ordered)).scalars()]

    async def create(self, values: dict[str, Any]) -> dict[str, Any]:
        """The new subscription, with its secret (generated unless given), this once."""
        values = {"secret": secrets.token_urlsafe(32), "event_types": [], **values}
        async with self.db.write() as session:
            sub = WebhookSubscription(id=uuid.uuid4(), **values)
            session.add(sub)
            await session.flush()
            body = {**subscription_json(sub), "secret": sub.secret}
        self.outbox.subscriptions_changed()
        return body

    async def get(self, sub_id: uuid.UUID) -> dict[str, Any]:
        async with self.db.read() as session:
            return subscription_json(await _load(session, sub_id))

    async def change(self, sub_id: uuid.UUID, values: dict[str, Any]) -> dict[str, Any]:
        """Change the fields given (``secret`` rotates it)."""
        async with self.db.write() as session:
            sub = await _load(session, sub_id)
            for name, value in values.items():
                setattr(sub, name, value)
            await session.flush()
            body = subscription_json(sub)
        self.outbox.subscriptions_changed()
        if values.get("active"):
            self.outbox.wake()  # deliveries held while it was paused are due now
        return body

    async def delete(self, sub_id: uuid.UUID) -> None:
        """Delete it with its deliveries."""
        async with self.db.write() as session:
            await session.delete(await _load(session, sub_id))
        self.outbox.subscriptions_changed()

    async def deliveries(
        self, sub_id: uuid.UUID, status: DeliveryStatus | None, *, limit: int, offset: int
    ) -> tuple[int, list[dict[str, Any]]]:
        """Its deliveries, newest first."""
        stmt = sa.select(WebhookDelivery).where(WebhookDelivery.subscription_id == sub_id)
        if status is not None:
            stmt = stmt.where(WebhookDelivery.status == status)
        async with self.db.read() as session:
            await _load(session, sub_id)
            count = await _count(session, stmt)
            rows = await session.execute(stmt.order_by(WebhookDelivery.id.desc()).limit(limit).offset(offset))
            return count, [delivery_json(r) for r in rows.scalars()]

    async def redeliver(self, sub_id: uuid.UUID, delivery_id: uuid.UUID) -> dict[str, Any]:
        """Make a delivery pending again, due now, with a fresh budget of tries."""
        async with self.db.write() as session:
            stmt = sa.select(WebhookDelivery).where(
                WebhookDelivery.subscription_id == sub_id, WebhookDelivery.delivery_id == delivery_id
            )
            row = (await session.execute(stmt.with_for_update())).scalar_one_or_none()
            if row is None:
                raise NotFound("delivery of this subscription", "delivery_id", delivery_id)
            if row.status is not DeliveryStatus.PENDING:
                # A pending row may be in flight; it is due anyway, so only finished ones are reset.
                row.status = DeliveryStatus.PENDING
                row.attempts = 0
                row.delivered_at = None
                row.next_attempt_at = self.outbox.clock()
            body = delivery_json(row)
        self.outbox.wake()
        return body

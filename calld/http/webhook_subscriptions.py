"""Outbound webhook subscriptions and their deliveries (admin scope).

``/api/webhook-subscriptions/`` (list, create), ``/{id}/`` (read, change, delete),
``/{id}/deliveries/`` (what was sent or is waiting, newest first) and
``/{id}/deliveries/{delivery_id}/redeliver/`` (send one again, with a fresh budget of tries).
The secret is answered once, when the subscription is created, and never again.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import sqlalchemy as sa
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from calld.domain.delivery import DeliveryStatus
from calld.domain.vocabulary import EventType
from calld.egress import EgressPolicy
from calld.http.context import services
from calld.http.errors import not_found, read_json_object
from calld.http.pagination import page_json, page_window
from calld.http.routing import OUTBOUND, Op, Routes
from calld.http.schema import ACTIVE, PAGING, choice, query
from calld.http.validation import Fields, is_http_url, path_uuid
from calld.service.views import iso
from calld.storage.models import WebhookDelivery, WebhookSubscription

BASE = "/api/webhook-subscriptions/"
WHAT = "webhook subscription"
FIELDS = ("url", "secret", "event_types", "active", "description")
MIN_SECRET = 16
# What the API shows in place of the credentials in a subscription URL.
MASKED = "***@"


routes = Routes()


def shown_url(url: str) -> str:
    """``url`` as the API shows it: credentials in it are write-only, like the secret
    (``https://user:pass@host/`` reads ``https://***@host/``)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=MASKED + parts.netloc.rpartition("@")[2]))


def subscription_json(sub: WebhookSubscription) -> dict[str, Any]:
    return {
        "id": str(sub.id),
        "url": shown_url(sub.url),
        "event_types": list(sub.event_types),
        "active": sub.active,
        "description": sub.description,
        "created_at": iso(sub.created_at),
        "updated_at": iso(sub.updated_at),
    }


def delivery_json(row: WebhookDelivery) -> dict[str, Any]:
    return {
        "id": str(row.delivery_id),
        "subscription": str(row.subscription_id),
        "call": str(row.call_id),
        "event": row.event_id,
        "event_type": row.event_type,
        "status": row.status.value,
        "attempts": row.attempts,
        "next_attempt_at": iso(row.next_attempt_at) if row.status is DeliveryStatus.PENDING else None,
        "last_attempt_at": iso(row.last_attempt_at),
        "last_status_code": row.last_status_code,
        "last_error": row.last_error,
        "delivered_at": iso(row.delivered_at),
        "created_at": iso(row.created_at),
        "payload": row.payload,
    }


def read_subscription(body: Mapping[str, Any], *, partial: bool, egress: EgressPolicy) -> dict[str, Any]:
    """The fields given, validated (one 422 naming every bad one); on create ``url`` is required.
    A URL whose host is an address ``egress`` refuses is refused now; a name is checked at each send."""
    f = Fields(body, allowed=FIELDS)
    values: dict[str, Any] = {}
    url = f.string("url", required=not partial, max_length=2048)
    if url is not None and not is_http_url(url):
        f.fail("url", "must be an absolute http or https URL")
    elif url is not None:
        problem = egress.host_problem(urlsplit(url).hostname or "")
        if problem is not None:
            f.fail("url", f"refused by the egress policy: {problem}")
        elif urlsplit(url).netloc.startswith(MASKED):
            f.fail("url", "carries the masked credentials shown by GET; send the URL with its real credentials")
    secret = f.string("secret", max_length=255)
    if secret is not None and len(secret) < MIN_SECRET:
        f.fail("secret", f"must be at least {MIN_SECRET} characters")
    kinds = f.string_list("event_types", max_items=len(EventType))
    if kinds is not None:
        unknown = sorted(set(kinds) - {e.value for e in EventType})
        if unknown:
            allowed = ", ".join(e.value for e in EventType)
            f.fail("event_types", f"unknown event type(s) {', '.join(unknown)}; allowed: {allowed}")
        kinds = list(dict.fromkeys(kinds))
    active = f.boolean("active")
    description = f.string("description", max_length=200, blank=True)
    f.done()
    for name, value in (
        ("url", url),
        ("secret", secret),
        ("event_types", kinds),
        ("active", active),
        ("description", description),
    ):
        if value is not None:
            values[name] = value
    return values


async def _load(session: AsyncSession, sub_id: uuid.UUID) -> WebhookSubscription:
    sub = await session.get(WebhookSubscription, sub_id)
    if sub is None:
        raise not_found(WHAT, value=sub_id)
    return sub


@routes.get(
    BASE, Op(OUTBOUND, "List webhook subscriptions", {200: "WebhookSubscriptionPage"}, params=(ACTIVE, *PAGING))
)
async def list_subscriptions(request: web.Request) -> web.Response:
    """``GET /api/webhook-subscriptions/?active=&limit=&offset=``, oldest first."""
    svc = services(request)
    fields = Fields(request.query, query=True, allowed=("limit", "offset", "active"))
    limit, offset = page_window(fields)
    active = fields.boolean("active")
    fields.done()
    stmt = sa.select(WebhookSubscription)
    if active is not None:
        stmt = stmt.where(WebhookSubscription.active.is_(active))
    async with svc.db.read() as session:
        count = (await session.execute(sa.select(sa.func.count()).select_from(stmt.subquery()))).scalar_one()
        ordered = stmt.order_by(WebhookSubscription.created_at, WebhookSubscription.id).limit(limit).offset(offset)
        rows = (await session.execute(ordered)).scalars()
        results = [subscription_json(s) for s in rows]
    return web.json_response(page_json(request, count, results, limit, offset))


@routes.post(BASE, Op(OUTBOUND, "Subscribe", {201: "WebhookSubscriptionCreated"}, "WebhookSubscriptionCreate"))
async def create_subscription(request: web.Request) -> web.Response:
    """``POST /api/webhook-subscriptions/`` → 201; the answer carries the secret, this once."""
    svc = services(request)
    values = read_subscription(await read_json_object(request), partial=False, egress=svc.config.egress.policy)
    values.setdefault("secret", secrets.token_urlsafe(32))
    values.setdefault("event_types", [])
    async with svc.db.write() as session:
        sub = WebhookSubscription(id=uuid.uuid4(), **values)
        session.add(sub)
        await session.flush()
        body = {**subscription_json(sub), "secret": sub.secret}
    return web.json_response(body, status=201, headers={"Location": f"{BASE}{body['id']}/"})


@routes.get(BASE + "{id}/", Op(OUTBOUND, "A subscription", {200: "WebhookSubscription"}))
async def get_subscription(request: web.Request) -> web.Response:
    svc = services(request)
    sub_id = path_uuid(request.match_info["id"], WHAT)
    async with svc.db.read() as session:
        return web.json_response(subscription_json(await _load(session, sub_id)))


@routes.patch(
    BASE + "{id}/", Op(OUTBOUND, "Change a subscription", {200: "WebhookSubscription"}, "WebhookSubscriptionPatch")
)
async def patch_subscription(request: web.Request) -> web.Response:
    """``PATCH /api/webhook-subscriptions/{id}/``: change the fields given (``secret`` rotates it)."""
    svc = services(request)
    sub_id = path_uuid(request.match_info["id"], WHAT)
    values = read_subscription(await read_json_object(request), partial=True, egress=svc.config.egress.policy)
    async with svc.db.write() as session:
        sub = await _load(session, sub_id)
        for name, value in values.items():
            setattr(sub, name, value)
        await session.flush()
        body = subscription_json(sub)
    if values.get("active"):
        svc.outbox.wake()  # deliveries held while it was paused are due now
    return web.json_response(body)


@routes.delete(BASE + "{id}/", Op(OUTBOUND, "Delete a subscription and its deliveries", {204: None}))
async def delete_subscription(request: web.Request) -> web.Response:
    """``DELETE /api/webhook-subscriptions/{id}/`` → 204, with its deliveries."""
    svc = services(request)
    sub_id = path_uuid(request.match_info["id"], WHAT)
    async with svc.db.write() as session:
        await session.delete(await _load(session, sub_id))
    return web.Response(status=204)


@routes.get(
    BASE + "{id}/deliveries/",
    Op(
        OUTBOUND,
        "A subscription's deliveries, newest first",
        {200: "DeliveryPage"},
        params=(query("status", choice(DeliveryStatus)), *PAGING),
    ),
)
async def list_deliveries(request: web.Request) -> web.Response:
    """``GET /api/webhook-subscriptions/{id}/deliveries/?status=&limit=&offset=``, newest first."""
    svc = services(request)
    sub_id = path_uuid(request.match_info["id"], WHAT)
    fields = Fields(request.query, query=True, allowed=("limit", "offset", "status"))
    limit, offset = page_window(fields)
    status = fields.choice("status", DeliveryStatus)
    fields.done()
    stmt = sa.select(WebhookDelivery).where(WebhookDelivery.subscription_id == sub_id)
    if status is not None:
        stmt = stmt.where(WebhookDelivery.status == status)
    async with svc.db.read() as session:
        await _load(session, sub_id)
        count = (await session.execute(sa.select(sa.func.count()).select_from(stmt.subquery()))).scalar_one()
        rows = (await session.execute(stmt.order_by(WebhookDelivery.id.desc()).limit(limit).offset(offset))).scalars()
        results = [delivery_json(r) for r in rows]
    return web.json_response(page_json(request, count, results, limit, offset))


@routes.post(
    BASE + "{id}/deliveries/{delivery_id}/redeliver/",
    Op(OUTBOUND, "Send a delivery again, with a fresh budget of tries", {202: "Delivery"}),
)
async def redeliver(request: web.Request) -> web.Response:
    """``POST .../deliveries/{delivery_id}/redeliver/`` → 202: pending again, due now, tries reset."""
    svc = services(request)
    sub_id = path_uuid(request.match_info["id"], WHAT)
    delivery_id = path_uuid(request.match_info["delivery_id"], "delivery")
    async with svc.db.write() as session:
        stmt = sa.select(WebhookDelivery).where(
            WebhookDelivery.subscription_id == sub_id, WebhookDelivery.delivery_id == delivery_id
        )
        row = (await session.execute(stmt.with_for_update())).scalar_one_or_none()
        if row is None:
            raise not_found("delivery of this subscription", "delivery_id", delivery_id)
        if row.status is not DeliveryStatus.PENDING:
            # A pending row may be in flight; it is due anyway, so only finished ones are reset.
            row.status = DeliveryStatus.PENDING
            row.attempts = 0
            row.delivered_at = None
            row.next_attempt_at = svc.outbox.clock()
        body = delivery_json(row)
    svc.outbox.wake()
    return web.json_response(body, status=202)

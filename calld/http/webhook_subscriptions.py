"""Outbound webhook subscriptions and their deliveries (admin scope).

``/api/webhook-subscriptions/`` (list, create), ``/{id}/`` (read, change, delete),
``/{id}/deliveries/`` (what was sent or is waiting, newest first) and
``/{id}/deliveries/{delivery_id}/redeliver/`` (send one again, with a fresh budget of tries).
The secret is answered once, when the subscription is created, and never again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from calld.domain.delivery import SUBSCRIBABLE, DeliveryStatus
from calld.egress import EgressPolicy
from calld.http.context import services
from calld.http.errors import read_json_object
from calld.http.pagination import page_json, page_window
from calld.http.routing import OUTBOUND, Op, Routes
from calld.http.schema import ACTIVE, PAGING, choice, query
from calld.http.validation import Fields, is_http_url, path_uuid
from calld.service.views import MASKED

BASE = "/api/webhook-subscriptions/"
WHAT = "webhook subscription"
FIELDS = ("url", "secret", "event_types", "active", "description")
MIN_SECRET = 16


routes = Routes()


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
    kinds = f.string_list("event_types", max_items=len(SUBSCRIBABLE))
    if kinds is not None:
        unknown = sorted(set(kinds) - set(SUBSCRIBABLE))
        if unknown:
            allowed = ", ".join(SUBSCRIBABLE)
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


@routes.get(
    BASE, Op(OUTBOUND, "List webhook subscriptions", {200: "WebhookSubscriptionPage"}, params=(ACTIVE, *PAGING))
)
async def list_subscriptions(request: web.Request) -> web.Response:
    """``GET /api/webhook-subscriptions/?active=&limit=&offset=``, oldest first."""
    fields = Fields(request.query, query=True, allowed=("limit", "offset", "active"))
    limit, offset = page_window(fields)
    active = fields.boolean("active")
    fields.done()
    count, results = await services(request).subscriptions.page(active, limit=limit, offset=offset)
    return web.json_response(page_json(request, count, results, limit, offset))


@routes.post(BASE, Op(OUTBOUND, "Subscribe", {201: "WebhookSubscriptionCreated"}, "WebhookSubscriptionCreate"))
async def create_subscription(request: web.Request) -> web.Response:
    """``POST /api/webhook-subscriptions/`` → 201; the answer carries the secret, this once."""
    svc = services(request)
    values = read_subscription(await read_json_object(request), partial=False, egress=svc.config.egress.policy)
    body = await svc.subscriptions.create(values)
    return web.json_response(body, status=201, headers={"Location": f"{BASE}{body['id']}/"})


@routes.get(BASE + "{id}/", Op(OUTBOUND, "A subscription", {200: "WebhookSubscription"}))
async def get_subscription(request: web.Request) -> web.Response:
    sub_id = path_uuid(request.match_info["id"], WHAT)
    return web.json_response(await services(request).subscriptions.get(sub_id))


@routes.patch(
    BASE + "{id}/", Op(OUTBOUND, "Change a subscription", {200: "WebhookSubscription"}, "WebhookSubscriptionPatch")
)
async def patch_subscription(request: web.Request) -> web.Response:
    """``PATCH /api/webhook-subscriptions/{id}/``: change the fields given (``secret`` rotates it)."""
    svc = services(request)
    sub_id = path_uuid(request.match_info["id"], WHAT)
    values = read_subscription(await read_json_object(request), partial=True, egress=svc.config.egress.policy)
    return web.json_response(await svc.subscriptions.change(sub_id, values))


@routes.delete(BASE + "{id}/", Op(OUTBOUND, "Delete a subscription and its deliveries", {204: None}))
async def delete_subscription(request: web.Request) -> web.Response:
    """``DELETE /api/webhook-subscriptions/{id}/`` → 204, with its deliveries."""
    await services(request).subscriptions.delete(path_uuid(request.match_info["id"], WHAT))
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
    sub_id = path_uuid(request.match_info["id"], WHAT)
    fields = Fields(request.query, query=True, allowed=("limit", "offset", "status"))
    limit, offset = page_window(fields)
    status = fields.choice("status", DeliveryStatus)
    fields.done()
    count, results = await services(request).subscriptions.deliveries(sub_id, status, limit=limit, offset=offset)
    return web.json_response(page_json(request, count, results, limit, offset))


@routes.post(
    BASE + "{id}/deliveries/{delivery_id}/redeliver/",
    Op(OUTBOUND, "Send a delivery again, with a fresh budget of tries", {202: "Delivery"}),
)
async def redeliver(request: web.Request) -> web.Response:
    """``POST .../deliveries/{delivery_id}/redeliver/`` → 202: pending again, due now, tries reset."""
    sub_id = path_uuid(request.match_info["id"], WHAT)
    delivery_id = path_uuid(request.match_info["delivery_id"], "delivery")
    return web.json_response(await services(request).subscriptions.redeliver(sub_id, delivery_id), status=202)

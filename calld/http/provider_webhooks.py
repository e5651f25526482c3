"""``POST /api/webhooks/providers/{twilio,telnyx,vonage,plivo}/``: SIP providers' own webhooks.

Each delivery is verified with its provider's own scheme (``calld.providers.<name>``), read into
calld events and stored through the SIP webhook's use case (``calld.service.provider_events``: state machine,
order by time, de-duplication). A refused signature stores nothing (401); an event the call cannot
take as a status change is stored as ``provider_event`` with what the provider said.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import structlog
from aiohttp import web

from calld.config import WebhookSource
from calld.http.context import services
from calld.http.errors import ApiError
from calld.http.routing import INBOUND, Op, Routes
from calld.http.webhook_auth import address_allowed
from calld.providers import plivo, telnyx, twilio, vonage
from calld.providers.model import PayloadProblem, ProviderEvent, SignatureRejected, SignedRequest
from calld.providers.settings import PlivoSettings, TelnyxSettings, TwilioSettings, VonageSettings

PATH = "/api/webhooks/providers/{}/"
routes = Routes()


def _signed_url(request: web.Request, public_url: str) -> str:
    """The URL the provider signed: ``public_url`` (what it was given) with the request's own query."""
    if not public_url:
        return str(request.url)
    parts = urlsplit(public_url)
    return urlunsplit(parts._replace(query=request.query_string))


def read_events(
    settings: Any, request: SignedRequest, region: str | None, now: datetime, window: timedelta
) -> list[ProviderEvent]:
    """Verify ``request`` with the provider's scheme and read its events (pure)."""
    if isinstance(settings, TwilioSettings):
        return twilio.parse(twilio.verify(settings.auth_token, request), region, now, window)
    if isinstance(settings, TelnyxSettings):
        key = telnyx.public_key(settings.public_key)
        return telnyx.parse(telnyx.verify(key, request, now, window), region, now)
    if isinstance(settings, VonageSettings):
        return vonage.parse(vonage.verify(settings.signature_secret, request, now, window), region, now)
    if isinstance(settings, PlivoSettings):
        return plivo.parse(plivo.verify(settings.auth_token, request), region, now, window)
    raise AssertionError(f"no reader for {settings!r}")  # pragma: no cover


def provider_webhook(name: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    """The handler of provider ``name``'s endpoint."""

    async def handle(request: web.Request) -> web.Response:
        return await _deliver(request, name)

    return handle


# One route per provider (each refuses every delivery until configured).
for _name, _title, _body, _what in (
    ("twilio", "Twilio", "TwilioCallback", "status callback and recording status callback"),
    ("telnyx", "Telnyx", "TelnyxWebhook", "Call Control application's webhook URL"),
    ("vonage", "Vonage", "VonageEvent", "application's event URL (signed webhooks on)"),
    ("plivo", "Plivo", "PlivoCallback", "hangup, ring and recording callbacks"),
):
    routes.post(
        PATH.format(_name),
        Op(
            INBOUND,
            f"{_title}'s own webhook",
            {200: "ProviderWebhookResult"},
            _body,
            description=f"Point {_title}'s {_what} here. Verified with {_title}'s own signature; folded into the "
            "call whose SIP Call-ID is '<provider>:<the provider's call id>' (a child leg into its parent's "
            "call); an event the call's status cannot take is stored as provider_event.",
        ),
    )(provider_webhook(_name))


async def _deliver(request: web.Request, name: str) -> web.Response:
    """Verify, read and store one provider delivery."""
    svc = services(request)
    log = structlog.get_logger("calld.webhooks")
    settings = getattr(svc.config.webhooks.providers, name)
    if settings is None:
        # As an unconfigured [webhooks.sip] source: refused, saying what to configure.
        reason = f"{name} webhooks are off: configure [webhooks.providers.{name}]"
        log.warning("webhook rejected", source=name, reason=reason, remote=request.remote)
        raise ApiError(401, "webhook rejected", {"provider": reason})
    if not address_allowed(request.remote, WebhookSource(allow_ips=settings.allow_ips)):
        log.warning("webhook rejected", source=name, reason="address not allowed", remote=request.remote)
        raise ApiError(403, "webhook rejected", {"source": f"address {request.remote} may not deliver {name} webhooks"})
    signed = SignedRequest(
        method=request.method,
        url=_signed_url(request, getattr(settings, "public_url", "")),
        headers={key.lower(): value for key, value in request.headers.items()},
        body=await request.read(),
    )
    now = svc.calls.clock()
    window = timedelta(seconds=svc.config.webhooks.replay_window_seconds)
    try:
        events = read_events(settings, signed, svc.config.calls.default_region, now, window)
    except SignatureRejected as exc:
        log.warning("webhook rejected", source=name, reason=str(exc), remote=request.remote)
        raise ApiError(401, "webhook rejected", {"signature": str(exc)}) from None
    except PayloadProblem as exc:
        raise ApiError(422, "validation failed", {exc.field: exc.message}) from None
    stored = [await svc.provider_events.store(event) for event in events]
    calls = [answer["call"] for answer in stored if "call" in answer]
    return web.json_response({"provider": name, "call": calls[-1] if calls else None, "events": stored})

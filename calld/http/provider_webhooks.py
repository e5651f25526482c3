"""``POST /api/webhooks/providers/{twilio,telnyx,vonage,plivo}/``: SIP providers' own webhooks.

Each delivery is verified with its provider's own scheme (``calld.providers.<name>``), read into
calld events and stored through the SIP webhook's use case (``store_call_event``: state machine,
order by time, de-duplication). A refused signature stores nothing (401); an event the call cannot
take as a status change is stored as ``provider_event`` with what the provider said.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import structlog
from aiohttp import web

from calld.config import WebhookSource
from calld.domain.errors import IllegalTransition, InvalidValue
from calld.domain.vocabulary import EventType
from calld.http.context import Services, services
from calld.http.errors import ApiError
from calld.http.webhook_auth import address_allowed
from calld.http.webhooks import CallEventDelivery, store_call_event
from calld.providers import plivo, telnyx, twilio, vonage
from calld.providers.model import Attempt, PayloadProblem, ProviderEvent, SignatureRejected, SignedRequest
from calld.providers.settings import PROVIDER_SETTINGS, PlivoSettings, TelnyxSettings, TwilioSettings, VonageSettings
from calld.storage.calls import NewCall
from calld.storage.provider_recordings import keep_provider_recording

PATH = "/api/webhooks/providers/{}/"


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
    stored = [await _store(svc, event) for event in events]
    calls = [answer["call"] for answer in stored if "call" in answer]
    return web.json_response({"provider": name, "call": calls[-1] if calls else None, "events": stored})


async def _store(svc: Services, event: ProviderEvent) -> dict[str, Any]:
    """Store the first of the event's attempts the call takes, else the event as the provider said it."""
    reason = None
    for attempt in event.attempts:
        try:
            answer = await store_call_event(svc, _delivery(event, attempt, dict(attempt.metadata)))
        except (IllegalTransition, InvalidValue) as exc:
            reason = str(exc)
            continue
        return await _with_recording(svc, event, answer)
    if event.implied:  # derived only: the reported event it came with is stored
        return {"status": "not needed", "event_type": event.attempts[0].event_type.value}
    metadata = dict(event.metadata)
    if event.attempts:
        metadata.update(not_applied=event.attempts[0].event_type.value, reason=reason)
    fallback = Attempt(EventType.PROVIDER_EVENT, metadata)
    answer = await store_call_event(svc, _delivery(event, fallback, metadata))
    return await _with_recording(svc, event, answer)


def _delivery(event: ProviderEvent, attempt: Attempt, metadata: dict[str, Any]) -> CallEventDelivery:
    return CallEventDelivery(
        sip_call_id=event.sip_call_id,
        event_type=attempt.event_type,
        timestamp=event.timestamp,
        dedup_key=event.dedup_key,
        metadata=metadata,
        new_call=_new_call(event, attempt),
    )


def _new_call(event: ProviderEvent, attempt: Attempt) -> Callable[[], NewCall]:
    def new() -> NewCall:
        if event.caller is None or event.recipient is None:
            required = "the call is not known yet and this delivery does not name its parties"
            names = {"caller": event.caller, "recipient": event.recipient}
            raise ApiError(422, "validation failed", {name: required for name, value in names.items() if value is None})
        if attempt.event_type is EventType.INITIATED:
            metadata = dict(attempt.metadata)
        else:  # the start of a call first heard of through a later event is implied, not reported
            metadata = {
                "implied_by": str(event.metadata.get("provider_event", attempt.event_type.value)),
                "provider": event.provider,
                "provider_call_id": event.call_ref,
            }
        return NewCall(
            direction=event.direction,
            caller_number=event.caller,
            recipient_number=event.recipient,
            sip_call_id=event.sip_call_id,
            metadata=metadata,
        )

    return new


async def _with_recording(svc: Services, event: ProviderEvent, answer: dict[str, Any]) -> dict[str, Any]:
    if event.recording is None or answer.get("status") != "stored":
        return answer
    async with svc.db.write() as session:
        call = await svc.calls.get_for_update(session, uuid.UUID(answer["call"]))
        if call is not None:
            recording = await keep_provider_recording(session, call.id, event.recording)
            answer = {**answer, "recording": str(recording.id)}
    return answer


def add_routes(app: web.Application) -> None:
    """Register one route per provider on ``app`` (each refuses every delivery until configured)."""
    for name in PROVIDER_SETTINGS:
        app.router.add_post(PATH.format(name), provider_webhook(name))

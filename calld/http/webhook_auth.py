"""Who may deliver an inbound webhook: a configured source, from an allowed address, signed.

Every refusal is logged with the source and the reason and answered before the body is parsed,
so a forged delivery stores nothing.
"""

from __future__ import annotations

import ipaddress
from datetime import timedelta

import structlog
from aiohttp import web

from calld import signing
from calld.config import WebhookSource
from calld.http.context import services
from calld.http.errors import ApiError


def address_allowed(remote: str | None, source: WebhookSource) -> bool:
    """Whether ``remote`` is in the source's allowlist (an empty list allows every address)."""
    if not source.allow_ips:
        return True
    try:
        address = ipaddress.ip_address(remote or "")
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in net for net in source.networks)


async def verify_delivery(request: web.Request, name: str) -> None:
    """Refuse (401/403) a delivery to source ``name`` that is not signed with its secret or comes
    from outside its allowlist."""
    svc = services(request)
    source = svc.config.webhooks.source(name)
    remote = request.remote

    def refuse(status: int, field: str, reason: str) -> ApiError:
        structlog.get_logger("calld.webhooks").warning("webhook rejected", source=name, reason=reason, remote=remote)
        return ApiError(status, "webhook rejected", {field: reason})

    if source is None:
        raise refuse(401, "signature", f"the {name} webhook source has no secret configured ([webhooks.{name}])")
    if not address_allowed(remote, source):
        raise refuse(403, "source", f"address {remote} is not allowed to deliver {name} webhooks")
    window = timedelta(seconds=svc.config.webhooks.replay_window_seconds)
    body = await request.read()
    header = request.headers.get(signing.SIGNATURE_HEADER)
    try:
        signing.verify([source.secret], header, body, svc.calls.clock(), window)
    except signing.SignatureError as exc:
        raise refuse(401, "signature", str(exc)) from None

"""Bearer-token authentication and the scope every route needs.

The scope follows from the route, not from a list kept by hand, so a new route can never be left
open by being forgotten: SIP configurations, webhook subscriptions and tokens need ``admin``, other
reads ``read``, everything else ``write``. Inbound webhooks carry no bearer token; they are signed
by their source and checked in ``calld.http.webhooks``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from aiohttp import web

from calld.domain.scopes import Scope, TokenInfo
from calld.http.context import services
from calld.http.errors import ApiError, Handler
from calld.service.access import AccessCheck, AccessRefused, check_token

H = TypeVar("H", bound=Callable[..., Any])

ADMIN_PREFIXES = ("/api/sip-configurations/", "/api/webhook-subscriptions/", "/api/tokens/")
# Single routes that need admin where their neighbours do not: deleting recordings in bulk.
ADMIN_ROUTES = frozenset({("DELETE", "/api/call-logs/recordings/")})
SIGNED_PREFIXES = ("/api/webhooks/",)
# The API's own description and where to find it (calld.http.openapi), and what probes and scrapers poll
# (calld.http.observability): no call data in them, and those clients send no token.
# The console's files (calld.http.console) hold no data either: it signs in with a token afterwards.
PUBLIC_PATHS = frozenset({"/", "/api/openapi.json", "/api/docs", "/healthz", "/readyz", "/metrics", "/console/{file}"})
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Browsers cannot set headers on a WebSocket handshake, so that one route also takes the token here.
QUERY_TOKEN_PATHS = frozenset({"/api/ws"})
# What a browser phone reads under the admin-only SIP configurations: any token may, and what it is
# answered depends on the token (calld.service.sip_configurations: only a line's softphone gets its secret).
READABLE_UNDER_ADMIN = frozenset({"/api/sip-configurations/{id}/webrtc_config/"})
QUERY_TOKEN_PARAM = "access_token"

TOKEN_KEY = web.RequestKey("token", TokenInfo)


_PENDING = web.RequestKey("token_pending", AccessCheck)
_BUNDLES = "_calld_bundles_token_check"

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="calld"'}


def required_scope(method: str, path: str) -> Scope | None:
    """The scope a route (its path template) needs, or None for public routes and those authenticated otherwise."""
    if path.startswith(SIGNED_PREFIXES) or path in PUBLIC_PATHS:
        return None
    if path in READABLE_UNDER_ADMIN and method.upper() in READ_METHODS:
        return Scope.READ
    if path.startswith(ADMIN_PREFIXES) or (method.upper(), path) in ADMIN_ROUTES:
        return Scope.ADMIN
    return Scope.READ if method.upper() in READ_METHODS else Scope.WRITE


def presented_token(request: web.Request, path: str) -> str | None:
    """The bearer token the request carries, if any."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if path in QUERY_TOKEN_PATHS:
        return request.query.get(QUERY_TOKEN_PARAM) or None
    return None


def caller(request: web.Request) -> TokenInfo | None:
    """The token the request was authenticated with (None on routes that take none)."""
    return request.get(TOKEN_KEY)


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer 401 without a valid token and 403 when its scope is too small."""
    route = request.match_info.route
    if request.match_info.http_exception is not None or route.resource is None:
        return await handler(request)  # unknown path or method: the router's 404/405
    path = route.resource.canonical
    needed = required_scope(request.method, path)
    if needed is None:
        return await handler(request)
    token = presented_token(request, path)
    if token is None:
        raise ApiError(
            401,
            "authentication required",
            {"authorization": "send the header 'Authorization: Bearer <token>' (see `calld token create`)"},
            headers=_CHALLENGE,
        )
    if request.method in READ_METHODS and getattr(request.match_info.handler, _BUNDLES, False):
        return await _bundled(request, handler, AccessCheck(token, needed))
    _admit(request, await check_token(services(request).db, token), needed)
    return await handler(request)


def bundles_token_check(handler: H) -> H:
    """Mark a read-only handler whose one database read (given ``pending_check(request)`` as its guard)
    also checks the request's token: one database round trip (on SQLite one thread hop) less per request.

    The handler must do nothing but validate its input before that read: if it returns or fails
    without the check having run, the token is checked on its own afterwards and an invalid one still
    gets its 401/403 instead of the handler's answer."""
    setattr(handler, _BUNDLES, True)
    return handler


async def _bundled(request: web.Request, handler: Handler, pending: AccessCheck) -> web.StreamResponse:
    request[_PENDING] = pending
    try:
        response = await handler(request)
    except AccessRefused as refused:
        _admit(request, refused.check.info, pending.needed)
        raise AssertionError("unreachable: a refused check is not admitted") from None
    except Exception:
        await _check_if_pending(request)
        raise
    await _check_if_pending(request)
    return response


async def _check_if_pending(request: web.Request) -> None:
    pending = request.get(_PENDING)
    if pending is None:
        return
    info = pending.info if pending.ran else await check_token(services(request).db, pending.token)
    _admit(request, info, pending.needed)


def pending_check(request: web.Request) -> AccessCheck | None:
    """The token check a bundling handler (``bundles_token_check``) hands its read as its guard."""
    return request.get(_PENDING)


def _admit(request: web.Request, info: TokenInfo | None, needed: Scope) -> None:
    """Record the caller, or refuse: 401 for an unknown or revoked token, 403 for too small a scope."""
    request.pop(_PENDING, None)
    if info is None:
        raise ApiError(401, "invalid token", {"authorization": "unknown or revoked token"}, headers=_CHALLENGE)
    if not info.scope.allows(needed):
        raise ApiError(
            403,
            "insufficient scope",
            {"scope": f"this endpoint needs a token with the '{needed}' scope; this one has '{info.scope}'"},
        )
    request[TOKEN_KEY] = info

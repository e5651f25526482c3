"""``GET /api/ws``: a WebSocket that pushes call changes as JSON (read scope).

The token comes in the ``Authorization`` header or, since browsers cannot set headers on a
WebSocket, the ``access_token`` query parameter. ``call`` and ``client`` (repeatable or
comma-separated UUIDs) limit the pushes to those calls or those clients' calls (either matches).
The first message is ``{"type": "ready", ...}``; then ``call.created``, ``call.event``,
``call.updated`` and ``call.deleted`` messages follow, each with the call as the API shows it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import AsyncIterator

import structlog
from aiohttp import web
from multidict import MultiMapping

from calld.domain.scopes import Scope
from calld.http.auth import QUERY_TOKEN_PARAM, presented_token
from calld.http.context import SERVICES, services
from calld.http.errors import ApiError
from calld.http.routing import LIVE, Op, Routes
from calld.http.schema import UUID, several
from calld.http.validation import Fields
from calld.service.access import valid_tokens
from calld.service.live_feed import LiveHub, Subscriber

PATH = "/api/ws"
MAX_FILTER_IDS = 100
# Bounded so a client that stopped reading cannot hold its handler forever.
CLOSE_TIMEOUT_SECONDS = 2.0


LIVE_QUERY = (
    several("call", UUID, "Only these calls"),
    several("client", UUID, "Only these clients' calls"),
)
routes = Routes()


def read_filters(query: MultiMapping[str]) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
    """The ``call`` and ``client`` ids asked for (one 422 naming every bad one)."""
    fields = Fields(query, query=True, allowed=("call", "client", QUERY_TOKEN_PARAM))
    found: dict[str, list[uuid.UUID]] = {}
    for name in ("call", "client"):
        raw = [part.strip() for value in query.getall(name, []) for part in value.split(",") if part.strip()]
        if len(raw) > MAX_FILTER_IDS:
            fields.fail(name, f"at most {MAX_FILTER_IDS} ids")
        try:
            found[name] = [uuid.UUID(value) for value in raw]
        except ValueError:
            fields.fail(name, "must be UUIDs (repeat the parameter or separate them with commas)")
    fields.done()
    return found.get("call", []), found.get("client", [])


@routes.get(
    PATH,
    Op(
        LIVE,
        "Call changes pushed over a WebSocket",
        {101: None},
        params=LIVE_QUERY,
        errors={400: "not a WebSocket upgrade request"},
        description="Messages: ready, then call.created, call.event, call.updated, call.deleted, each with the "
        "call as the API shows it. A client too slow to keep up is closed with 1008; shutdown closes with 1001.",
    ),
    allow_head=False,
)
async def live_socket(request: web.Request) -> web.StreamResponse:
    svc = services(request)
    calls, clients = read_filters(request.query)
    settings = svc.config.live
    ws = web.WebSocketResponse(heartbeat=settings.heartbeat_seconds)
    if not ws.can_prepare(request).ok:
        raise ApiError(400, "WebSocket upgrade required", {"upgrade": "connect with a WebSocket client"})
    await ws.prepare(request)
    _bound_buffers(request, settings.max_buffered_bytes)
    sub = svc.live.subscribe(calls, clients, token=presented_token(request, PATH))
    pump = asyncio.create_task(_pump(request, ws, sub, svc.live, settings.send_timeout_seconds))
    sub.on_close = pump.cancel
    try:
        await ws.send_json({"type": "ready", "filters": {"calls": sorted(sub.calls), "clients": sorted(sub.clients)}})
        async for _message in ws:
            pass  # clients only listen; what they send is ignored
    finally:
        svc.live.unsubscribe(sub)
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pump
    return ws


async def _pump(
    request: web.Request, ws: web.WebSocketResponse, sub: Subscriber, hub: LiveHub, send_timeout: float
) -> None:
    """Send the subscriber's queue in order; when it is closed (too slow, shutdown) close the socket."""
    try:
        while True:
            message = await sub.queue.get()
            async with asyncio.timeout(send_timeout):
                await ws.send_json(message)
    except TimeoutError:
        hub.drop(sub, f"too slow: a message took more than {send_timeout:g} s to send")
    except asyncio.CancelledError:
        pass  # cancelled by the handler (client gone) or by ``sub.close`` (dropped, shutdown)
    except ConnectionError:
        return
    if sub.close_code is not None:
        await _close(request, ws, sub.close_code, sub.close_reason or "")


async def _close(request: web.Request, ws: web.WebSocketResponse, code: int, reason: str) -> None:
    try:
        async with asyncio.timeout(CLOSE_TIMEOUT_SECONDS):
            await ws.close(code=code, message=reason.encode()[:120])
    except TimeoutError:
        # The close frame cannot even be written (a client that stopped reading): cut the connection.
        if request.transport is not None:
            request.transport.abort()


def _bound_buffers(request: web.Request, limit: int) -> None:
    """Keep at most about ``limit`` bytes in flight to this client (kernel send buffer plus the
    transport's): a client that stops reading then makes sends wait at once, so the queue bound and
    the send timeout drop it, instead of the kernel absorbing megabytes per client first."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, limit)
    if isinstance(transport, asyncio.WriteTransport):
        transport.set_write_buffer_limits(high=limit)


async def watch_tokens(app: web.Application) -> AsyncIterator[None]:
    """While the app runs: every ``live.token_check_seconds`` re-check the tokens live clients
    connected with (one database read for all), and close the clients of any no longer valid
    (revoked by ``calld token revoke``, even from another process) with code 1008."""
    svc = app[SERVICES]
    log = structlog.get_logger("calld.service.live_feed")

    async def run() -> None:
        while True:
            await asyncio.sleep(svc.config.live.token_check_seconds)
            tokens = svc.live.tokens()
            if not tokens:
                continue
            try:
                valid = await valid_tokens(svc.db, tokens, Scope.READ)
            except Exception as exc:  # the database is away: check again next turn
                log.debug("live tokens not re-checked", error=str(exc))
                continue
            for token in tokens - valid:
                svc.live.revoke(token)

    task = asyncio.create_task(run(), name="live-token-check")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def close_all(app: web.Application) -> None:
    """On shutdown: tell every live client calld is going away."""
    app[SERVICES].live.close_all()


def add_lifecycle(app: web.Application) -> None:
    """Close live clients on shutdown and re-check their tokens while the app runs."""
    app.on_shutdown.append(close_all)
    app.cleanup_ctx.append(watch_tokens)

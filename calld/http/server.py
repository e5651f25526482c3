"""The listening socket: at most ``server.max_connections`` connections at once.

Every open connection holds a file descriptor; without a cap, idle or slow clients use them all
and calld can no longer accept anyone (nor open its database or spill files). Past the cap a new
connection is answered ``503`` (JSON, ``Retry-After``) and closed at once. Idle connections and
requests whose headers are not complete within ``server.idle_timeout_seconds`` are closed by
aiohttp's keep-alive timer, which runs from the moment a connection is accepted.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from http import HTTPStatus

from aiohttp import web
from aiohttp.web_request import BaseRequest

_BUSY_BODY = json.dumps(
    {"error": "too many connections", "detail": {"connection": "calld is at its connection limit; retry shortly"}}
).encode()
BUSY_RESPONSE = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"Content-Type: application/json; charset=utf-8\r\n"
    b"Retry-After: 1\r\n"
    b"Connection: close\r\n" + f"Content-Length: {len(_BUSY_BODY)}\r\n\r\n".encode() + _BUSY_BODY
)


class _Busy(asyncio.Protocol):
    """A connection past the cap: answered 503 and closed without reading it."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(BUSY_RESPONSE)
        transport.close()


class JsonErrorHandler(web.RequestHandler):
    """aiohttp's connection handler, answering a request it cannot parse (a control character in a
    header, a bad request line) in JSON like every other error, and without echoing the offending
    bytes (which may hold a token) back."""

    __slots__ = ()

    def handle_error(
        self, request: BaseRequest, status: int = 500, exc: BaseException | None = None, message: str | None = None
    ) -> web.StreamResponse:
        super().handle_error(request, status, exc, message)  # logs (redacted) and checks nothing was sent
        what = "malformed HTTP request" if status < 500 else "internal error"
        body = {"error": what, "detail": {"request": HTTPStatus(status).phrase}}
        response = web.json_response(body, status=status)
        response.force_close()
        return response


class CappedSite(web.TCPSite):
    """A ``TCPSite`` that hands a new connection to the app only while fewer than ``max_connections``
    are open; ``on_refused`` is called for each one turned away (a metric)."""

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        *,
        max_connections: int,
        on_refused: Callable[[], None] = lambda: None,
    ) -> None:
        super().__init__(runner, host, port)
        self._max_connections = max_connections
        self._on_refused = on_refused

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers the site; TCPSite.start would listen uncapped
        server = self._runner.server
        assert server is not None
        app_server = server

        def protocol() -> asyncio.BaseProtocol:
            if len(app_server.connections) >= self._max_connections:
                self._on_refused()
                return _Busy()
            # As web.Server() builds its handler, with calld's JSON error page.
            return JsonErrorHandler(app_server, loop=app_server._loop, **app_server._kwargs)

        self._server = await asyncio.get_running_loop().create_server(
            protocol, self._host, self._port, backlog=self._backlog, reuse_address=self._reuse_address
        )
        if self._server.sockets:
            self._bound_port = self._server.sockets[0].getsockname()[1]

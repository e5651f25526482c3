"""``GET /api/auth/whoami/``: what the presented token is (its name and scope), so a client such as
the console can show what the token may do before trying. Read scope: any valid token may ask."""

from __future__ import annotations

from aiohttp import web

from calld.http.auth import caller
from calld.http.routing import OPS, Op, Routes

PATH = "/api/auth/whoami/"

routes = Routes()


@routes.get(PATH, Op(OPS, "The presented token's name and scope", {200: "Whoami"}))
async def whoami(request: web.Request) -> web.Response:
    """GET /api/auth/whoami/ — the token's id, name and scope (never the token itself)."""
    info = caller(request)
    assert info is not None  # the auth middleware admitted a token for this route
    line = str(info.sip_configuration_id) if info.sip_configuration_id is not None else None
    return web.json_response(
        {"id": str(info.id), "name": info.name, "scope": info.scope.value, "sip_configuration_id": line}
    )

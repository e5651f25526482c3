"""An unexpected failure anywhere in the request path is still answered in the API's error format."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from calld.http.app import create_app
from calld.http.errors import Handler
from calld.service.wiring import Services
from tests.support import AppClient


@web.middleware
async def broken_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Stands for any failure outside the handlers' error handling (a log write, a metrics bug)."""
    if request.path == "/healthz":
        raise RuntimeError("something calld did not expect")
    return await handler(request)


async def test_a_failure_outside_the_handlers_is_a_json_500(
    services: Services, aiohttp_client: Callable[..., Awaitable[AppClient]]
) -> None:
    app = create_app(services)
    app.middlewares.insert(1, broken_middleware)  # inside calld's outermost middleware only
    client = await aiohttp_client(app)
    response = await client.get("/healthz")
    assert response.status == 500
    assert response.content_type == "application/json"
    body = await response.json()
    # The request id a client reports is the one on the single log line of the failure.
    assert body == {"error": "internal error", "code": "internal_error", "detail": {}, "request_id": body["request_id"]}
    assert isinstance(body["request_id"], str) and body["request_id"]
    assert (await client.get("/readyz")).status == 200

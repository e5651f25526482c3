"""The aiohttp application: its parts, middleware and routes."""

from __future__ import annotations

import time

import structlog
from aiohttp import web

from calld.http import (
    call_logs,
    clients,
    console,
    freeswitch_cdr,
    live,
    observability,
    openapi,
    provider_webhooks,
    recordings,
    sip_configurations,
    webhook_subscriptions,
    webhooks,
    whoami,
)
from calld.http.auth import auth_middleware, caller
from calld.http.context import SERVICES
from calld.http.errors import Handler, error_middleware, last_resort_middleware
from calld.http.observability import metrics_middleware
from calld.http.paths import FIXED_PATHS, fixed_paths, path_middleware
from calld.http.routing import OPERATIONS
from calld.service.wiring import Services


@web.middleware
async def request_log_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """One log line per request, with route, status and latency (and call id where the path has one)."""
    started = time.perf_counter()
    log = structlog.get_logger("calld.http")
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    finally:
        fields = {
            "method": request.method,
            "path": request.path,
            "status": status,
            "ms": round((time.perf_counter() - started) * 1000, 2),
        }
        call_id = request.match_info.get("id") if request.path.startswith("/api/call-logs/") else None
        if call_id:
            fields["call_id"] = call_id
        who = caller(request)
        if who is not None:
            fields["auth"] = who.name  # the token's name, never the token
        log.info("request", **fields)


def create_app(parts: Services) -> web.Application:
    """Build the aiohttp application around ``parts``."""
    app = web.Application(
        middlewares=[
            last_resort_middleware,
            metrics_middleware,
            request_log_middleware,
            error_middleware,
            path_middleware,
            auth_middleware,
        ],
        client_max_size=parts.config.server.max_body_bytes,
    )
    app[SERVICES] = parts
    app[OPERATIONS] = {}
    for module in (
        recordings,
        call_logs,
        clients,
        sip_configurations,
        webhooks,
        provider_webhooks,
        freeswitch_cdr,
        webhook_subscriptions,
        live,
        whoami,
        console,
        openapi,
        observability,
    ):
        module.routes.register(app)
    live.add_lifecycle(app)
    console.load_files(app)
    app[FIXED_PATHS] = fixed_paths(app)
    return app

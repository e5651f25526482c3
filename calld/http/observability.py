"""What operators and their tools poll: liveness, readiness and Prometheus metrics.

``GET /healthz`` answers while the process and its event loop run. ``GET /readyz`` answers 200
when calld can do its job (the database answers, and the switch, if one is configured, is
connected) and 503 naming what is wrong otherwise. ``GET /metrics`` is the Prometheus text format.
None of them needs a token: they carry no call data, and probes and scrapers have none.
"""

from __future__ import annotations

import asyncio
import time

from aiohttp import web

from calld.http.context import services
from calld.http.errors import Handler
from calld.http.routing import OPS, Op, Routes
from calld.service.metrics import CONTENT_TYPE, take_snapshot

_DATABASE_TIMEOUT_SECONDS = 2.0


routes = Routes()


@routes.get("/healthz", Op(OPS, "The process is alive", {200: "Health"}, public=True))
async def healthz(request: web.Request) -> web.Response:
    """GET /healthz — the process is alive."""
    return web.json_response({"status": "ok"})


@routes.get(
    "/readyz",
    Op(
        OPS,
        "Ready: the database answers and the switch (if any) is connected (or this instance stands by)",
        {200: "Readiness", 503: "Readiness"},
        public=True,
    ),
)
async def readyz(request: web.Request) -> web.Response:
    """GET /readyz — 200 when the database answers and the switch (if any) is connected, else 503."""
    svc = services(request)
    checks: dict[str, str] = {}
    try:
        await asyncio.wait_for(svc.db.ping(), _DATABASE_TIMEOUT_SECONDS)
        checks["database"] = "ok"
    except Exception as exc:  # any failure to answer is "not ready", with the reason
        checks["database"] = f"unreachable: {exc!s}"[:200] or "unreachable"
    if svc.db.damage is not None:  # it answers, but what it answers from is broken
        checks["database"] = f"damaged: {svc.db.damage}"[:200]
    elector = svc.elector
    if elector is not None:
        # A standby is ready: it serves the API, and takes the switch over if the leader goes.
        checks["leader"] = "this instance" if elector.leading else (elector.leader or "none yet")
    if svc.switch is None:
        checks["switch"] = "not configured"
    elif elector is not None and not elector.tried.is_set():
        checks["switch"] = f"{svc.switch.name} electing its leader, not connected"
    elif elector is not None and not elector.leading:
        checks["switch"] = f"{svc.switch.name} standby"
    else:
        state = "connected" if svc.switch.connected.is_set() else "not connected"
        checks["switch"] = f"{svc.switch.name} {state}"
    ready = checks["database"] == "ok" and not checks["switch"].endswith("not connected")
    body = {"status": "ready" if ready else "not ready", "checks": checks}
    return web.json_response(body, status=200 if ready else 503)


@routes.get("/metrics", Op(OPS, "Prometheus metrics", {200: None}, public=True))
async def metrics(request: web.Request) -> web.Response:
    """GET /metrics — Prometheus text format."""
    svc = services(request)
    registry = svc.metrics
    await take_snapshot(svc.db, registry)
    return web.Response(body=registry.render(), headers={"Content-Type": CONTENT_TYPE})


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count every request by method, route template and status, with its latency."""
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "unmatched"
        registry = services(request).metrics
        registry.http_requests.labels(request.method, route, str(status)).inc()
        registry.http_latency.labels(request.method, route).observe(time.perf_counter() - started)

"""Routes declared once, beside their handlers, each with its OpenAPI operation.

In the spirit of aiohttp's ``RouteTableDef``: a handler module keeps a ``Routes`` table and decorates
each handler with its method, path and ``Op``; ``create_app`` registers the tables in order (fixed paths
such as ``/api/call-logs/statistics/`` before ``{id}`` ones) and ``calld.http.openapi`` builds the
document from the operations the app registered, so a route cannot exist without its description.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from aiohttp import web

from calld.http.schema import Schema

H = TypeVar("H", bound=Callable[[web.Request], Awaitable[web.StreamResponse]])


@dataclass(frozen=True)
class Op:
    """One operation: what it answers on success and any error its shape does not imply."""

    tag: str
    summary: str
    ok: Mapping[int, str | None]  # status -> component schema answered (None: no body)
    body: str | None = None  # component schema of the JSON body, which reading implies 400, 413 and 422
    body_required: bool = True
    params: tuple[Schema, ...] = ()  # query parameters, which reading implies 422
    errors: Mapping[int, str] = field(default_factory=dict)  # status -> when
    description: str = ""
    public: bool = False


CALLS, CLIENTS, SIP, INBOUND, OUTBOUND, LIVE, OPS, DOCS = (
    "Calls",
    "Clients",
    "SIP configurations",
    "Inbound webhooks",
    "Outbound webhooks",
    "Live updates",
    "Operations",
    "Documentation",
)


ILLEGAL = "the call's status does not allow it"


SWITCH_REFUSED = "the switch refused the request"


SWITCH_DOWN = "the switch is unavailable"


# Several calld on PostgreSQL: the action was carried to the instance connected to the call's switch.
NO_LEADER = "no calld instance leads the call's switch (code no_leader)"
LEADER_SILENT = "the calld instance connected to the call's switch did not answer in time (code command_timeout)"
ON_SWITCH = {409: f"{ILLEGAL}, or {SWITCH_REFUSED}", 502: SWITCH_DOWN, 503: NO_LEADER, 504: LEADER_SILENT}


def action_op(summary: str, description: str = "") -> Op:
    return Op(CALLS, summary, {200: "CallDetail"}, "NoParameters", False, errors=ON_SWITCH, description=description)


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    op: Op
    allow_head: bool = True


OPERATIONS = web.AppKey("operations", dict[tuple[str, str], Op])


class Routes:
    """A handler module's routes, in the order they are declared."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def route(self, method: str, path: str, op: Op, *, allow_head: bool = True) -> Callable[[H], H]:
        """Declare ``handler`` as the answer to ``method path``, described by ``op``."""

        def declare(handler: H) -> H:
            self.routes.append(Route(method, path, handler, op, allow_head))
            return handler

        return declare

    def get(self, path: str, op: Op, *, allow_head: bool = True) -> Callable[[H], H]:
        return self.route("GET", path, op, allow_head=allow_head)

    def post(self, path: str, op: Op) -> Callable[[H], H]:
        return self.route("POST", path, op)

    def patch(self, path: str, op: Op) -> Callable[[H], H]:
        return self.route("PATCH", path, op)

    def delete(self, path: str, op: Op) -> Callable[[H], H]:
        return self.route("DELETE", path, op)

    def register(self, app: web.Application) -> None:
        """Add these routes to ``app`` and their operations to its ``OPERATIONS``."""
        operations = app[OPERATIONS]
        for route in self.routes:
            if route.method == "GET":
                app.router.add_get(route.path, route.handler, allow_head=route.allow_head)
            else:
                app.router.add_route(route.method, route.path, route.handler)
            operations[(route.method, route.path)] = route.op

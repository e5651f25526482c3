"""The OpenAPI 3.1 description of calld's REST API (``GET /api/openapi.json``) and a page for people
(``GET /api/docs``).

The document is built from the application's router when it is asked for, so it describes exactly
the routes that are registered, each with the operation declared beside its handler
(``calld.http.routing``; a test walks ``app.router`` so no route can be forgotten). Enumerations
come from ``calld.domain.vocabulary`` and the handlers' own tables, and each operation's security
from ``calld.http.auth.required_scope``, so the document cannot drift from the code. Error statuses
that follow from a route's shape are added by rule (a body: 400, 413, 422; an id in the path: 404; a
token: 401, and 403 above ``read``); the others are listed with the operation. ``HEAD``, which
aiohttp answers for every ``GET`` route (the ``GET`` without a body), is not listed separately.

Both routes are public (no token): the document holds no data, only what the README already says,
and a browser cannot send a bearer token when it opens ``/api/docs``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from aiohttp import web

import calld
from calld.domain.scopes import Scope
from calld.http import console, openapi_html
from calld.http.auth import SIGNED_PREFIXES, required_scope
from calld.http.components import (
    BODY_EXAMPLES,
    FORM_BODIES,
    PROVIDER_SECURITY,
    PROVIDERS_PATH,
    SECURITY_SCHEMES,
    component_schemas,
)
from calld.http.routing import (
    CALLS,
    CLIENTS,
    DOCS,
    INBOUND,
    LIVE,
    OPERATIONS,
    OPS,
    OUTBOUND,
    SIP,
    SWITCH_DOWN,
    Op,
    Routes,
)
from calld.http.schema import (
    Schema,
    json_content,
    path_parameters,
    ref,
    string,
)

INDEX_PATH = "/"
SPEC_PATH = "/api/openapi.json"
DOCS_PATH = "/api/docs"

routes = Routes()


# --- schema vocabulary ----------------------------------------------------------------------------


# --- operations -----------------------------------------------------------------------------------


STATUS_TEXT = {
    101: "Switching Protocols: the WebSocket is open",
    200: "OK",
    201: "Created",
    202: "Accepted",
    204: "No Content",
    206: "Partial Content: the range asked for",
    302: "Found: the resource lives at Location",
    304: "Not Modified",
    416: "Range Not Satisfiable (Content-Range: bytes */<size>)",
    400: "Malformed JSON, or a body that is not a JSON object",
    401: "No valid credentials",
    403: "Not allowed",
    404: "No such resource (or a malformed id)",
    409: "Conflict",
    413: "The body is larger than server.max_body_bytes",
    422: "Invalid fields or parameters: detail names each one",
    502: SWITCH_DOWN,
    503: "Not ready: checks says why",
}
# Bodies not described by a component: the document itself, the page and the metrics.
_AUDIO = {kind: {"schema": {"type": "string", "format": "binary"}} for kind in ("audio/wav", "audio/mpeg", "audio/ogg")}
_RAW_BODIES: dict[tuple[str, str], Schema] = {
    ("GET", "/api/call-logs/{id}/recordings/{recording_id}/media/"): _AUDIO,
    ("GET", SPEC_PATH): {"application/json": {"schema": {"type": "object"}}},
    ("GET", DOCS_PATH): {"text/html": {"schema": {"type": "string"}}},
    ("GET", "/metrics"): {"text/plain": {"schema": {"type": "string"}}},
    ("GET", "/api/call-logs/statistics/"): {"text/csv": {"schema": {"type": "string"}}},
    ("GET", "/api/call-logs/export/"): {
        kind: {"schema": {"type": "string"}} for kind in ("text/csv", "application/x-ndjson")
    },
    ("GET", INDEX_PATH): {"text/html": {"schema": {"type": "string"}}},
    ("GET", console.ASSET_PATH): {
        kind: {"schema": {"type": "string"}} for kind in ("text/javascript", "text/css", "text/html", "image/svg+xml")
    },
}


def _security(method: str, path: str, op: Op) -> tuple[list[Schema], dict[int, str]]:
    """Who may call the operation, and the errors that follow from it."""
    if op.public:
        return [], {}
    if path == "/api/webhooks/freeswitch/cdr/":
        return [{"basic": []}], {401: "Missing or wrong Basic credentials, or the receiver is off"}
    if path.startswith(PROVIDERS_PATH):
        scheme = PROVIDER_SECURITY[path[len(PROVIDERS_PATH) :].strip("/")]
        return [{scheme: []}], {
            401: "Missing, wrong or stale provider signature, a tampered body, or the provider is not "
            "configured ([webhooks.providers.<name>])",
            403: "The peer address is not in the provider's allow_ips",
        }
    if path.startswith(SIGNED_PREFIXES):
        return [{"signature": []}], {
            401: "Missing, malformed, wrong or stale Calld-Signature",
            403: "The peer address is not in the source's allow_ips",
        }
    scope = required_scope(method, path)
    assert scope is not None, f"{method} {path} is neither public, signed nor scoped"
    needs: list[Schema] = [{"bearer": [str(scope)]}]
    if path == "/api/ws":
        needs.append({"accessToken": [str(scope)]})
    errors = {401: "No token, or an unknown or revoked one"}
    if scope is not Scope.READ:
        errors[403] = f"The token's scope is below {scope}"
    return needs, errors


def _responses(method: str, path: str, op: Op, auth_errors: Mapping[int, str], *, bearer: bool) -> dict[str, Schema]:
    responses: dict[int, Schema] = {}
    for status, schema in op.ok.items():
        answer: Schema = {"description": STATUS_TEXT[status]}
        if schema is not None:
            answer["content"] = {**json_content(ref(schema)), **_RAW_BODIES.get((method, path), {})}
        elif (method, path) in _RAW_BODIES:
            answer["content"] = _RAW_BODIES[(method, path)]
        if status == 201 and op.tag != CALLS:
            answer["headers"] = {"Location": {"description": "The new resource's path", "schema": string()}}
        responses[status] = answer
    errors: dict[int, str] = dict(auth_errors)
    if op.body is not None:
        errors.update({400: STATUS_TEXT[400], 413: STATUS_TEXT[413], 422: STATUS_TEXT[422]})
    if op.params:
        errors[422] = STATUS_TEXT[422]
    if "{" in path:
        errors[404] = STATUS_TEXT[404]
    errors.update(op.errors)
    for status, when in errors.items():
        answer = {"description": when[:1].upper() + when[1:], "content": json_content(ref("Error"))}
        if status == 401 and bearer:
            answer["headers"] = {"WWW-Authenticate": {"schema": string(), "description": 'Bearer realm="calld"'}}
        responses[status] = answer
    return {str(status): responses[status] for status in sorted(responses)}


def operation(method: str, path: str, op: Op) -> Schema:
    """The OpenAPI operation object of ``op`` at ``method path``."""
    security, auth_errors = _security(method, path, op)
    out: Schema = {
        "operationId": _operation_id(method, path),
        "tags": [op.tag],
        "summary": op.summary,
        "security": security,
        "responses": _responses(method, path, op, auth_errors, bearer=bool(security) and "bearer" in security[0]),
    }
    if op.description:
        out["description"] = op.description
    parameters = [*path_parameters(path), *op.params]
    if parameters:
        out["parameters"] = parameters
    if op.body is not None:
        kind = FORM_BODIES.get(op.body, "application/json")
        content = {kind: {"schema": ref(op.body), "example": BODY_EXAMPLES[op.body]}}
        out["requestBody"] = {"required": op.body_required, "content": content}
    return out


def _operation_id(method: str, path: str) -> str:
    words = re.sub(r"[^a-z0-9]+", "_", path.replace("{", "by_").lower()).strip("_")
    return f"{method.lower()}_{words}"


def registered_routes(app: web.Application) -> list[tuple[str, str]]:
    """``(method, path template)`` of every route the app answers, HEAD (GET's twin) left out."""
    routes = []
    for route in app.router.routes():
        if route.resource is None or route.method in ("HEAD", "*"):
            continue
        routes.append((route.method, route.resource.canonical))
    return routes


def build_spec(app: web.Application) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the routes ``app`` has; a route registered without an operation is left
    out (and fails tests/http/test_openapi.py)."""
    paths: dict[str, dict[str, Any]] = {}
    for method, path in registered_routes(app):
        op = app[OPERATIONS].get((method, path))
        if op is not None:
            paths.setdefault(path, {})[method.lower()] = operation(method, path, op)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "calld",
            "version": calld.__version__,
            "description": "Call logging and call control for Asterisk and FreeSWITCH. Every error is "
            '`{"error": "...", "detail": {"field": "problem"}}`.',
        },
        "tags": [{"name": name} for name in (CALLS, CLIENTS, SIP, INBOUND, OUTBOUND, LIVE, OPS, DOCS)],
        "paths": paths,
        "components": {"schemas": component_schemas(), "securitySchemes": SECURITY_SCHEMES},
    }


@routes.get(SPEC_PATH, Op(DOCS, "This OpenAPI document", {200: None}, public=True))
async def openapi_json(request: web.Request) -> web.Response:
    """GET /api/openapi.json — this API's OpenAPI 3.1 document."""
    return web.json_response(build_spec(request.app))


@routes.get(DOCS_PATH, Op(DOCS, "This document as a web page", {200: None}, public=True))
async def docs_page(request: web.Request) -> web.Response:
    """GET /api/docs — the document as a self-contained HTML page."""
    return web.Response(text=openapi_html.render(build_spec(request.app)), content_type="text/html")


@routes.get(
    INDEX_PATH,
    Op(
        DOCS,
        "The web console (for a browser) or where the API's documentation is",
        {200: "Index"},
        public=True,
        description="A request that accepts `text/html` (a browser) gets the console's page; others get JSON.",
    ),
)
async def index(request: web.Request) -> web.Response:
    """GET / — a browser gets the web console; curl and scripts, where the documentation is."""
    if console.wants_page(request):
        return console.page(request)
    body = {"name": "calld", "version": calld.__version__, "docs": DOCS_PATH, "openapi": SPEC_PATH}
    return web.json_response(body)

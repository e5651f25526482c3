"""The OpenAPI document and the docs page: valid, complete, and true of the live app.

``test_schemathesis_against_the_live_app`` runs schemathesis over every operation of the document
against a real aiohttp server on loopback with a real database: no answer may be a 5xx, and every
answer must have a documented status, content type and body shape.
"""

from __future__ import annotations

import asyncio
import re
import socket
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
import requests
import schemathesis
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from openapi_spec_validator import validate

from calld import signing
from calld.config import CallsConfig, Config, SipProbeConfig
from calld.domain.scopes import Scope
from calld.http.app import create_app
from calld.outbound.outbox import Outbox
from calld.service.live_feed import LiveHub
from calld.service.wiring import Services
from calld.storage.calls import CallStore
from calld.storage.database import Database
from tests.support import (
    LOOPBACK_EGRESS,
    WEBHOOK_SECRETS,
    AppClient,
    bearer,
    fresh_database,
    mint_token,
    webhooks_config,
)

SPEC = "/api/openapi.json"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


@pytest.fixture
async def sqlite_services(tmp_path: Path) -> Any:
    db = await fresh_database("sqlite", tmp_path)
    try:
        yield Services(config=Config(), db=db, calls=CallStore())
    finally:
        await db.close()


@pytest.fixture
async def anonymous(sqlite_services: Services, aiohttp_client: Callable[..., Awaitable[AppClient]]) -> AppClient:
    """A client of the app that sends no credentials."""
    return await aiohttp_client(create_app(sqlite_services))


def operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                yield method.upper(), path, op


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", lambda _: str(uuid.uuid4()), path)


# --- the document ---------------------------------------------------------------------------------


async def test_the_document_is_valid_openapi_3_1_and_public(anonymous: AppClient) -> None:
    resp = await anonymous.get(SPEC)
    assert resp.status == 200
    assert resp.content_type == "application/json"
    spec = await resp.json()
    assert spec["openapi"].startswith("3.1")
    validate(spec)  # raises on an invalid document


async def test_every_registered_route_and_method_is_described(anonymous: AppClient) -> None:
    spec = await (await anonymous.get(SPEC)).json()
    registered = {
        (route.method, route.resource.canonical)
        for route in anonymous.app.router.routes()
        if route.resource is not None and route.method != "HEAD"  # HEAD: aiohttp's twin of every GET
    }
    described = {(method, path) for method, path, _ in operations(spec)}
    assert registered - described == set(), "routes the document forgets"
    assert described - registered == set(), "operations the app does not have"


async def test_the_document_names_every_enum_value_the_code_has(anonymous: AppClient) -> None:
    from calld.domain.vocabulary import CallStatus, EventType

    schemas = (await (await anonymous.get(SPEC)).json())["components"]["schemas"]
    assert schemas["CallLog"]["properties"]["status"]["enum"] == [s.value for s in CallStatus]
    assert schemas["CallEvent"]["properties"]["event_type"]["enum"] == [e.value for e in EventType]


async def test_the_documented_security_is_what_the_server_enforces(
    sqlite_services: Services, aiohttp_client: Callable[..., Awaitable[AppClient]]
) -> None:
    """Without credentials: public operations answer, the others 401. With a read token: an operation
    documented as needing write or admin answers 403, the others are let through."""
    client = await aiohttp_client(create_app(sqlite_services))
    read = bearer(await mint_token(sqlite_services.db, Scope.READ))
    spec = await (await client.get(SPEC)).json()
    wrong: list[str] = []
    for method, template, op in operations(spec):
        path = concrete(template)
        scopes = {s for need in op["security"] for s in need.get("bearer", [])}
        anonymous = await client.request(method, path, json={} if "requestBody" in op else None)
        expected_status = "not 401" if not op["security"] else 401
        if (anonymous.status == 401) != (expected_status == 401):
            wrong.append(f"{method} {template} without credentials: {anonymous.status}, documented {op['security']}")
        if scopes:
            with_read = await client.request(method, path, json={} if "requestBody" in op else None, headers=read)
            if (with_read.status == 403) != (scopes != {"read"}):
                wrong.append(f"{method} {template} with a read token: {with_read.status}, documented {scopes}")
        if str(anonymous.status) not in op["responses"]:
            wrong.append(f"{method} {template}: {anonymous.status} is not documented")
    assert wrong == []


async def test_the_docs_page_shows_every_operation_and_schema(anonymous: AppClient) -> None:
    spec = await (await anonymous.get(SPEC)).json()
    resp = await anonymous.get("/api/docs")
    assert resp.status == 200
    assert resp.content_type == "text/html"
    page = await resp.text()
    for method, path, op in operations(spec):
        assert f"{method}</span><code>{path}</code>" in page
        for status in op["responses"]:
            assert f"<td>{status}</td>" in page
        for param in op.get("parameters", []):
            assert f"<code>{param['name']}</code>" in page
    for name in spec["components"]["schemas"]:
        assert f"id='schema-{name.lower()}'" in page
    # Self-contained: no script, stylesheet or image is fetched from anywhere.
    assert not re.search(r"<(script|link|img)\b|src=|https?://", page)


# --- schemathesis against the live app -------------------------------------------------------------

# Valid numbers often enough that calls and clients get created; anything else gets a 422.
PHONE_NUMBERS = st.one_of(
    st.sampled_from(["+14155550123", "+442071838750", "1001", "2002", "(415) 555-0143"]),
    st.from_regex(r"\A\+1415555[0-9]{4}\Z"),
    st.text(max_size=12),
)
schemathesis.openapi.format("phone", PHONE_NUMBERS)

CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.response_schema_conformance,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
]
# Cases per operation: valid requests, then requests that break the document (each must be a 4xx).
EXAMPLES = {schemathesis.GenerationMode.POSITIVE: 15, schemathesis.GenerationMode.NEGATIVE: 5}


# Headers the HTTP client owns: a random Content-Length or Expect makes a malformed HTTP message that
# aiohttp's parser refuses before any route (or calld) sees it.
TRANSPORT_HEADERS = ("Content-Length", "Transfer-Encoding", "Connection", "Upgrade", "Expect", "Host")


class Credentials(requests.auth.AuthBase):
    """An admin bearer token on API routes; on inbound webhooks their source's signature instead."""

    def __init__(self, token: str) -> None:
        self.token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        path = urlsplit(request.url).path
        for name, secret in WEBHOOK_SECRETS.items():
            if path == f"/api/webhooks/{name}/":
                body = request.body or b""
                raw = body.encode() if isinstance(body, str) else body
                request.headers[signing.SIGNATURE_HEADER] = signing.sign(secret, raw, datetime.now(UTC))
                return request
        request.headers["Authorization"] = f"Bearer {self.token}"
        return request


def closed_udp_port() -> int:
    """A loopback UDP port nothing listens on: the SIP probe of a seeded configuration fails at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def seed(http: requests.Session, base: str) -> dict[str, str]:
    """Fresh rows for an operation to act on: a subscription, a client, a SIP configuration on loopback,
    an answered call of theirs with a recording, and a delivery of its events."""

    def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        resp = http.post(base + path, json=body)
        assert resp.status_code in (200, 201), (path, resp.status_code, resp.text)
        return dict(resp.json())

    sub = post("/api/webhook-subscriptions/", {"url": "http://127.0.0.1:9/calld-hook"})
    client = post("/api/clients/", {"name": "Seeded client"})
    sip = post(
        "/api/sip-configurations/",
        {
            "name": f"seeded-{uuid.uuid4().hex[:8]}",
            "server": "127.0.0.1",
            "port": closed_udp_port(),
            "username": "1001",
            "websocket_url": "ws://127.0.0.1:9/ws",
        },
    )
    call = post(
        "/api/call-logs/",
        {
            "direction": "outbound",
            "caller_number": "1001",
            "recipient_number": "+14155550123",
            "client": client["id"],
            "sip_configuration": sip["id"],
        },
    )
    for status in ("ringing", "answered"):
        resp = http.patch(f"{base}/api/call-logs/{call['id']}/update_status/", json={"status": status})
        assert resp.status_code == 200, resp.text
    post("/api/webhooks/recording/", {"call_id": call["id"], "status": "recording"})
    deliveries = http.get(f"{base}/api/webhook-subscriptions/{sub['id']}/deliveries/").json()["results"]
    return {
        "call": call["id"],
        "client": client["id"],
        "sip": sip["id"],
        "subscription": sub["id"],
        "delivery": deliveries[0]["id"],
    }


def aim(case: schemathesis.Case, rows: dict[str, str]) -> None:
    """Point the case's ids at seeded rows, so it reaches past "404 no such call"."""
    owner = {
        "/api/call-logs/": "call",
        "/api/clients/": "client",
        "/api/sip-configurations/": "sip",
        "/api/webhook-subscriptions/": "subscription",
    }
    for prefix, name in owner.items():
        if case.path.startswith(prefix) and "id" in case.path_parameters:
            case.path_parameters["id"] = rows[name]
    if "delivery_id" in case.path_parameters:
        case.path_parameters["delivery_id"] = rows["delivery"]
    if isinstance(case.body, dict):
        for field, name in (("call_id", "call"), ("client", "client"), ("sip_configuration", "sip")):
            if isinstance(case.body.get(field), str):
                case.body[field] = rows[name]


def fuzz_operation(
    operation: Any, mode: schemathesis.GenerationMode, rows: dict[str, str], base: str, http: requests.Session
) -> None:
    """Run schemathesis' generated cases for one operation; raise what the checks find."""

    @given(case=operation.as_strategy(mode), seeded=st.booleans())
    @settings(
        max_examples=EXAMPLES[mode],
        deadline=None,
        database=None,
        derandomize=True,  # the same cases on every run: CI fails only on a change, not on luck
        phases=[Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: schemathesis.Case, seeded: bool) -> None:
        if seeded and rows:
            aim(case, rows)
        for name in TRANSPORT_HEADERS:  # negative cases add random headers, these among them
            case.headers.pop(name, None)
        response = case.call(base_url=base, session=http, timeout=10)
        case.validate_response(response, checks=CHECKS)

    run()


def fuzz_all(spec: dict[str, Any], base: str, token: str) -> list[str]:
    """Every operation of ``spec`` against the server at ``base``; one line per failing operation.

    Nothing leaves the machine: test_connection probes only stored configurations, and the cases reach
    the seeded one (127.0.0.1, a closed port) or a random id (404), never one they created; no
    delivery worker runs, so no generated subscription URL is ever called.
    """
    schema = schemathesis.openapi.from_dict(spec)
    inputs = {(m, p) for m, p, op in operations(spec) if "parameters" in op or "requestBody" in op}
    bodies = {(m, p) for m, p, op in operations(spec) if "requestBody" in op}
    failures: list[str] = []
    with requests.Session() as http:
        http.auth = Credentials(token)
        for result in schema.get_all_operations():
            operation = result.ok()
            key = (operation.method.upper(), operation.path)
            # Rows to aim ids at, for the operations that take an id (in the path or the body).
            rows = seed(http, base) if "{" in operation.path or key in bodies else {}
            for mode in EXAMPLES:
                if (
                    mode is schemathesis.GenerationMode.NEGATIVE
                    and (operation.method.upper(), operation.path) not in inputs
                ):
                    continue  # nothing in the request to get wrong
                try:
                    fuzz_operation(operation, mode, rows, base, http)
                except (Exception, BaseExceptionGroup) as exc:  # collected: one run reports every failing operation
                    failures.append(f"{operation.method.upper()} {operation.path} ({mode.value}): {describe(exc)}")
    return failures


def describe(exc: BaseException) -> str:
    """What went wrong, with each of schemathesis' failures (it raises them as a group)."""
    if isinstance(exc, BaseExceptionGroup):
        return "\n".join(describe(inner) for inner in exc.exceptions)
    return f"{type(exc).__name__}: {exc}"


async def test_schemathesis_against_the_live_app(db: Database) -> None:
    outbox, live = Outbox(), LiveHub()
    config = Config(
        calls=CallsConfig(timezone="UTC", default_region="US"),
        webhooks=webhooks_config(),
        sip_probe=SipProbeConfig(timeout_seconds=0.5),
        egress=LOOPBACK_EGRESS,  # seeded subscriptions and SIP configurations point at loopback
    )
    services = Services(config=config, db=db, calls=CallStore(hooks=(outbox, live)), outbox=outbox, live=live)
    server = TestServer(create_app(services), host="127.0.0.1")
    await server.start_server()
    try:
        base = str(server.make_url("")).rstrip("/")
        token = await mint_token(db, Scope.ADMIN)
        async with aiohttp.ClientSession() as session, session.get(base + SPEC) as resp:
            spec = await resp.json()
        # Requests (schemathesis' client) block, so they run in a thread while this loop serves them.
        failures = await asyncio.to_thread(fuzz_all, spec, base, token)
    finally:
        await server.close()
    assert failures == [], "\n\n".join(failures)


async def test_every_request_body_has_an_example_its_schema_accepts(anonymous: AppClient) -> None:
    from jsonschema import Draft202012Validator

    spec = await (await anonymous.get(SPEC)).json()
    bodies = [(method, path, op["requestBody"]) for method, path, op in operations(spec) if "requestBody" in op]
    assert len(bodies) > 15
    for method, path, body in bodies:
        content = body["content"]["application/json"]
        assert "example" in content, f"{method} {path}"
        # The schema's $ref resolves inside the document, so the document is the validator's root.
        Draft202012Validator({**spec, **content["schema"]}).validate(content["example"])


async def test_the_root_points_at_the_docs(anonymous: AppClient) -> None:
    resp = await anonymous.get("/")
    assert resp.status == 200
    body = await resp.json()
    assert (body["docs"], body["openapi"]) == ("/api/docs", SPEC)

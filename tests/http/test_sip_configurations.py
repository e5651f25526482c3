"""SIP configurations over real HTTP on SQLite and PostgreSQL: CRUD, validation, the write-only
secret, the exactly-one-default rules, webrtc_config, and test_connection against loopback responders."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import hmac
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
import structlog
from yarl import URL

from calld.config import CallsConfig, Config, SipProbeConfig, TurnConfig
from calld.domain.scopes import Scope
from calld.http.app import create_app
from calld.service.wiring import Services
from calld.storage.database import Database
from calld.storage.models import SipConfiguration
from tests.fakes.sip_peers import LOOPBACK, StreamResponder, UdpResponder, free_port, start_udp_responder
from tests.support import LOOPBACK_EGRESS, AppClient, bearer, mint_token

SECRET = "s3cr3t-Never-Shown-4711"
TURN_SECRET = "turn-shared-secret-for-tests"
TURN_LIFETIME = 600
BASE = "/api/sip-configurations/"


@pytest.fixture
def config() -> Config:
    # A short probe timeout keeps the silent-port test quick.
    return Config(
        calls=CallsConfig(timezone="UTC", default_region="US"),
        sip_probe=SipProbeConfig(timeout_seconds=0.4),
        egress=LOOPBACK_EGRESS,  # the responders are on loopback
        turn=TurnConfig(secret=TURN_SECRET, credential_lifetime_seconds=TURN_LIFETIME),
    )


@pytest.fixture
async def udp_responder() -> AsyncIterator[UdpResponder]:
    responder = await start_udp_responder()
    yield responder
    assert responder.transport is not None
    responder.transport.close()


@pytest.fixture
async def tcp_responder() -> AsyncIterator[StreamResponder]:
    responder = await StreamResponder().start()
    yield responder
    await responder.close()


def body_of(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "server": "pbx.example.com", "username": "1001", **extra}


async def create(api: AppClient, name: str, **extra: Any) -> dict[str, Any]:
    response = await api.post(BASE, json=body_of(name, **extra))
    assert response.status == 201, await response.text()
    created: dict[str, Any] = await response.json()
    return created


async def stored(db: Database) -> dict[str, tuple[bool, bool]]:
    """name → (is_default, active) of every stored configuration."""
    async with db.read() as session:
        rows = await session.execute(
            sa.select(SipConfiguration.name, SipConfiguration.is_default, SipConfiguration.active)
        )
        return {name: (is_default, active) for name, is_default, active in rows}


async def test_create_read_update_delete(api: AppClient, db: Database) -> None:
    created = await create(
        api,
        "Office",
        server="10.0.0.5",
        secret=SECRET,
        websocket_url="wss://pbx.example.com:8089/ws",
        stun_servers=["stun:stun.example.com:3478"],
        turn_servers=[{"urls": "turn:turn.example.com:3478?transport=udp"}],
    )
    config_id = created["id"]
    assert created == {
        "id": config_id,
        "name": "Office",
        "server": "10.0.0.5",
        "port": 5060,
        "transport": "udp",
        "username": "1001",
        "has_secret": True,
        "websocket_url": "wss://pbx.example.com:8089/ws",
        "stun_servers": ["stun:stun.example.com:3478"],
        "turn_servers": [{"urls": "turn:turn.example.com:3478?transport=udp"}],
        "is_default": True,
        "active": True,
        "created_at": created["created_at"],
        "updated_at": created["updated_at"],
    }
    assert await (await api.get(f"{BASE}{config_id}/")).json() == created
    async with db.read() as session:
        row = await session.get(SipConfiguration, uuid.UUID(config_id))
        assert row is not None and row.secret == SECRET  # stored, only never shown

    patched = await api.patch(f"{BASE}{config_id}/", json={"transport": "tls", "secret": None, "stun_servers": []})
    assert patched.status == 200, await patched.text()
    after = await patched.json()
    # The port followed the transport, because it was the old transport's default.
    assert (after["transport"], after["port"], after["has_secret"], after["stun_servers"]) == ("tls", 5061, False, [])
    kept = await (await api.patch(f"{BASE}{config_id}/", json={"port": 7000})).json()
    assert kept["port"] == 7000
    moved = await (await api.patch(f"{BASE}{config_id}/", json={"transport": "tcp"})).json()
    assert (moved["transport"], moved["port"]) == ("tcp", 7000)  # a chosen port is kept

    listed = await (await api.get(BASE)).json()
    assert listed["count"] == 1 and [c["id"] for c in listed["results"]] == [config_id]
    assert listed["next"] is None and listed["previous"] is None

    assert (await api.delete(f"{BASE}{config_id}/")).status == 204
    assert (await api.get(f"{BASE}{config_id}/")).status == 404
    assert await stored(db) == {}


async def test_port_defaults_by_transport(api: AppClient) -> None:
    expected = {"udp": 5060, "tcp": 5060, "tls": 5061, "ws": 80, "wss": 443}
    for transport, port in expected.items():
        created = await create(api, f"via {transport}", transport=transport)
        assert (created["transport"], created["port"]) == (transport, port)
    explicit = await create(api, "explicit", transport="tls", port=5071)
    assert explicit["port"] == 5071


async def test_validation_errors_store_nothing(api: AppClient, db: Database) -> None:
    bad: list[tuple[dict[str, Any], str]] = [
        ({"server": "http://pbx.example.com"}, "server"),
        ({"server": "pbx example.com"}, "server"),
        ({"server": "1.2.3.999"}, "server"),
        ({"server": "-bad-.example.com"}, "server"),
        ({"port": 0}, "port"),
        ({"port": 65536}, "port"),
        ({"port": "5060"}, "port"),
        ({"transport": "sctp"}, "transport"),
        ({"username": None}, "username"),
        ({"username": "alice@example.com"}, "username"),
        ({"name": "x" * 101}, "name"),
        ({"websocket_url": "https://pbx.example.com/ws"}, "websocket_url"),
        ({"websocket_url": "wss://"}, "websocket_url"),
        ({"stun_servers": ["turn:stun.example.com"]}, "stun_servers"),
        ({"stun_servers": "stun:stun.example.com"}, "stun_servers"),
        ({"stun_servers": ["stun:stun.example.com:99999"]}, "stun_servers"),
        ({"turn_servers": [{"urls": "turn:t.example.com", "username": "u"}]}, "turn_servers"),
        ({"turn_servers": [{"urls": "stun:t.example.com"}]}, "turn_servers"),
        (
            {"turn_servers": [{"urls": "turn:t.example.com", "x": 1}]},
            "turn_servers",
        ),
        ({"secret": 1234}, "secret"),
        ({"active": "maybe"}, "active"),
        ({"is_default": True}, "is_default"),
        ({"has_secret": True}, "has_secret"),
        ({"colour": "red"}, "colour"),
    ]
    for change, field in bad:
        response = await api.post(BASE, json={**body_of("Bad"), **change})
        assert response.status == 422, change
        answer = await response.json()
        assert answer["error"] == "validation failed"
        assert list(answer["detail"]) == [field], change
    missing = await (await api.post(BASE, json={})).json()
    assert set(missing["detail"]) == {"name", "server", "username"}
    assert (await api.post(BASE, data=b"[", headers={"Content-Type": "application/json"})).status == 400
    assert (await api.get(f"{BASE}42/")).status == 404
    assert await stored(db) == {}

    created = await create(api, "Good")
    for change, field in (({"is_default": False}, "is_default"), ({"active": None}, "active"), ({"port": -1}, "port")):
        response = await api.patch(f"{BASE}{created['id']}/", json={"name": "Renamed", **change})
        assert response.status == 422
        assert list((await response.json())["detail"]) == [field]
    assert await (await api.get(f"{BASE}{created['id']}/")).json() == created


async def test_static_turn_credentials_are_refused(api: AppClient, db: Database) -> None:
    """calld mints TURN credentials per request ([turn] secret); a stored password would be handed out forever."""
    for turn in (
        {"urls": "turn:t.example.com", "username": "u", "credential": "c"},
        {"urls": "turn:t.example.com", "credential": "a\x00b"},
    ):
        response = await api.post(BASE, json=body_of("Static", turn_servers=[turn]))
        assert response.status == 422, await response.text()
        detail = (await response.json())["detail"]
        assert list(detail) == ["turn_servers"] and "mints time-limited TURN credentials" in detail["turn_servers"]
    assert await stored(db) == {}


async def test_names_are_unique(api: AppClient, db: Database) -> None:
    await create(api, "Office")
    other = await create(api, "Branch")
    duplicate = await api.post(BASE, json=body_of("Office"))
    assert duplicate.status == 409
    assert (await duplicate.json())["detail"] == {"name": "a SIP configuration named 'Office' already exists"}
    renamed = await api.patch(f"{BASE}{other['id']}/", json={"name": "Office"})
    assert renamed.status == 409
    assert set(await stored(db)) == {"Office", "Branch"}
    same = await api.patch(f"{BASE}{other['id']}/", json={"name": "Branch"})
    assert same.status == 200


async def test_exactly_one_default(api: AppClient, db: Database) -> None:
    first = await create(api, "First")
    second = await create(api, "Second")
    inactive = await create(api, "Inactive", active=False)
    third = await create(api, "Third")
    assert first["is_default"] and not second["is_default"] and not inactive["is_default"]
    assert await stored(db) == {
        "First": (True, True),
        "Second": (False, True),
        "Inactive": (False, False),
        "Third": (False, True),
    }

    moved = await api.post(f"{BASE}{third['id']}/set_default/")
    assert moved.status == 200
    assert (await moved.json())["is_default"] is True
    assert {n for n, (d, _) in (await stored(db)).items() if d} == {"Third"}
    again = await api.post(f"{BASE}{third['id']}/set_default/")
    assert again.status == 200 and {n for n, (d, _) in (await stored(db)).items() if d} == {"Third"}

    refused = await api.post(f"{BASE}{inactive['id']}/set_default/")
    assert refused.status == 409
    assert "inactive" in (await refused.json())["detail"]["active"]
    assert {n for n, (d, _) in (await stored(db)).items() if d} == {"Third"}

    deactivate = await api.patch(f"{BASE}{third['id']}/", json={"active": False})
    assert deactivate.status == 409
    assert (await stored(db))["Third"] == (True, True)

    # Deleting the default promotes the oldest remaining active configuration.
    assert (await api.delete(f"{BASE}{third['id']}/")).status == 204
    assert {n for n, (d, _) in (await stored(db)).items() if d} == {"First"}
    assert (await api.delete(f"{BASE}{first['id']}/")).status == 204
    assert {n for n, (d, _) in (await stored(db)).items() if d} == {"Second"}
    assert (await api.delete(f"{BASE}{second['id']}/")).status == 204
    # Only an inactive one is left: it still becomes the default, so one exists whenever any do.
    assert await stored(db) == {"Inactive": (True, False)}
    assert (await api.delete(f"{BASE}{inactive['id']}/")).status == 204
    fresh = await create(api, "Fresh")
    assert fresh["is_default"] is True
    assert (await api.post(f"{BASE}{uuid.uuid4()}/set_default/")).status == 404


async def test_list_filters_and_pages(api: AppClient) -> None:
    names = [f"line {i}" for i in range(5)]
    for name in names:
        await create(api, name, active=name != "line 2")
    page = await (await api.get(BASE, params={"limit": "2", "offset": "2"})).json()
    assert page["count"] == 5 and [c["name"] for c in page["results"]] == ["line 2", "line 3"]
    assert dict(URL(page["next"]).query) == {"limit": "2", "offset": "4"}
    assert dict(URL(page["previous"]).query) == {"limit": "2", "offset": "0"}
    inactive = await (await api.get(BASE, params={"active": "false"})).json()
    assert [c["name"] for c in inactive["results"]] == ["line 2"]
    assert (await api.get(BASE, params={"limit": "500"})).status == 422


async def test_webrtc_config(api: AppClient) -> None:
    created = await create(
        api,
        "Browser",
        transport="wss",
        secret=SECRET,
        websocket_url="wss://pbx.example.com:8089/ws",
        stun_servers=["stun:stun.example.com:3478", "stun:[2001:db8::1]"],
        turn_servers=[{"urls": "turns:turn.example.com:5349?transport=tcp"}, {"urls": "turn:turn.example.com"}],
    )
    before = int(time.time())
    response = await api.get(f"{BASE}{created['id']}/webrtc_config/")
    after = int(time.time())
    assert response.status == 200
    answer = await response.json()
    turn = answer["ice_servers"][2:]
    assert answer == {
        "uri": "sip:1001@pbx.example.com",
        "ws_servers": ["wss://pbx.example.com:8089/ws"],
        "display_name": "1001",
        "authorization_user": "1001",
        "password": None,  # an admin token: only the line's softphone token reads the secret
        "ice_servers": [
            {"urls": "stun:stun.example.com:3478"},
            {"urls": "stun:[2001:db8::1]"},
            {"urls": "turns:turn.example.com:5349?transport=tcp", **_credentials(turn[0])},
            {"urls": "turn:turn.example.com", **_credentials(turn[1])},
        ],
        "turn_expires_at": answer["turn_expires_at"],
        "register": True,
    }
    # The TURN REST convention, checked as coturn checks it: "<expiry>:<user>", base64(HMAC-SHA1(secret, username)).
    username = turn[0]["username"]
    expiry, _, user = username.partition(":")
    assert before + TURN_LIFETIME <= int(expiry) <= after + TURN_LIFETIME
    assert user and ":" not in user
    digest = hmac.new(TURN_SECRET.encode(), username.encode(), hashlib.sha1).digest()
    assert turn[0]["credential"] == base64.b64encode(digest).decode()
    assert turn[1] == turn[0] | {"urls": "turn:turn.example.com"}
    assert answer["turn_expires_at"] == datetime.fromtimestamp(int(expiry), UTC).isoformat().replace("+00:00", "Z")
    plain = await create(api, "No websocket")
    missing = await api.get(f"{BASE}{plain['id']}/webrtc_config/")
    assert missing.status == 409
    answer = await missing.json()
    assert answer["error"] == "no WebSocket URL configured" and "websocket_url" in answer["detail"]


def _credentials(server: dict[str, str]) -> dict[str, str]:
    return {"username": server["username"], "credential": server["credential"]}


async def test_only_the_lines_softphone_token_reads_its_secret(api: AppClient, db: Database) -> None:
    """read, write and admin tokens get no SIP secret and no stored TURN credential; the softphone token
    bound to the line gets the secret, and a softphone token of another line learns nothing of this one."""
    line = await create(
        api,
        "Desk",
        secret=SECRET,
        websocket_url="ws://pbx.example.com:8088/ws",
        turn_servers=[{"urls": "turn:turn.example.com"}],
    )
    other = await create(api, "Other desk", secret=SECRET + "-other", websocket_url="ws://pbx.example.com:8088/ws")
    path = f"{BASE}{line['id']}/webrtc_config/"
    for scope in (Scope.READ, Scope.WRITE, Scope.ADMIN):
        response = await api.get(path, headers=bearer(await mint_token(db, scope)))
        text = await response.text()
        assert response.status == 200, text
        assert SECRET not in text and (await response.json())["password"] is None
        # Minted for this request: the stored TURN entry holds no credential to hand out.
        [turn] = [server for server in (await response.json())["ice_servers"] if "credential" in server]
        assert turn["username"].count(":") == 1
    softphone = bearer(await mint_token(db, Scope.SOFTPHONE, sip_configuration_id=uuid.UUID(line["id"])))
    mine = await api.get(path, headers=softphone)
    assert mine.status == 200 and (await mine.json())["password"] == SECRET
    theirs = await api.get(f"{BASE}{other['id']}/webrtc_config/", headers=softphone)
    assert theirs.status == 404 and SECRET not in await theirs.text()
    # Everything else under /api/sip-configurations/ stays admin-only, for a softphone token too.
    assert (await api.get(f"{BASE}{line['id']}/", headers=softphone)).status == 403
    stored_turn = await (await api.get(f"{BASE}{line['id']}/")).json()
    assert stored_turn["turn_servers"] == [{"urls": "turn:turn.example.com"}]


async def test_without_a_turn_secret_turn_servers_are_left_out(
    services: Services, db: Database, aiohttp_client: Callable[..., Awaitable[AppClient]]
) -> None:
    services.config = dataclasses.replace(services.config, turn=TurnConfig())  # as a reload swaps it
    client = await aiohttp_client(create_app(services), headers=bearer(await mint_token(db)))
    created = await create(
        client,
        "No TURN secret",
        websocket_url="ws://pbx.example.com:8088/ws",
        stun_servers=["stun:stun.example.com"],
        turn_servers=[{"urls": "turn:turn.example.com"}],
    )
    answer = await (await client.get(f"{BASE}{created['id']}/webrtc_config/")).json()
    assert answer["ice_servers"] == [{"urls": "stun:stun.example.com"}] and answer["turn_expires_at"] is None


async def test_secret_never_leaves(api: AppClient, udp_responder: UdpResponder) -> None:
    """Every endpoint, success or failure: the secret is in no response body and in no log line."""
    with structlog.testing.capture_logs() as logs:
        texts: list[str] = []

        async def call(method: str, path: str, **kwargs: Any) -> None:
            response = await api.request(method, path, **kwargs)
            texts.append(await response.text())

        created = await api.post(
            BASE,
            json=body_of(
                "Secretive",
                server=LOOPBACK,
                port=udp_responder.port,
                secret=SECRET,
                websocket_url="ws://x.example.com/ws",
            ),
        )
        texts.append(await created.text())
        item = f"{BASE}{(await created.json())['id']}/"
        await call("POST", BASE, json=body_of("Secretive", secret=SECRET))  # 409 name taken
        await call("POST", BASE, json=body_of("Other", secret=SECRET, port=0))  # 422
        await call("POST", BASE, json=body_of("Other", secret=SECRET * 20))  # 422 too long
        await call("GET", BASE)
        await call("GET", item)
        await call("PATCH", item, json={"secret": SECRET, "notes": "x"})  # 422 unknown field
        await call("PATCH", item, json={"secret": SECRET + "!"})
        await call("GET", f"{item}webrtc_config/")
        await call("POST", f"{item}set_default/")
        await call("POST", f"{item}test_connection/")
    assert len(texts) == 11
    for text in texts:
        assert SECRET not in text
    assert any(entry["event"] == "sip probe" for entry in logs)  # the log capture saw the probe
    assert any(entry["event"] == "request" for entry in logs)
    assert SECRET not in repr(logs)
    assert '"has_secret": true' in texts[0]


async def test_connection_reaches_loopback_responders(
    api: AppClient, udp_responder: UdpResponder, tcp_responder: StreamResponder
) -> None:
    udp = await create(api, "udp", server=LOOPBACK, port=udp_responder.port)
    response = await api.post(f"{BASE}{udp['id']}/test_connection/")
    assert response.status == 200
    result = await response.json()
    assert result["latency_ms"] is not None and result["latency_ms"] >= 0
    assert result == {
        "reachable": True,
        "latency_ms": result["latency_ms"],
        "transport": "udp",
        "target": f"{LOOPBACK}:{udp_responder.port}",
        "status_code": 200,
        "error": None,
    }
    assert len(udp_responder.requests) == 1 and udp_responder.requests[0].startswith(b"OPTIONS sip:")

    tcp = await create(api, "tcp", server=LOOPBACK, port=tcp_responder.port, transport="tcp")
    result = await (await api.post(f"{BASE}{tcp['id']}/test_connection/")).json()
    assert (result["reachable"], result["status_code"], result["transport"]) == (True, 200, "tcp")


async def test_connection_failures_are_answers_not_errors(api: AppClient) -> None:
    closed_tcp = free_port(socket.SOCK_STREAM)
    refused = await create(api, "refused", server=LOOPBACK, port=closed_tcp, transport="tcp")
    response = await api.post(f"{BASE}{refused['id']}/test_connection/")
    assert response.status == 200
    assert await response.json() == {
        "reachable": False,
        "latency_ms": None,
        "transport": "tcp",
        "target": f"{LOOPBACK}:{closed_tcp}",
        "status_code": None,
        "error": f"connection refused by {LOOPBACK}:{closed_tcp} (nothing listening)",
    }
    closed_udp = free_port(socket.SOCK_DGRAM)
    icmp = await create(api, "icmp", server=LOOPBACK, port=closed_udp)
    result = await (await api.post(f"{BASE}{icmp['id']}/test_connection/")).json()
    assert result["reachable"] is False and "refused" in result["error"]

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind((LOOPBACK, 0))
        quiet = await create(api, "quiet", server=LOOPBACK, port=silent.getsockname()[1])
        result = await (await api.post(f"{BASE}{quiet['id']}/test_connection/")).json()
    assert result["reachable"] is False
    assert result["error"] == "timed out after 0.4s while waiting for a SIP response (UDP)"
    assert (await api.post(f"{BASE}{uuid.uuid4()}/test_connection/")).status == 404


async def test_concurrent_changes_keep_one_default(api: AppClient, db: Database) -> None:
    """Simultaneous first creations and simultaneous set_default calls still leave exactly one default."""
    responses = await asyncio.gather(*(api.post(BASE, json=body_of(f"racer {i}")) for i in range(6)))
    assert [r.status for r in responses] == [201] * 6
    assert sum(d for d, _ in (await stored(db)).values()) == 1
    ids = [(await r.json())["id"] for r in responses]
    moves = await asyncio.gather(*(api.post(f"{BASE}{config_id}/set_default/") for config_id in ids))
    assert [r.status for r in moves] == [200] * 6
    assert sum(d for d, _ in (await stored(db)).values()) == 1

"""Crafted input over real HTTP on both databases: numbers in ASCII digits only, text that cannot be
stored, values that would break a switch command's framing, Unicode digits in numbers, and the JSON
answer to a bug. Each is a 4xx naming the field (never a 500), or, for a bug, one JSON 500 and one
log line with the same request id."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

from calld import signing
from calld.http.app import create_app
from calld.http.errors import error_middleware
from calld.service.wiring import Services
from calld.storage.database import Database
from tests.support import (
    SIP,
    WEBHOOK_SECRETS,
    AppClient,
    LogCapture,
    SettableClock,
    deliver,
    sip_body,
    stored,
    webhook_signer,
)

Client = Callable[..., Awaitable[AppClient]]


@pytest.fixture
async def api(
    services: Services, auth_headers: dict[str, str], clock: SettableClock, aiohttp_client: Client
) -> AppClient:
    return await aiohttp_client(create_app(services), headers=auth_headers, middlewares=(webhook_signer(clock),))


async def answer(resp: Any) -> tuple[int, Any]:
    return resp.status, await resp.json()


def unhandled(log_capture: LogCapture) -> list[dict[str, Any]]:
    return [line for line in log_capture.lines() if line["event"] == "unhandled error"]


@pytest.mark.parametrize("digit", ["¹", "①", "\u0661", "\uff11"])
async def test_a_signature_time_in_non_ascii_digits_is_refused_as_malformed(
    services: Services,
    db: Database,
    clock: SettableClock,
    aiohttp_client: Client,
    log_capture: LogCapture,
    digit: str,
) -> None:
    client = await aiohttp_client(create_app(services))
    body = sip_body(clock)
    good = signing.sign(WEBHOOK_SECRETS["sip"], body, clock.now)
    header = "t=" + digit * 10 + "," + good.split(",", 1)[1]
    status, data = await deliver(client, SIP, body, header)
    assert (status, data["error"]) == (401, "webhook rejected")
    assert "t must be Unix seconds" in data["detail"]["signature"]
    assert await stored(db) == (0, 0)
    assert unhandled(log_capture) == []


@pytest.mark.parametrize("value", ["\uff11\uff10", "\u0661\u0660", "1_0", " 10", "+10"])
async def test_a_query_number_is_ascii_digits_only(api: AppClient, value: str) -> None:
    status, data = await answer(await api.get("/api/call-logs/", params={"limit": value}))
    assert status in (400, 422), data
    assert data["detail"]["limit"] == "must be a whole number"


@pytest.mark.parametrize(
    ("secret", "problem"),
    [("\ud800abc", "lone surrogates"), ("abc\x00def", "NUL")],
)
async def test_a_sip_secret_that_cannot_be_stored_is_422(api: AppClient, secret: str, problem: str) -> None:
    body = {"name": "trunk", "server": "pbx.example.com", "username": "1001", "secret": secret}
    raw = json.dumps(body)  # ensure_ascii: the surrogate travels as the JSON escape "\ud800"
    resp = await api.post("/api/sip-configurations/", data=raw, headers={"Content-Type": "application/json"})
    status, data = await answer(resp)
    assert status == 422, data
    assert problem in data["detail"]["secret"]
    assert secret not in json.dumps(data)  # the secret is never repeated


@pytest.mark.parametrize("port", ["\uff15\uff10\uff16\uff10", "\u0665\u0660\u0666\u0660"])
async def test_a_stun_port_is_ascii_digits_only(api: AppClient, port: str) -> None:
    body = {
        "name": "t",
        "server": "pbx.example.com",
        "username": "1001",
        "stun_servers": [f"stun:stun.example.com:{port}"],
    }
    status, data = await answer(await api.post("/api/sip-configurations/", json=body))
    assert status == 422, data
    assert "port" in data["detail"]["stun_servers"]


# --- values that reach a switch command (AMI action, Event Socket command) -----------------------

BREAKS = ["100\r\n1", "10\n01", "1001\r", "10\x0001"]


async def new_call(api: AppClient) -> str:
    status, data = await answer(
        await api.post(
            "/api/call-logs/", json={"direction": "outbound", "caller_number": "1001", "recipient_number": "1002"}
        )
    )
    assert status == 201, data
    return str(data["id"])


@pytest.mark.parametrize("value", BREAKS)
@pytest.mark.parametrize("field", ["recipient_number", "caller_number"])
async def test_originate_numbers_must_not_break_the_command(api: AppClient, field: str, value: str) -> None:
    """Originate (AMI) / bgapi originate (ESL) dial both numbers."""
    body = {"recipient_number": "1002", "caller_number": "1001", field: value}
    status, data = await answer(await api.post("/api/call-logs/initiate_call/", json=body))
    assert status == 422, data
    assert "line breaks" in data["detail"][field]


@pytest.mark.parametrize("value", BREAKS)
async def test_a_transfer_target_must_not_break_the_command(api: AppClient, value: str) -> None:
    """BlindTransfer / Atxfer (AMI) and uuid_transfer (ESL) carry the target."""
    call = await new_call(api)
    await api.patch(f"/api/call-logs/{call}/update_status/", json={"status": "answered"})
    status, data = await answer(await api.post(f"/api/call-logs/{call}/transfer_call/", json={"transfer_to": value}))
    assert status == 422, data
    assert "line breaks" in data["detail"]["transfer_to"]


@pytest.mark.parametrize("value", ["/var/rec/a.wav\nhangup", "/var/rec/a.wav\r\nstop", "/var/rec/a\x00.wav"])
async def test_a_recording_path_must_not_break_the_command(api: AppClient, value: str) -> None:
    """A recording's local_path is what stop_recording hands to StopMixMonitor / uuid_record ... stop."""
    call = await new_call(api)
    body = {"call_id": call, "status": "recording", "local_path": value}
    status, data = await answer(await api.post("/api/webhooks/recording/", json=body))
    assert status == 422, data
    assert "local_path" in data["detail"]


# --- Unicode digits in numbers -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "stored_as"),
    [
        ("\uff11\uff10\uff10\uff11", "1001"),
        ("\u0661\u0660\u0660\u0661", "1001"),
        ("\u06f1\u06f0\u06f0\u06f1", "1001"),
        ("+\uff11 \uff14\uff11\uff15 \uff15\uff15\uff15 \uff10\uff11\uff10\uff10", "+14155550100"),
    ],
)
async def test_unicode_digits_in_numbers_are_stored_in_ascii_and_found(
    api: AppClient, sent: str, stored_as: str
) -> None:
    body = {"direction": "inbound", "caller_number": sent, "recipient_number": "1002"}
    status, data = await answer(await api.post("/api/call-logs/", json=body))
    assert status == 201, data
    assert data["caller_number"] == stored_as
    for query in (stored_as, sent):
        status, found = await answer(await api.get("/api/call-logs/", params={"number": query}))
        assert status == 200, found
        assert [c["id"] for c in found["results"]] == [data["id"]]


async def test_a_client_number_in_unicode_digits_matches_calls(api: AppClient) -> None:
    status, client = await answer(
        await api.post("/api/clients/", json={"name": "Ann", "phone_numbers": ["\u0662\u0660\u0660\u0663"]})
    )
    assert status == 201, client
    status, call = await answer(
        await api.post(
            "/api/call-logs/", json={"direction": "inbound", "caller_number": "2003", "recipient_number": "1002"}
        )
    )
    assert status == 201, call
    assert call["client"] == client["id"]


# --- a bug in calld ------------------------------------------------------------------------------


async def test_an_unexpected_exception_is_a_json_500_with_a_request_id_logged_once(
    aiohttp_client: Client, log_capture: LogCapture
) -> None:
    async def broken(request: web.Request) -> web.Response:
        raise RuntimeError("secret internals")

    app = web.Application(middlewares=[error_middleware])
    app.router.add_get("/broken", broken)
    client = await aiohttp_client(app)
    resp = await client.get("/broken")
    assert resp.status == 500
    assert resp.content_type == "application/json"
    data = await resp.json()
    assert data["error"] == "internal error"
    assert "secret internals" not in json.dumps(data)
    [line] = unhandled(log_capture)
    assert data["code"] == "internal_error"
    assert line["request_id"] == data["request_id"] and len(data["request_id"]) >= 16
    assert "secret internals" in line["exception"]

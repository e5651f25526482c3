"""Near misses of a route: the trailing slash, and a method a fixed action does not take."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from calld.config import Config
from calld.http.app import create_app
from calld.service.wiring import Services
from calld.storage.calls import CallStore
from tests.support import AppClient, bearer, fresh_database, mint_token


@pytest.fixture
async def client(tmp_path: Path, aiohttp_client: Callable[..., Awaitable[AppClient]]) -> AsyncIterator[AppClient]:
    """A client of the app on a SQLite file, with an admin token (these rules do not touch storage)."""
    db = await fresh_database("sqlite", tmp_path)
    try:
        app = create_app(Services(config=Config(), db=db, calls=CallStore()))
        yield await aiohttp_client(app, headers=bearer(await mint_token(db)))
    finally:
        await db.close()


@pytest.mark.parametrize(
    ("asked", "location"),
    [
        ("/api/call-logs", "/api/call-logs/"),
        ("/api/call-logs?status=ended&limit=5", "/api/call-logs/?status=ended&limit=5"),
        ("/api/clients/00000000-0000-0000-0000-000000000000", "/api/clients/00000000-0000-0000-0000-000000000000/"),
        ("/api/docs/", "/api/docs"),
        ("/api/openapi.json/", "/api/openapi.json"),
    ],
)
async def test_a_get_without_its_slash_is_redirected(client: AppClient, asked: str, location: str) -> None:
    resp = await client.get(asked, allow_redirects=False)
    assert resp.status == 308
    assert resp.headers["Location"] == location
    assert (await client.get(asked)).status == 200 or location.startswith("/api/clients/")


async def test_other_methods_get_a_404_naming_the_path(client: AppClient) -> None:
    resp = await client.post("/api/call-logs", json={"direction": "inbound"})
    assert resp.status == 404
    assert (await resp.json())["detail"] == {"path": "no such endpoint; the path is /api/call-logs/"}
    resp = await client.get("/api/nothing-here")
    assert resp.status == 404
    assert (await resp.json())["detail"] == {"path": "no such endpoint"}


@pytest.mark.parametrize("method", ["GET", "DELETE", "PATCH", "PUT"])
async def test_a_method_an_action_does_not_take_is_405_with_allow(client: AppClient, method: str) -> None:
    resp = await client.request(method, "/api/call-logs/initiate_call/")
    assert resp.status == 405
    assert resp.headers["Allow"] == "POST"
    assert await resp.json() == {
        "error": "method not allowed",
        "code": "method_not_allowed",
        "detail": {"method": "/api/call-logs/initiate_call/ takes POST"},
    }


async def test_a_method_a_route_does_not_take_is_405_with_allow(client: AppClient) -> None:
    resp = await client.put("/api/call-logs/")
    assert (resp.status, resp.headers["Allow"]) == (405, "GET, HEAD, POST")
    resp = await client.put("/api/call-logs/00000000-0000-0000-0000-000000000000/")
    assert (resp.status, resp.headers["Allow"]) == (405, "DELETE, GET, HEAD, PATCH")
    assert await resp.json() == {
        "error": "method not allowed",
        "code": "method_not_allowed",
        "detail": {"method": "this path takes DELETE, GET, HEAD, PATCH"},
    }


async def test_an_illegal_status_change_says_from_what_to_what(client: AppClient) -> None:
    new = {"direction": "inbound", "caller_number": "+14155550100", "recipient_number": "1001"}
    call = await (await client.post("/api/call-logs/", json=new)).json()
    assert (await client.post(f"/api/call-logs/{call['id']}/end_call/")).status == 200
    resp = await client.patch(f"/api/call-logs/{call['id']}/update_status/", json={"status": "ringing"})
    assert resp.status == 409
    body = await resp.json()
    assert body["detail"]["status"] == "cannot change from missed to ringing: the call is already missed"
    assert (body["current_status"], body["requested"]) == ("missed", "ringing")

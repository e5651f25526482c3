"""calld with its FreeSWITCH adapter against a fake switch replaying a real capture, and reading its API."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from calld.adapters.freeswitch.adapter import LIST_CHANNELS, VERSION, FreeswitchAdapter
from calld.adapters.freeswitch.settings import FreeswitchConfig
from calld.config import CallsConfig, Config, DatabaseConfig, ServerConfig
from calld.daemon import Daemon
from calld.storage.calls import CallIds, Clock, system_clock
from calld.storage.database import Database
from tests.fakes.esl_capture import Capture, connect_answers
from tests.fakes.esl_server import FakeEslServer, normalise
from tests.support import api_session


def connect_queries(capture: Capture) -> list[bytes]:
    """What calld asks after subscribing that the recorder did not (it asked ``api version`` itself
    in a_answered, right after subscribing: there the capture answers it)."""
    sends = [normalise(s) for s in capture.sends()]
    after = sends[2:3]
    return [LIST_CHANNELS] if after == [VERSION] else [LIST_CHANNELS, VERSION]


def fake_switch(capture: Capture, **options: Any) -> FakeEslServer:
    return FakeEslServer(capture, after_subscribe=connect_queries(capture), answers=connect_answers(), **options)


async def eventually(check: Callable[[], Awaitable[Any]], within: float = 15.0) -> Any:
    """Poll ``check`` until it returns something truthy."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {within} s (last: {result!r})")
        await asyncio.sleep(0.02)


async def calls(http: aiohttp.ClientSession) -> list[dict[str, Any]]:
    async with http.get("/api/call-logs/", params={"ordering": "started_at"}) as response:
        assert response.status == 200, await response.text()
        return list((await response.json())["results"])


async def call(http: aiohttp.ClientSession, call_id: str) -> dict[str, Any]:
    async with http.get(f"/api/call-logs/{call_id}/") as response:
        assert response.status == 200, await response.text()
        result: dict[str, Any] = await response.json()
        return result


@asynccontextmanager
async def calld(
    db: Database, server: FakeEslServer, call_ids: CallIds = uuid.uuid4, clock: Clock = system_clock, **settings: Any
) -> AsyncIterator[tuple[Daemon, FreeswitchAdapter, aiohttp.ClientSession]]:
    fs = FreeswitchConfig(**{"host": "127.0.0.1", "port": server.port, "password": "ClueCon", **settings})
    config = Config(
        server=ServerConfig(host="127.0.0.1", port=0),
        database=DatabaseConfig(url=db.url),
        calls=CallsConfig(timezone="UTC"),
        freeswitch=fs,
    )
    adapter = FreeswitchAdapter(fs)
    daemon = Daemon(config, switch=adapter, call_ids=call_ids, clock=clock)
    await daemon.start()
    http = api_session(daemon)
    try:
        await asyncio.wait_for(adapter.connected.wait(), 10)
        yield daemon, adapter, http
    finally:
        await http.close()
        await daemon.stop()


async def only_call_in(http: aiohttp.ClientSession, status: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        found = await calls(http)
        return found[0] if len(found) == 1 and found[0]["status"] == status else None

    found: dict[str, Any] = await eventually(check)
    return await call(http, found["id"])

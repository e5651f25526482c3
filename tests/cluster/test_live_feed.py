"""One live feed across calld processes sharing PostgreSQL: a WebSocket client on any instance sees
every change, once, whichever instance made it."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp

from calld.storage.database import Database
from tests.cluster.processes import Instance, admin_token, instance, until
from tests.support import PG_URL


async def socket(inst: Instance, token: str, query: str = "") -> aiohttp.ClientWebSocketResponse:
    ws = await inst.client(token).ws_connect(f"/api/ws?access_token={token}{query}")
    assert (await ws.receive_json(timeout=5))["type"] == "ready"
    return ws


async def create_call(inst: Instance, token: str, sip_call_id: str) -> dict[str, Any]:
    body = {"caller_number": "+14155550100", "recipient_number": "1001", "sip_call_id": sip_call_id}
    async with inst.client(token).post("/api/call-logs/log_incoming_call/", json=body) as response:
        assert response.status == 201, await response.text()
        created: dict[str, Any] = await response.json()
        return created


async def test_a_client_on_b_sees_a_call_created_through_a_and_nobody_sees_it_twice(
    tmp_path: Path, pg: Database
) -> None:
    token = await admin_token(pg)
    a = instance(tmp_path, "a", PG_URL, None)
    b = instance(tmp_path, "b", PG_URL, None)
    try:
        a.start()
        b.start()
        await until(a.ready, what="a answers")
        await until(b.ready, what="b answers")
        on_a, on_b = await socket(a, token), await socket(b, token)
        latencies = []
        for n in range(5):
            began = time.monotonic()
            created = await create_call(a, token, f"feed-{n}@pbx")
            seen = await on_b.receive_json(timeout=10)
            latencies.append(time.monotonic() - began)
            assert (seen["type"], seen["call"]["id"]) == ("call.created", created["id"])
            assert seen["event"]["event_type"] == "initiated"
            local = await on_a.receive_json(timeout=10)  # a's own client: the local push
            assert (local["type"], local["call"]["id"]) == ("call.created", created["id"])
        print(
            f"\nlive feed across instances: created on a -> pushed on b, best {min(latencies) * 1000:.1f} ms, "
            f"worst {max(latencies) * 1000:.1f} ms (including the POST)"
        )
        # The other way round, and a's client gets the call from b exactly once: the next message
        # after it is the next change, not a copy.
        from_b = await create_call(b, token, "feed-b@pbx")
        second = await create_call(b, token, "feed-b2@pbx")
        got = [await on_a.receive_json(timeout=10), await on_a.receive_json(timeout=10)]
        assert [m["call"]["id"] for m in got] == [from_b["id"], second["id"]]
        assert [
            m["call"]["id"] for m in [await on_b.receive_json(timeout=10), await on_b.receive_json(timeout=10)]
        ] == [
            from_b["id"],
            second["id"],
        ]
        # A burst: every change relayed once (read together on b).
        burst = await asyncio.gather(*(create_call(a, token, f"burst-{n}@pbx") for n in range(30)))
        relayed = [await on_b.receive_json(timeout=10) for _ in burst]
        local_burst = [await on_a.receive_json(timeout=10) for _ in burst]
        assert sorted(m["call"]["id"] for m in relayed) == sorted(c["id"] for c in burst)
        assert sorted(m["call"]["id"] for m in local_burst) == sorted(c["id"] for c in burst)
        # A client's filter applies to relayed changes as to local ones.
        only = await socket(b, token, f"&call={created['id']}")
        async with a.client(token).post(f"/api/call-logs/{created['id']}/end_call/") as response:
            assert response.status == 200, await response.text()
        await create_call(a, token, "feed-unrelated@pbx")
        ended = await only.receive_json(timeout=10)
        assert ended["call"]["id"] == created["id"] and ended["event"]["event_type"] == "ended"
        completed = await only.receive_json(timeout=10)
        assert completed["type"] == "call.completed"
        await only.close()
        await on_a.close()
        await on_b.close()
    finally:
        assert await a.stop() == 0
        assert await b.stop() == 0

"""Several calld on one PostgreSQL: how long a standby takes to take over, and what the cross-instance
live feed adds to a push.

Takeover: two real ``calld run`` processes for one PBX against a fake FreeSWITCH (the d_hold capture's
login and subscription, real FreeSWITCH 1.10.12 bytes, then an idle link); the leader is killed with
SIGKILL, and the time is measured from the kill to (a) the standby's epoch bump committed in
``pbx_leaders`` (it leads) and (b) the switch accepting the new leader's connection (it logs calls again).
The killed one is restarted as the new standby and the round repeats, alternately.

Live feed: two API-only processes, a WebSocket client on each; calls are created one at a time through
instance A's API. Baseline, same run: the push to A's own client (local, from A's commit hook); measured:
the push to B's client (A's NOTIFY in the commit, B's LISTEN, B reads the call and event, pushes). Both are
timed from just before the POST; the difference is what the relay adds.

Usage: .venv/bin/python bench/failover.py [--pg URL] [--rounds 6] [--calls 100] 2>/dev/null
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import aiohttp
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import DEFAULT_PG, fresh, percentile
from calld.adapters.freeswitch.adapter import LIST_CHANNELS, VERSION
from calld.storage.database import Database
from tests.cluster.processes import Instance, admin_token, instance, until
from tests.fakes.esl_capture import connect_answers, idle_session, load_capture
from tests.fakes.esl_server import FakeEslServer

PORTS = (19141, 19142)


async def holder(db: Database) -> str | None:
    async with db.read() as session:
        row = (await session.execute(sa.text("SELECT holder FROM pbx_leaders"))).first()
    return row[0] if row is not None else None


async def takeover(url: str, db: Database, rounds: int, workdir: Path) -> list[tuple[float, float]]:
    capture = idle_session(load_capture("d_hold.json"))
    results = []
    async with FakeEslServer(capture, after_subscribe=[LIST_CHANNELS, VERSION], answers=connect_answers()) as switch:
        pair = [instance(workdir, name, port, url, switch.port) for name, port in zip("ab", PORTS, strict=True)]
        leader, standby = pair
        try:
            leader.start()
            await until(lambda: _holds(db, leader.name), what="first leader")
            standby.start()
            await until(standby.leader, what="standby ready")
            for _ in range(rounds):
                await until(partial(_says, standby, leader.name), what="standby sees the leader")
                connections = switch.connections
                leader.signal(signal.SIGKILL)
                killed = time.monotonic()
                await until(partial(_holds, db, standby.name), within=30, what="takeover")
                led = time.monotonic() - killed
                await until(partial(_connected_since, switch, connections), within=30, what="reconnect")
                connected = time.monotonic() - killed
                results.append((led, connected))
                assert leader.proc is not None
                leader.proc.wait()
                leader.start()  # back as the standby
                await until(leader.leader, what="restarted as standby")
                leader, standby = standby, leader
        finally:
            for inst in pair:
                await inst.stop()
    return results


async def _holds(db: Database, name: str) -> bool:
    return await holder(db) == name


async def _says(inst: Instance, leader: str) -> bool:
    return await inst.leader() == leader


async def _connected_since(switch: FakeEslServer, before: int) -> bool:
    return switch.connections > before


async def feed(url: str, db: Database, calls: int, workdir: Path) -> tuple[list[float], list[float]]:
    token = await admin_token(db)
    a, b = (instance(workdir, f"feed-{name}", port, url, None) for name, port in zip("ab", PORTS, strict=True))
    local, relayed = [], []
    try:
        a.start()
        b.start()
        await until(a.ready)
        await until(b.ready)
        ws_a = await a.client(token).ws_connect(f"/api/ws?access_token={token}")
        ws_b = await b.client(token).ws_connect(f"/api/ws?access_token={token}")
        for ws in (ws_a, ws_b):
            assert (await ws.receive_json(timeout=5))["type"] == "ready"
        for n in range(calls):
            body = {"caller_number": "+14155550100", "recipient_number": "1001", "sip_call_id": f"bench-{n}@pbx"}
            began = time.monotonic()
            post = asyncio.create_task(_post(a.client(token), body))
            got_a, got_b = await asyncio.gather(_next(ws_a), _next(ws_b))
            created = await post
            assert got_a[1] == got_b[1] == created
            local.append(got_a[0] - began)
            relayed.append(got_b[0] - began)
    finally:
        await a.stop()
        await b.stop()
    return local, relayed


async def _post(http: aiohttp.ClientSession, body: dict[str, str]) -> str:
    async with http.post("/api/call-logs/log_incoming_call/", json=body) as response:
        assert response.status == 201, await response.text()
        return str((await response.json())["id"])


async def _next(ws: aiohttp.ClientWebSocketResponse) -> tuple[float, str]:
    message = await ws.receive_json(timeout=10)
    return time.monotonic(), str(message["call"]["id"])


def ms(values: list[float]) -> str:
    return " / ".join(f"{percentile(values, p) * 1000:.1f}" for p in (50, 99)) + f" / {max(values) * 1000:.1f}"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg", default=os.environ.get("CALLD_BENCH_PG", DEFAULT_PG))
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--calls", type=int, default=100)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        db = await fresh(args.pg)
        try:
            rounds = await takeover(args.pg, db, args.rounds, Path(tmp))
            led = [r[0] for r in rounds]
            connected = [r[1] for r in rounds]
            print(f"takeover after kill -9, {len(rounds)} rounds (lock_poll_seconds 0.5), min / median / max:")
            print(f"  standby leads (epoch committed): {_spread(led)} s")
            print(f"  new leader connected to switch:  {_spread(connected)} s")
            db2 = await fresh(args.pg)
            try:
                local, relayed = await feed(args.pg, db2, args.calls, Path(tmp))
            finally:
                await db2.close()
            print(f"live feed, {args.calls} calls created through A, POST -> pushed, p50 / p99 / max ms:")
            print(f"  baseline, A's own client (local push): {ms(local)}")
            print(f"  B's client (NOTIFY, LISTEN, read):     {ms(relayed)}")
            extra = [r - lo for r, lo in zip(relayed, local, strict=True)]
            print(f"  added by the relay:                    {ms(extra)}")
            print(f"  ratio B / A at p50: {percentile(relayed, 50) / percentile(local, 50):.2f}")
        finally:
            await db.close()


def _spread(values: list[float]) -> str:
    return f"{min(values):.3f} / {percentile(values, 50):.3f} / {max(values):.3f}"


if __name__ == "__main__":
    asyncio.run(main())

"""The REST API under load from a real HTTP client in another process.

calld's daemon serves a database bulk-loaded with --calls calls (the last 2,000 of them with six
events each, so detail pages carry events); a client subprocess (aiohttp, its own core) loads:

  list        GET /api/call-logs/?limit=50            (first page, newest first, with the total)
  detail      GET /api/call-logs/{id}/                (one of 2,000 calls, at random; with events)
  statistics  GET /api/call-logs/statistics/?period=today

For each: the most requests/s 16 concurrent connections get (closed loop, --seconds), then p50/p99
at a steady --rate requests/s and at a light --light requests/s (open loop: requests leave on a
fixed schedule and latency is counted from the scheduled time, so a stall is not hidden by the
client waiting for it).
Baseline, same run, same client: a bare aiohttp server in this process answering a fixed
detail-sized JSON body (no auth, no database): the floor of the HTTP stack and the event loop.
Ratio = baseline / calld (for requests/s: calld / baseline).
Floor (SQLite): the SQL calld runs for a list page and for a detail (captured from its own query
functions), replayed in plain ``sqlite3`` with ``fetchall`` and nothing else: the least a request
can cost below SQLAlchemy and Python serialisation. Added to the bare server's time a request, it
bounds the ratio any handler over this storage could reach on this machine.
Logging is configured as the daemon runs by default (level "info", JSON lines on stderr), so each
request's log line is paid for as in production; run with 2>/dev/null to keep the table readable.

Usage: .venv/bin/python bench/api_load.py [--calls 100000] [--rate 1000] [--seconds 8] [--pg URL] 2>/dev/null
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp
import sqlalchemy as sa
from aiohttp import web

from bench.bulkload import load
from bench.common import DEFAULT_PG, percentile
from calld.config import Config, DatabaseConfig, ServerConfig
from calld.daemon import Daemon, keep_startup_heap_out_of_collections
from calld.domain.call_filter import CallFilter
from calld.domain.scopes import Scope
from calld.logging import configure_logging
from calld.storage.call_queries import call_detail, tagged_call_page
from calld.storage.models import CallEvent, CallLog
from tests.support import mint_token

SAMPLE = 2000


# --- the client (runs in a subprocess) ------------------------------------------------------------


async def _closed(http: aiohttp.ClientSession, paths: list[str], seconds: float, workers: int = 16) -> float:
    done, deadline = 0, time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            async with http.get(random.choice(paths)) as response:
                await response.read()
                assert response.status == 200, response.status
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(workers)))
    return done / (time.perf_counter() - started)


async def _open(http: aiohttp.ClientSession, paths: list[str], seconds: float, rate: float) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0

    async def one(path: str, due: float) -> None:
        nonlocal errors
        async with http.get(path) as response:
            await response.read()
            if response.status != 200:
                errors += 1
        latencies.append(time.perf_counter() - due)

    tasks = set()
    start, n = time.perf_counter(), 0
    while n < rate * seconds:
        due = start + n / rate
        wait = due - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        task = asyncio.create_task(one(random.choice(paths), due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        n += 1
    await asyncio.gather(*tasks)
    achieved = len(latencies) / (time.perf_counter() - start)
    return {
        "rate": achieved,
        "p50": percentile(latencies, 50),
        "p99": percentile(latencies, 99),
        "max": max(latencies),
        "errors": errors,
    }


async def client(spec: dict[str, Any]) -> dict[str, Any]:
    connector = aiohttp.TCPConnector(limit=256)
    headers = {"Authorization": f"Bearer {spec['token']}"} if spec.get("token") else {}
    async with aiohttp.ClientSession(spec["base"], headers=headers, connector=connector) as http:
        for path in spec["paths"][:20]:  # warm up: connections, caches
            async with http.get(path) as response:
                await response.read()
        throughput = await _closed(http, spec["paths"], spec["seconds"])
        light = await _open(http, spec["paths"], spec["seconds"], spec["light"])
        steady = await _open(http, spec["paths"], spec["seconds"], spec["rate"])
    return {"max_rps": throughput, **steady, "light": light}


def run_client(spec: dict[str, Any]) -> dict[str, Any]:
    """Run the load in a child process (another core) and return what it measured."""
    done = subprocess.run(
        [sys.executable, __file__, "--client"], input=json.dumps(spec), capture_output=True, text=True, check=True
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


# --- the server side -------------------------------------------------------------------------------


async def prepare(url: str, calls: int) -> list[uuid.UUID]:
    """Load ``calls`` calls and give the newest ``SAMPLE`` of them six events each; their ids."""
    await load(url, calls)
    daemon_db = Daemon(Config(database=DatabaseConfig(url=url))).db
    try:
        async with daemon_db.write() as session:
            rows = (
                await session.execute(
                    sa.select(CallLog.id, CallLog.started_at).order_by(CallLog.started_at.desc()).limit(SAMPLE)
                )
            ).all()
            events = []
            for call_id, started in rows:
                for n, kind in enumerate(("initiated", "ringing", "answered", "hold", "unhold", "ended")):
                    events.append(
                        {
                            "call_id": call_id,
                            "event_type": kind,
                            "timestamp": started + timedelta(seconds=5 * n),
                            "meta": {"switch": "freeswitch", "channel": f"sofia/internal/{1000 + n}"},
                            "source": "switch",
                            "dedup_key": f"bench:{call_id}:{n}",
                            "created_at": started + timedelta(seconds=5 * n),
                        }
                    )
            await session.execute(sa.insert(CallEvent), events)
    finally:
        await daemon_db.close()
    return [row[0] for row in rows]


def read_floor(path: str, ids: list[uuid.UUID], rounds: int = 400) -> dict[str, float]:
    """Seconds a request for the list page and for a detail spend in plain ``sqlite3`` running the
    statements calld's own query functions send (captured once, replayed ``rounds`` times)."""
    engine = sa.create_engine(f"sqlite:///{path}")
    captured: list[tuple[str, Any]] = []

    @sa.event.listens_for(engine, "before_cursor_execute")
    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        captured.append((statement, parameters))

    reads: dict[str, list[list[tuple[str, Any]]]] = {"list": [], "detail": []}
    with engine.connect() as conn:
        tagged_call_page(conn, CallFilter(), ordering="-started_at", limit=50, offset=0)
        reads["list"].append(captured[:])
        for call_id in ids[:50]:
            captured.clear()
            call_detail(conn, call_id)
            reads["detail"].append(captured[:])
    engine.dispose()
    raw = sqlite3.connect(path)
    floor = {}
    for name, requests in reads.items():
        started = time.perf_counter()
        for n in range(rounds):
            for statement, parameters in requests[n % len(requests)]:
                raw.execute(statement, parameters).fetchall()
        floor[name] = (time.perf_counter() - started) / rounds
    raw.close()
    return floor


async def bare_server(body: bytes) -> web.AppRunner:
    async def handler(_: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner


async def measure(name: str, url: str, args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    ids = await prepare(url, args.calls)
    floor = read_floor(url.removeprefix("sqlite:///"), ids) if name == "sqlite" else {}
    daemon = Daemon(Config(server=ServerConfig(port=0), database=DatabaseConfig(url=url)))
    await daemon.start()
    keep_startup_heap_out_of_collections()  # as `calld run` does
    try:
        token = await mint_token(daemon.db, Scope.READ)
        base = f"http://127.0.0.1:{daemon.port}"
        endpoints = {
            "list": ["/api/call-logs/?limit=50"],
            "detail": [f"/api/call-logs/{i}/" for i in ids],
            "statistics": ["/api/call-logs/statistics/?period=today"],
        }
        results = {}
        for endpoint, paths in endpoints.items():
            spec = {
                "base": base,
                "token": token,
                "paths": paths,
                "seconds": args.seconds,
                "rate": args.rate,
                "light": args.light,
            }
            results[endpoint] = await asyncio.to_thread(run_client, spec)
            print(f"  {name} {endpoint}: {results[endpoint]}", file=sys.stderr, flush=True)
        headers = {"Authorization": f"Bearer {token}"}
        async with aiohttp.ClientSession(base, headers=headers) as http, http.get(endpoints["detail"][0]) as response:
            detail_body = await response.read()
    finally:
        await daemon.stop()
    results["_detail_body"] = {"bytes": detail_body}
    results["_floor"] = floor
    return results


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--light", type=float, default=100.0, help="a second, light steady rate")
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--pg", default=os.environ.get("CALLD_BENCH_PG_URL", DEFAULT_PG))
    parser.add_argument("--only", choices=("sqlite", "postgresql"))
    args = parser.parse_args()
    configure_logging("info", "json")  # as the daemon runs: request log lines included
    results: dict[str, dict[str, dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        targets = {"sqlite": f"sqlite:///{tmp}/api.db", "postgresql": args.pg}
        for name, url in targets.items():
            if args.only in (None, name):
                results[name] = await measure(name, url, args)
    body = next(iter(results.values()))["_detail_body"]["bytes"]
    runner = await bare_server(body)
    try:
        port = runner.addresses[0][1]
        spec = {
            "base": f"http://127.0.0.1:{port}",
            "paths": ["/x"],
            "seconds": args.seconds,
            "rate": args.rate,
            "light": args.light,
        }
        base = await asyncio.to_thread(run_client, spec)
    finally:
        await runner.cleanup()
    print(
        f"{args.calls:,} calls; steady loads {args.light:,.0f} and {args.rate:,.0f} requests/s; "
        f"detail body {len(body):,} bytes"
    )
    print(
        f"{'':<24} {'max req/s':>10} {'ratio':>6} {'at req/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} "
        f"{'ratio':>6}  p99<10ms   light: {'req/s':>6} {'p50 ms':>7} {'p99 ms':>7}"
    )

    def row(label: str, r: dict[str, Any], ratios: bool) -> str:
        rps_ratio = f"{r['max_rps'] / base['max_rps']:6.2f}" if ratios else f"{'':>6}"
        p99_ratio = f"{base['p99'] / r['p99']:6.2f}" if ratios else f"{'':>6}"
        met = ("yes" if r["p99"] < 0.010 else "NO") + (f" ({r['errors']} errors)" if r["errors"] else "")
        return (
            f"{label:<24} {r['max_rps']:10,.0f} {rps_ratio} {r['rate']:9,.0f} {r['p50'] * 1000:7.2f} "
            f"{r['p99'] * 1000:7.2f} {r['max'] * 1000:7.1f} {p99_ratio}  {met:<9}         "
            f"{r['light']['rate']:6,.0f} {r['light']['p50'] * 1000:7.2f} {r['light']['p99'] * 1000:7.2f}"
        )

    print(row("baseline (bare aiohttp)", base, False))
    for db_name, per in results.items():
        for endpoint, r in per.items():
            if not endpoint.startswith("_"):
                print(row(f"{db_name} {endpoint}", r, True))
    floor = results.get("sqlite", {}).get("_floor", {})
    targets = {"list": 0.3, "detail": 0.5}
    for endpoint, seconds in floor.items():
        bound = (1 / base["max_rps"]) / (1 / base["max_rps"] + seconds)
        reach = "within reach" if bound >= targets[endpoint] else "above what the floor allows"
        print(
            f"floor {endpoint}: its SQL in plain sqlite3 {seconds * 1e6:,.0f} µs a request; bare server + that: "
            f"ratio ≤ {bound:.2f} (target ≥ {targets[endpoint]:g}: {reach})"
        )


if __name__ == "__main__":
    if sys.argv[1:] == ["--client"]:
        print(json.dumps(asyncio.run(client(json.loads(sys.stdin.read())))))
    else:
        asyncio.run(main())

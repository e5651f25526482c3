"""Export memory: RSS while ``GET /api/call-logs/export/`` streams 1M calls, against a small export.

calld's daemon serves a database holding --calls calls (``bulkload``: a year of realistic calls);
an HTTP client in the same process streams ``/api/call-logs/export/?format=csv`` (then NDJSON) over
loopback, reading 64 KiB at a time and discarding it, and samples VmRSS (after a gc) every 10 % of
the calls. The export must hold one batch (1,000 calls) at a time, whatever the total: RSS flat.

Baseline, in the same run and process: RSS after exporting the first 1,000 calls (``?started_before``
set to the 1,000th call's start), once everything is imported and warm. Ratio = RSS at the end of the
full export / baseline (1.0: flat); "growth" = RSS at the end minus RSS at 10 % of the calls.

Usage: .venv/bin/python bench/export_rss.py [--calls 1000000] [--only sqlite|postgresql] [--reuse]
Databases: /var/tmp/calld-bench/export-<calls>.db and PostgreSQL's calld_bench_export_<calls>.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp
import sqlalchemy as sa

from bench.memory import rss_mb
from bench.stats_scale import loaded
from calld.config import CallsConfig, Config, DatabaseConfig, ServerConfig
from calld.daemon import Daemon
from calld.logging import configure_logging
from calld.storage.models import CallLog
from tests.support import mint_token

DATA_DIR = Path("/var/tmp/calld-bench")
PG_BASE = "postgresql://postgres@127.0.0.1:5432/calld_bench_export"


def url_for(kind: str, calls: int) -> str:
    return f"sqlite:///{DATA_DIR / f'export-{calls}.db'}" if kind == "sqlite" else f"{PG_BASE}_{calls}"


async def stream(
    http: aiohttp.ClientSession, params: dict[str, str], total: int, fmt: str
) -> tuple[list[tuple[int, float]], int, float]:
    """Stream one export; RSS samples at every 10 % of ``total`` calls, the calls seen, seconds."""
    samples: list[tuple[int, float]] = []
    calls = 0
    step = max(total // 10, 1)
    next_sample = step
    started = time.perf_counter()
    # CSV rows end in CRLF (a line break inside a quoted note is a bare LF); NDJSON lines in LF.
    end = b"\r\n" if fmt == "csv" else b"\n"
    carry = b""
    async with http.get("/api/call-logs/export/", params={**params, "format": fmt}) as response:
        assert response.status == 200, await response.text()
        async for chunk in response.content.iter_chunked(65536):
            data = carry + chunk
            calls += data.count(end)
            carry = data[-1:] if fmt == "csv" else b""  # a CR whose LF is in the next chunk
            while calls >= next_sample:
                samples.append((next_sample, rss_mb()))
                next_sample += step
    if fmt == "csv":
        calls -= 1  # the header row
    return samples, calls, time.perf_counter() - started


async def measure(kind: str, calls: int) -> None:
    url = url_for(kind, calls)
    config = Config(
        server=ServerConfig(port=0), database=DatabaseConfig(url=url), calls=CallsConfig(timezone="Europe/Paris")
    )
    daemon = Daemon(config)
    await daemon.start()
    try:
        async with daemon.db.read() as session:
            thousandth = await session.scalar(
                sa.select(CallLog.started_at).order_by(CallLog.started_at).offset(1000).limit(1)
            )
        headers = {"Authorization": f"Bearer {await mint_token(daemon.db)}"}
        timeout = aiohttp.ClientTimeout(total=None)
        async with aiohttp.ClientSession(f"http://127.0.0.1:{daemon.port}", headers=headers, timeout=timeout) as http:
            assert thousandth is not None
            small = {"started_before": thousandth.isoformat(), "ordering": "started_at"}
            await stream(http, small, 1000, "csv")
            await stream(http, small, 1000, "ndjson")
            baseline = rss_mb()
            for fmt in ("csv", "ndjson"):
                samples, seen, took = await stream(http, {}, calls, fmt)
                assert seen == calls, (fmt, seen, calls)
                end = rss_mb()
                first = samples[0][1]
                print(
                    f"{kind:<11} {fmt:<7} {calls:>10,} calls in {took:6.1f} s ({calls / took:8,.0f}/s)  "
                    f"RSS baseline {baseline:6.1f} MB, at 10 % {first:6.1f}, end {end:6.1f}  "
                    f"growth {end - first:+5.1f} MB  ratio {end / baseline:4.2f}",
                    flush=True,
                )
                print("            samples (calls: MB): " + ", ".join(f"{n // 1000}k: {mb:.0f}" for n, mb in samples))
    finally:
        await daemon.stop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--only", choices=("sqlite", "postgresql"))
    parser.add_argument("--reuse", action="store_true")
    args = parser.parse_args()
    configure_logging("warning", "json")
    for kind in [args.only] if args.only else ["sqlite", "postgresql"]:
        await loaded(url_for(kind, args.calls), args.calls, args.reuse)
        await measure(kind, args.calls)


if __name__ == "__main__":
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    asyncio.run(main())

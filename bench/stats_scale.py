"""Statistics and call history at scale: 1M, 3M, 10M call logs on SQLite and PostgreSQL.

For each size and database, ``bulkload`` writes a year of realistic calls (COPY / executemany;
the seed command is far too slow), then calld's daemon serves them and this bench times, over
real HTTP on loopback:

  GET /api/call-logs/statistics/?period=today|week|month
  GET /api/call-logs/statistics/?from=…&until=…&interval=…&group_by=…  (REPORTS: a year by hour…)
  GET /api/clients/{id}/call_history/        (a typical client: ~0.004 % of all calls)
  GET /api/call-logs/?limit=50               (the first list page, with its total count)

Each figure is the median of --requests requests after two warm-up ones; each statistics answer is
checked against the full scan (the bench stops if they differ). Baseline, in the same
run on the same database: the statistics as one aggregate over ``call_logs`` (what calld ran before
the rollup), timed as plain SQL with no HTTP around it; ratio = baseline / calld (above 1: faster).

Usage: .venv/bin/python bench/stats_scale.py [--sizes 1000000,3000000] [--only sqlite|postgresql]
       [--reuse]   (keep databases loaded by an earlier run of the same size)
Databases live in /var/tmp/calld-bench (SQLite, ~0.65 GB per million calls) and in PostgreSQL's
``calld_bench_scale_<size>`` (~0.5 GB per million).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp
import sqlalchemy as sa

from bench.bulkload import client_ids, load
from bench.common import ensure_pg
from calld.config import CallsConfig, Config, DatabaseConfig, ServerConfig
from calld.daemon import Daemon, keep_startup_heap_out_of_collections
from calld.domain.call_filter import Period, period_start
from calld.logging import configure_logging
from calld.storage.models import CallLog
from tests.support import mint_token

DATA_DIR = Path("/var/tmp/calld-bench")
# (name, days back from now, parameters) of the statistics reports timed.
REPORTS: tuple[tuple[str, int, dict[str, str]], ...] = (
    ("report year by hour", 365, {"interval": "hour"}),
    ("report year by hour compact", 365, {"interval": "hour", "format": "compact"}),
    ("report year by month+dir", 365, {"interval": "month", "group_by": "direction"}),
    ("report 30d by day+client", 30, {"interval": "day", "group_by": "client"}),
    ("report 30d by day+ext", 30, {"interval": "day", "group_by": "extension"}),
)
PG_BASE = "postgresql://postgres@127.0.0.1:5432/calld_bench_scale"
PG_URL: str | None = None  # one database used as it is (one size only), instead of PG_BASE_<size>


def url_for(kind: str, size: int) -> str:
    if kind == "sqlite":
        return f"sqlite:///{DATA_DIR / f'scale-{size}.db'}"
    return PG_URL or f"{PG_BASE}_{size}"


def use_databases(data_dir: str, pg_base: str, pg_url: str | None) -> None:
    """Where this run's databases are (a session of its own keeps them apart from others')."""
    global DATA_DIR, PG_BASE, PG_URL
    DATA_DIR, PG_BASE, PG_URL = Path(data_dir), pg_base, pg_url


async def loaded(url: str, size: int, reuse: bool) -> None:
    await ensure_pg(url)
    if reuse:
        from calld.storage.database import Database

        db = Database(url)
        try:
            await db.migrate()  # a newer schema (say, the rollup) is built from the rows already there
            async with db.read() as session:
                count = await session.scalar(sa.select(sa.func.count()).select_from(CallLog))
            if count == size:
                return
        except Exception:
            pass
        finally:
            await db.close()
    started = time.perf_counter()
    await load(url, size)
    print(f"  loaded {size:,} calls into {url.split('/')[-1]} in {time.perf_counter() - started:.0f} s", flush=True)


async def timed(fn: object, requests: int) -> float:
    """Median seconds of ``requests`` calls of the coroutine function ``fn`` after two warm-ups."""
    times = []
    for n in range(requests + 2):
        started = time.perf_counter()
        await fn()  # type: ignore[operator]
        if n >= 2:
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def raw_statistics_sql(start: datetime, end: datetime) -> sa.Select[tuple[object, ...]]:
    answered = CallLog.answered_at.is_not(None)

    def count_where(cond: sa.ColumnElement[bool]) -> sa.ColumnElement[object]:
        return sa.func.coalesce(sa.func.sum(sa.case((cond, 1), else_=0)), 0)

    return sa.select(
        sa.func.count(),
        count_where(answered),
        count_where(CallLog.status.in_(("missed", "no_answer"))),
        count_where(CallLog.direction == "inbound"),
        count_where(CallLog.direction == "outbound"),
        sa.func.avg(sa.case((sa.and_(answered, CallLog.ended_at.is_not(None)), CallLog.duration_seconds))),
    ).where(CallLog.started_at >= start, CallLog.started_at < end)


async def measure(kind: str, size: int, requests: int) -> list[tuple[str, float, float | None]]:
    url = url_for(kind, size)
    config = Config(
        server=ServerConfig(port=0), database=DatabaseConfig(url=url), calls=CallsConfig(timezone="Europe/Paris")
    )
    daemon = Daemon(config)
    await daemon.start()
    keep_startup_heap_out_of_collections()  # as `calld run` does
    figures: list[tuple[str, float, float | None]] = []
    try:
        token = await mint_token(daemon.db)
        client = client_ids(10_000)[42]
        headers = {"Authorization": f"Bearer {token}"}
        async with aiohttp.ClientSession(f"http://127.0.0.1:{daemon.port}", headers=headers) as http:

            def getter(path: str) -> object:
                async def get() -> None:
                    async with http.get(path) as response:
                        assert response.status == 200, (path, response.status, await response.text())
                        await response.read()

                return get

            for period in Period:
                now = datetime.now(UTC)
                start = period_start(period, now, config.calls.zone)

                async def raw(start: datetime = start) -> None:
                    async with daemon.db.read() as session:
                        (await session.execute(raw_statistics_sql(start, datetime.now(UTC)))).one()

                base = await timed(raw, requests)
                path = f"/api/call-logs/statistics/?period={period.value}"
                took = await timed(getter(path), requests)
                figures.append((f"statistics {period.value}", took, base))
                async with http.get(path) as response:
                    answer = await response.json()
                async with daemon.db.read() as session:
                    expected = (await session.execute(raw_statistics_sql(start, datetime.now(UTC)))).one()
                got = [answer[k] for k in ("total_calls", "answered_calls", "missed_calls", "inbound_calls")]
                if got != [int(x) for x in expected[:4]]:  # the rollup must answer what the full scan does
                    raise AssertionError(f"statistics {period.value}: calld {got}, full scan {list(expected[:4])}")
            # Reports from the per-dimension rollup (migration 0013). Baseline: the one aggregate over
            # every call of the range in call_logs, the least a report without a rollup has to read.
            now = datetime.now(UTC)
            for name, days, extra in REPORTS:
                start = now - timedelta(days=days)
                query = {"from": start.isoformat(), "until": now.isoformat(), **extra}

                async def raw_range(start: datetime = start, end: datetime = now) -> None:
                    async with daemon.db.read() as session:
                        (await session.execute(raw_statistics_sql(start, end))).one()

                base = await timed(raw_range, requests)

                async def report(query: dict[str, str] = query) -> None:
                    async with http.get("/api/call-logs/statistics/", params=query) as response:
                        assert response.status == 200, (query, response.status, await response.text())
                        await response.read()

                took = await timed(report, requests)
                figures.append((name, took, base))
                async with http.get("/api/call-logs/statistics/", params=query) as response:
                    totals = (await response.json())["totals"]
                async with daemon.db.read() as session:
                    expected = (await session.execute(raw_statistics_sql(start, now))).one()
                got = [totals[k] for k in ("total_calls", "answered_calls", "missed_calls", "inbound_calls")]
                if got != [int(x) for x in expected[:4]]:
                    raise AssertionError(f"{name}: calld {got}, full scan {list(expected[:4])}")
            took = await timed(getter(f"/api/clients/{client}/call_history/"), requests)
            figures.append(("client call_history", took, None))
            took = await timed(getter("/api/call-logs/?limit=50"), requests)
            figures.append(("list page 1", took, None))
    finally:
        await daemon.stop()
    return figures


def arguments() -> argparse.Namespace:
    """The command line; the databases' place is set from it (and made) before the run starts."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000000,3000000")
    parser.add_argument("--only", choices=("sqlite", "postgresql"))
    parser.add_argument("--requests", type=int, default=15)
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument("--data-dir", default=str(DATA_DIR), help="where the SQLite databases are")
    parser.add_argument("--pg-base", default=PG_BASE, help="PostgreSQL URL the database names are <base>_<size> of")
    parser.add_argument("--pg-url", help="one PostgreSQL database, used as it is (with a single size)")
    args = parser.parse_args()
    use_databases(args.data_dir, args.pg_base, args.pg_url)
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    return args


async def main(args: argparse.Namespace) -> None:
    configure_logging("warning", "json")
    kinds = [args.only] if args.only else ["sqlite", "postgresql"]
    print(f"{'database':<11} {'calls':>11} {'request':<26} {'calld ms':>9} {'baseline ms':>12} {'ratio':>6}  <100 ms")
    for size in (int(s) for s in args.sizes.split(",")):
        for kind in kinds:
            await loaded(url_for(kind, size), size, args.reuse)
            for name, took, base in await measure(kind, size, args.requests):
                base_text = f"{base * 1000:12.1f}" if base is not None else f"{'-':>12}"
                ratio = f"{base / took:6.1f}" if base is not None else f"{'-':>6}"
                ok = "yes" if took < 0.1 else "NO"
                print(f"{kind:<11} {size:>11,} {name:<26} {took * 1000:9.1f} {base_text} {ratio}  {ok}", flush=True)


if __name__ == "__main__":
    asyncio.run(main(arguments()))

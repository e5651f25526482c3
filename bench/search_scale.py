"""The call list's search filters at scale, on SQLite and PostgreSQL.

``bulkload`` writes a year of realistic calls; then 1 % of them get notes, 2 % a recording (half
of those transcribed) and 1 % a tag, through calld's own triggers (so the full-text indexes are
kept as in service). Each filter's first page with its total count (``call_page``, what
``GET /api/call-logs/`` runs) is timed as the median of --repeat runs after a warm-up, and given as a
ratio to two same-run baselines: the unfiltered first page (its count read from the running total),
and the same selection written without calld's indexes (``LIKE '%word%'`` over the texts, ``LIKE``
over the numbers, EXISTS over recordings), so the ratio says what the index buys.

Usage: .venv/bin/python bench/search_scale.py [--size 300000] [--only sqlite|postgresql] [--repeat 7]
Databases: /var/tmp/calld-bench/search-<size>.db and PostgreSQL's ``calld_bench_search_<size>``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa

from bench.bulkload import load
from bench.common import ensure_pg
from calld.domain.call_filter import CallFilter, number_pattern, search_text
from calld.storage.call_queries import call_page
from calld.storage.database import Database
from calld.storage.models import CallLog

DATA_DIR = Path("/var/tmp/calld-bench")
PG_BASE = "postgresql://postgres@127.0.0.1:5432/calld_bench_search"
WORDS = ("refund", "invoice", "callback", "complaint", "upgrade", "cancel", "delivery", "password")

# Extra rows, written through the triggers: notes on 1 % of calls, recordings on 2 % (transcribed on 1 %).
EXTRA = {
    "sqlite": (
        "UPDATE call_logs SET notes = 'customer asks about ' || "
        "CASE abs(random()) % 8 WHEN 0 THEN 'refund' WHEN 1 THEN 'invoice' WHEN 2 THEN 'callback' "
        "WHEN 3 THEN 'complaint' WHEN 4 THEN 'upgrade' WHEN 5 THEN 'cancel' WHEN 6 THEN 'delivery' "
        "ELSE 'password' END || ' ' || (abs(random()) % 10000) WHERE abs(random()) % 100 = 0",
        "INSERT INTO call_recordings (id, call_id, status, transcript, seeded, created_at, updated_at) "
        "SELECT lower(hex(randomblob(16))), id, 'completed', "
        "CASE WHEN abs(random()) % 2 = 0 THEN 'hello this is order ' || (abs(random()) % 100000) END, "
        "0, started_at, started_at FROM call_logs WHERE abs(random()) % 50 = 0",
        "INSERT INTO call_tags (call_id, tag) SELECT id, 'vip' FROM call_logs WHERE abs(random()) % 100 = 0",
        "ANALYZE",
    ),
    "postgresql": (
        "UPDATE call_logs SET notes = 'customer asks about ' || "
        "(ARRAY['refund','invoice','callback','complaint','upgrade','cancel','delivery','password'])"
        "[1 + floor(random() * 8)::int] || ' ' || floor(random() * 10000)::int WHERE random() < 0.01",
        "INSERT INTO call_recordings (id, call_id, status, transcript, seeded, created_at, updated_at) "
        "SELECT gen_random_uuid(), id, 'completed', "
        "CASE WHEN random() < 0.5 THEN 'hello this is order ' || floor(random() * 100000)::int END, "
        "false, started_at, started_at FROM call_logs WHERE random() < 0.02",
        "INSERT INTO call_tags (call_id, tag) SELECT id, 'vip' FROM call_logs WHERE random() < 0.01",
        "ANALYZE",
    ),
}


def _like_texts(word: str) -> sa.ColumnElement[bool]:
    """``q`` as one would write it without a full-text index."""
    pattern = f"%{word}%"
    return sa.or_(
        CallLog.notes.ilike(pattern),
        sa.text("call_logs.client_id IN (SELECT id FROM clients WHERE name LIKE :p)").bindparams(p=pattern),
        sa.text("call_logs.id IN (SELECT call_id FROM call_recordings WHERE transcript LIKE :p)").bindparams(p=pattern),
    )


# (name, calld's filter, the same selection without calld's indexes)
CASES: list[tuple[str, CallFilter, Callable[[], sa.ColumnElement[bool]]]] = [
    ("q=refund", CallFilter(text=search_text("refund")), lambda: _like_texts("refund")),
    ("q=client 4242", CallFilter(text=search_text("client 4242")), lambda: _like_texts("Client 4242")),
    ("q=order 4711", CallFilter(text=search_text("order 4711")), lambda: _like_texts("order 4711")),
    (
        "number=+14155551*",
        CallFilter(number_pattern=number_pattern("+14155551*")),
        lambda: sa.or_(CallLog.caller_number.like("%+14155551%"), CallLog.recipient_number.like("%+14155551%")),
    ),
    (
        "min_duration=1800",
        CallFilter(criteria={"min_duration": 1800.0}),
        lambda: sa.func.coalesce(CallLog.duration_seconds, 0) + 0 >= 1800,
    ),
    (
        "has_transcript=true",
        CallFilter(has_transcript=True),
        lambda: sa.text(
            "EXISTS (SELECT 1 FROM call_recordings r WHERE r.call_id = call_logs.id "
            "AND coalesce(r.transcript, '') || '' <> '')"
        ),
    ),
    (
        "tag=vip",
        CallFilter(tags=("vip",)),
        lambda: sa.text("EXISTS (SELECT 1 FROM call_tags t WHERE t.call_id = call_logs.id AND t.tag || '' = 'vip')"),
    ),
]


def _plain_page(conn: sa.Connection, where: sa.ColumnElement[bool]) -> tuple[int, list[Any]]:
    total = conn.execute(sa.select(sa.func.count()).select_from(CallLog).where(where)).scalar_one()
    page = conn.execute(
        sa.select(CallLog.id).where(where).order_by(CallLog.started_at.desc(), CallLog.id.desc()).limit(50)
    )
    return int(total), list(page)


async def _median(db: Database, repeat: int, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[float, Any]:
    result = await db.query(fn, *args, **kwargs)
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = await db.query(fn, *args, **kwargs)
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


async def bench(kind: str, size: int, repeat: int) -> None:
    url = f"sqlite:///{DATA_DIR / f'search-{size}.db'}" if kind == "sqlite" else f"{PG_BASE}_{size}"
    await asyncio.to_thread(DATA_DIR.mkdir, parents=True, exist_ok=True)
    await ensure_pg(url)
    started = time.perf_counter()
    await load(url, size)
    db = Database(url)
    async with db.engine.begin() as conn:
        for statement in EXTRA[kind]:
            await conn.exec_driver_sql(statement)
    print(f"{kind}: {size:,} calls loaded in {time.perf_counter() - started:.0f} s")
    page = {"ordering": "-started_at", "limit": 50, "offset": 0}
    base, _ = await _median(db, repeat, call_page, CallFilter(), **page)
    print(f"  unfiltered first page: {base * 1000:.2f} ms")
    print(f"  {'filter':<22}{'matches':>9}{'calld ms':>10}{'x unfiltered':>14}{'no-index ms':>13}{'speed-up':>10}")
    for name, flt, plain in CASES:
        took, (total, _rows) = await _median(db, repeat, call_page, flt, **page)
        slow, (plain_total, _) = await _median(db, max(1, repeat // 3), _plain_page, plain())
        same = "" if plain_total == total else f"  (no-index count {plain_total})"
        print(
            f"  {name:<22}{total:>9,}{took * 1000:>10.2f}{took / base:>14.1f}{slow * 1000:>13.1f}"
            f"{slow / took:>9.0f}x{same}"
        )
    await db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=300_000)
    parser.add_argument("--only", choices=("sqlite", "postgresql"))
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    for kind in ("sqlite", "postgresql"):
        if args.only in (None, kind):
            asyncio.run(bench(kind, args.size, args.repeat))


if __name__ == "__main__":
    main()

"""The statistics rollup: per 15-minute bucket of ``started_at``, the counts the statistics answer.

``call_stats_buckets`` is kept by database triggers on ``call_logs`` (migration 0004), so every
writer (API, webhooks, switch ingest, seed, a bulk load followed by ``REBUILD_SQL``) keeps it right
without calld code doing anything. Statistics over months then read a few thousand bucket rows
instead of every call, and scan ``call_logs`` only for the ragged edges of the range.

``call_totals`` (one row) is the number of calls, kept by triggers too (migration 0005): the
unfiltered call list reads its total there. ``REBUILD_TOTAL_SQL`` recomputes it after a bulk load.

Buckets are 15 minutes of UTC epoch time: every zone's offset is a multiple of 15 minutes, so a
period starting at local midnight starts on a bucket boundary.
"""

from __future__ import annotations

import importlib.util
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BUCKET_SECONDS = 900
HOUR_SECONDS = 3600

# The rollup recomputed from ``call_logs`` (into an empty table), per dialect.
REBUILD_SQL = {
    "sqlite": """
        INSERT INTO call_stats_buckets (bucket, total_calls, answered_calls, missed_calls, inbound_calls,
                                        outbound_calls, duration_sum, duration_count)
        SELECT CAST(strftime('%s', started_at) AS INTEGER) / 900 * 900,
               count(*),
               sum(answered_at IS NOT NULL),
               sum(status IN ('missed', 'no_answer')),
               sum(direction = 'inbound'),
               sum(direction = 'outbound'),
               coalesce(sum(CASE WHEN answered_at IS NOT NULL AND ended_at IS NOT NULL THEN duration_seconds END), 0),
               count(CASE WHEN answered_at IS NOT NULL AND ended_at IS NOT NULL THEN duration_seconds END)
        FROM call_logs GROUP BY 1
    """,
    "postgresql": """
        INSERT INTO call_stats_buckets (bucket, total_calls, answered_calls, missed_calls, inbound_calls,
                                        outbound_calls, duration_sum, duration_count)
        SELECT (floor(extract(epoch FROM started_at) / 900) * 900)::bigint,
               count(*),
               count(*) FILTER (WHERE answered_at IS NOT NULL),
               count(*) FILTER (WHERE status IN ('missed', 'no_answer')),
               count(*) FILTER (WHERE direction = 'inbound'),
               count(*) FILTER (WHERE direction = 'outbound'),
               coalesce(sum(duration_seconds) FILTER (WHERE answered_at IS NOT NULL AND ended_at IS NOT NULL), 0),
               count(duration_seconds) FILTER (WHERE answered_at IS NOT NULL AND ended_at IS NOT NULL)
        FROM call_logs GROUP BY 1
    """,
}


# The running total recomputed from ``call_logs`` (replacing the one there), per dialect. ``WHERE
# true`` keeps SQLite from reading ON CONFLICT as a join's ON.
REBUILD_TOTAL_SQL = dict.fromkeys(
    ("sqlite", "postgresql"),
    """
        INSERT INTO call_totals (id, calls) SELECT 1, count(*) FROM call_logs WHERE true
        ON CONFLICT (id) DO UPDATE SET calls = excluded.calls
    """,
)


def _revision(name: str) -> Any:
    """A revision's module, loaded from its file (a revision imports nothing of calld)."""
    path = Path(__file__).resolve().parent / "migrations" / "versions" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"calld_migration_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def hours_rebuild_sql() -> str:
    """``call_stats_hours`` recomputed from ``call_stats_groups`` (into an empty table; both databases),
    as migration 0023 backfills it: run it after ``groups_rebuild_sql``."""
    statement: str = _revision("0023_call_stats_hours").rebuild_sql(_revision("0013_call_stats_groups").SUMS)
    return statement


def groups_rebuild_sql(dialect: str) -> list[str]:
    """``call_stats_groups`` recomputed from ``call_logs`` (into an empty table): one INSERT per dimension.

    Read from migration 0013 itself, the one definition of what each call contributes (a revision
    imports nothing of calld, so calld reads the revision rather than the other way round)."""
    statements: list[str] = _revision("0013_call_stats_groups").rebuild_sql(dialect)
    return statements


def epoch(instant: datetime) -> int:
    """Whole seconds since the epoch, rounded down."""
    return int((instant.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() // 1)


def covered(start: datetime, end: datetime) -> tuple[int, int] | None:
    """The whole buckets inside [start, end), as [first, last) epoch seconds; None if there are none."""
    first = -(-epoch(start) // BUCKET_SECONDS) * BUCKET_SECONDS
    if datetime.fromtimestamp(first, UTC) < start:  # start had a fraction of a second past a boundary
        first += BUCKET_SECONDS
    last = epoch(end) // BUCKET_SECONDS * BUCKET_SECONDS
    return (first, last) if first < last else None

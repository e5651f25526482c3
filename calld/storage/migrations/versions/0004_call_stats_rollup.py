"""statistics rollup: call_stats_buckets kept by triggers on call_logs

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 08:30:00

Statistics for a month aggregated every call of the month (0.5 s at 10M calls); they now sum
15-minute buckets. The triggers subtract a row's old contribution and add its new one on every
insert, delete and change of the columns the statistics read. The SQL is written out here (not
imported) so this revision keeps doing what it did when calld changes.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = (
    "bucket, total_calls, answered_calls, missed_calls, inbound_calls, outbound_calls, duration_sum, duration_count"
)
_ADD = """ON CONFLICT (bucket) DO UPDATE SET
    total_calls = call_stats_buckets.total_calls + excluded.total_calls,
    answered_calls = call_stats_buckets.answered_calls + excluded.answered_calls,
    missed_calls = call_stats_buckets.missed_calls + excluded.missed_calls,
    inbound_calls = call_stats_buckets.inbound_calls + excluded.inbound_calls,
    outbound_calls = call_stats_buckets.outbound_calls + excluded.outbound_calls,
    duration_sum = call_stats_buckets.duration_sum + excluded.duration_sum,
    duration_count = call_stats_buckets.duration_count + excluded.duration_count"""
# Only these columns change what a call contributes.
_WATCHED = ("started_at", "status", "direction", "answered_at", "ended_at", "duration_seconds")


def _sqlite_upsert(row: str, sign: int) -> str:
    timed = f"{row}.answered_at IS NOT NULL AND {row}.ended_at IS NOT NULL AND {row}.duration_seconds IS NOT NULL"
    return f"""INSERT INTO call_stats_buckets ({_COLUMNS}) VALUES (
        CAST(strftime('%s', {row}.started_at) AS INTEGER) / 900 * 900,
        {sign},
        {sign} * ({row}.answered_at IS NOT NULL),
        {sign} * ({row}.status IN ('missed', 'no_answer')),
        {sign} * ({row}.direction = 'inbound'),
        {sign} * ({row}.direction = 'outbound'),
        CASE WHEN {timed} THEN {sign} * {row}.duration_seconds ELSE 0.0 END,
        CASE WHEN {timed} THEN {sign} ELSE 0 END
    ) {_ADD};"""


def _pg_upsert(row: str, sign: int) -> str:
    timed = f"{row}.answered_at IS NOT NULL AND {row}.ended_at IS NOT NULL AND {row}.duration_seconds IS NOT NULL"
    return f"""INSERT INTO call_stats_buckets ({_COLUMNS}) VALUES (
            (floor(extract(epoch FROM {row}.started_at) / 900) * 900)::bigint,
            {sign},
            {sign} * ({row}.answered_at IS NOT NULL)::int,
            {sign} * ({row}.status IN ('missed', 'no_answer'))::int,
            {sign} * ({row}.direction = 'inbound')::int,
            {sign} * ({row}.direction = 'outbound')::int,
            CASE WHEN {timed} THEN {sign} * {row}.duration_seconds ELSE 0.0 END,
            CASE WHEN {timed} THEN {sign} ELSE 0 END
        ) {_ADD};"""


_CHANGED = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in _WATCHED)
_PG_CHANGED = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in _WATCHED)

SQLITE_TRIGGERS = (
    f"CREATE TRIGGER call_stats_insert AFTER INSERT ON call_logs BEGIN {_sqlite_upsert('NEW', 1)} END",
    f"CREATE TRIGGER call_stats_delete AFTER DELETE ON call_logs BEGIN {_sqlite_upsert('OLD', -1)} END",
    f"CREATE TRIGGER call_stats_update AFTER UPDATE OF {', '.join(_WATCHED)} ON call_logs WHEN {_CHANGED} "
    f"BEGIN {_sqlite_upsert('OLD', -1)} {_sqlite_upsert('NEW', 1)} END",
)

PG_FUNCTION = f"""
CREATE FUNCTION call_stats_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        {_pg_upsert("OLD", -1)}
    END IF;
    IF TG_OP <> 'DELETE' THEN
        {_pg_upsert("NEW", 1)}
    END IF;
    RETURN NULL;
END
$$
"""
PG_TRIGGERS = (
    "CREATE TRIGGER call_stats_insert_delete AFTER INSERT OR DELETE ON call_logs "
    "FOR EACH ROW EXECUTE FUNCTION call_stats_apply()",
    f"CREATE TRIGGER call_stats_update AFTER UPDATE OF {', '.join(_WATCHED)} ON call_logs "
    f"FOR EACH ROW WHEN ({_PG_CHANGED}) EXECUTE FUNCTION call_stats_apply()",
)

REBUILD = {
    "sqlite": f"""INSERT INTO call_stats_buckets ({_COLUMNS})
        SELECT CAST(strftime('%s', started_at) AS INTEGER) / 900 * 900, count(*),
               sum(answered_at IS NOT NULL), sum(status IN ('missed', 'no_answer')),
               sum(direction = 'inbound'), sum(direction = 'outbound'),
               coalesce(sum(CASE WHEN answered_at IS NOT NULL AND ended_at IS NOT NULL
                                 THEN duration_seconds END), 0.0),
               count(CASE WHEN answered_at IS NOT NULL AND ended_at IS NOT NULL THEN duration_seconds END)
        FROM call_logs GROUP BY 1""",
    "postgresql": f"""INSERT INTO call_stats_buckets ({_COLUMNS})
        SELECT (floor(extract(epoch FROM started_at) / 900) * 900)::bigint, count(*),
               count(*) FILTER (WHERE answered_at IS NOT NULL),
               count(*) FILTER (WHERE status IN ('missed', 'no_answer')),
               count(*) FILTER (WHERE direction = 'inbound'), count(*) FILTER (WHERE direction = 'outbound'),
               coalesce(sum(duration_seconds) FILTER (WHERE answered_at IS NOT NULL AND ended_at IS NOT NULL), 0.0),
               count(duration_seconds) FILTER (WHERE answered_at IS NOT NULL AND ended_at IS NOT NULL)
        FROM call_logs GROUP BY 1""",
}


def upgrade() -> None:
    op.create_table(
        "call_stats_buckets",
        sa.Column("bucket", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("total_calls", sa.Integer(), nullable=False),
        sa.Column("answered_calls", sa.Integer(), nullable=False),
        sa.Column("missed_calls", sa.Integer(), nullable=False),
        sa.Column("inbound_calls", sa.Integer(), nullable=False),
        sa.Column("outbound_calls", sa.Integer(), nullable=False),
        sa.Column("duration_sum", sa.Float(), nullable=False),
        sa.Column("duration_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("bucket", name=op.f("pk_call_stats_buckets")),
    )
    dialect = op.get_bind().dialect.name
    # Backfill, then the triggers, in one transaction; on PostgreSQL writers wait meanwhile, so no
    # write lands between the two and is missed (SQLite's single writer is waiting already).
    if dialect == "postgresql":
        op.execute("LOCK TABLE call_logs IN SHARE ROW EXCLUSIVE MODE")
    op.execute(REBUILD[dialect])
    if dialect == "postgresql":
        op.execute(PG_FUNCTION)
        for trigger in PG_TRIGGERS:
            op.execute(trigger)
    else:
        for trigger in SQLITE_TRIGGERS:
            op.execute(trigger)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS call_stats_update ON call_logs")
        op.execute("DROP TRIGGER IF EXISTS call_stats_insert_delete ON call_logs")
        op.execute("DROP FUNCTION IF EXISTS call_stats_apply()")
    else:
        for name in ("call_stats_insert", "call_stats_delete", "call_stats_update"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.drop_table("call_stats_buckets")

"""retention: pseudonymised calls are marked, purged calls leave the statistics rollup as it was

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03 14:30:00

``call_logs.pseudonymised_at`` says when retention replaced a call's numbers by their keyed hashes
(a partial index finds the calls still to do). ``call_logs.purging`` is set on the calls retention
is about to delete, in the deleting transaction: the rollup's delete trigger (0004) leaves such a
call's counts in ``call_stats_buckets``, so statistics over purged periods keep answering what they
answered (the running total of 0005 still drops: the list has fewer calls). The trigger SQL is
written out here so that this revision keeps doing what it did when calld changes.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
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


def _pg_function(keep_purged: bool) -> str:
    skip = "IF TG_OP = 'DELETE' AND OLD.purging THEN RETURN NULL; END IF;" if keep_purged else ""
    return f"""
CREATE OR REPLACE FUNCTION call_stats_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    {skip}
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


def _sqlite_delete_trigger(keep_purged: bool) -> str:
    when = "WHEN NOT OLD.purging " if keep_purged else ""
    return f"CREATE TRIGGER call_stats_delete AFTER DELETE ON call_logs {when}BEGIN {_sqlite_upsert('OLD', -1)} END"


def _triggers(keep_purged: bool) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_pg_function(keep_purged))
    else:
        op.execute("DROP TRIGGER call_stats_delete")
        op.execute(_sqlite_delete_trigger(keep_purged))


def upgrade() -> None:
    # Plain ALTER TABLE ADD COLUMN (no batch): rebuilding call_logs on SQLite would drop its triggers.
    op.add_column("call_logs", sa.Column("pseudonymised_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("call_logs", sa.Column("purging", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_index(
        "ix_call_logs_to_pseudonymise",
        "call_logs",
        ["started_at"],
        sqlite_where=sa.text("pseudonymised_at IS NULL"),
        postgresql_where=sa.text("pseudonymised_at IS NULL"),
    )
    _triggers(keep_purged=True)


def downgrade() -> None:
    _triggers(keep_purged=False)
    op.drop_index("ix_call_logs_to_pseudonymise", "call_logs")
    # ALTER TABLE DROP COLUMN on both (SQLite 3.35+), keeping call_logs' triggers.
    op.execute("ALTER TABLE call_logs DROP COLUMN purging")
    op.execute("ALTER TABLE call_logs DROP COLUMN pseudonymised_at")

"""statistics by group: call_stats_groups, 15-minute buckets per dimension, kept by triggers on call_logs

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 14:00:00

The report (``GET /api/call-logs/statistics/`` with from/until, interval, group_by) sums these
buckets: per (dimension, 15-minute bucket, key) the counts and sums every metric needs, ring, hold
and service-level counts included. Dimension ``all`` (key '') is every call; the others split calls
by direction, extension, client and SIP configuration (key '' for none). The triggers subtract a
row's old contribution and add its new one on every insert, delete and change of a column the
metrics or the keys read, in the writer's transaction, so a report is up to date the moment a call's
change commits. The SQL is written out here (not imported) so this revision keeps doing what it did
when calld changes; a later dimension (answered_by, hangup_cause) is one entry of ``DIMENSIONS`` in
a revision that recreates the triggers and backfills that dimension.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Answered within N seconds of ringing (ring_seconds <= N): the service-level thresholds.
SERVICE_LEVELS = (10, 15, 20, 30, 45, 60, 90, 120)
SUMS = (
    "total_calls",
    "answered_calls",
    "missed_calls",
    "inbound_calls",
    "outbound_calls",
    "abandoned_calls",
    "talk_sum",
    "talk_count",
    "ring_sum",
    "ring_count",
    "hold_sum",
    *(f"answered_within_{n}" for n in SERVICE_LEVELS),
)
_FLOAT_SUMS = ("talk_sum", "ring_sum", "hold_sum")
# Columns whose change changes what a call contributes (metrics or keys).
WATCHED = (
    "started_at",
    "status",
    "direction",
    "answered_at",
    "ended_at",
    "duration_seconds",
    "ring_seconds",
    "hold_seconds",
    "client_id",
    "sip_configuration_id",
    "caller_number",
    "recipient_number",
)


def _extension(row: str, dialect: str) -> str:
    """The call's own extension: the recipient of an inbound call, the caller of an outbound one, when
    it reads as an extension (2 to 6 digits, as ``calld.domain.phone`` keeps them); '' otherwise."""
    party = f"CASE WHEN {row}.direction = 'inbound' THEN {row}.recipient_number ELSE {row}.caller_number END"
    if dialect == "postgresql":
        return f"CASE WHEN ({party}) ~ '^[0-9]{{2,6}}$' THEN ({party}) ELSE '' END"
    return f"CASE WHEN length({party}) BETWEEN 2 AND 6 AND ({party}) NOT GLOB '*[^0-9]*' THEN ({party}) ELSE '' END"


def dimensions(row: str, dialect: str) -> dict[str, str]:
    """Each dimension's key for ``row`` (NEW, OLD, or a table), as SQL text."""
    as_text = "::text" if dialect == "postgresql" else ""
    return {
        "all": "''",
        "direction": f"{row}.direction",
        "extension": _extension(row, dialect),
        "client": f"coalesce({row}.client_id{as_text}, '')",
        "sip_configuration": f"coalesce({row}.sip_configuration_id{as_text}, '')",
    }


def _values(row: str, dialect: str, sign: str) -> list[str]:
    """Each of ``SUMS`` for ``row``, times ``sign`` (``1``, ``-1``; in a GROUP BY: sums over rows)."""
    flag = "::int" if dialect == "postgresql" else ""
    answered = f"{row}.answered_at IS NOT NULL"
    talked = f"{answered} AND {row}.ended_at IS NOT NULL AND {row}.duration_seconds IS NOT NULL"
    timed = f"{answered} AND {row}.ring_seconds IS NOT NULL"
    counts = [
        "1",
        f"({answered}){flag}",
        f"({row}.status IN ('missed', 'no_answer')){flag}",
        f"({row}.direction = 'inbound'){flag}",
        f"({row}.direction = 'outbound'){flag}",
        f"({row}.direction = 'inbound' AND {row}.answered_at IS NULL "
        f"AND {row}.status IN ('missed', 'cancelled')){flag}",
        f"CASE WHEN {talked} THEN {row}.duration_seconds ELSE 0.0 END",
        f"({talked}){flag}",
        f"CASE WHEN {timed} THEN {row}.ring_seconds ELSE 0.0 END",
        f"({timed}){flag}",
        f"CASE WHEN {talked} THEN {row}.hold_seconds ELSE 0.0 END",
        *(f"({timed} AND {row}.ring_seconds <= {n}){flag}" for n in SERVICE_LEVELS),
    ]
    return [f"{sign} * ({value})" for value in counts]


def _bucket(row: str, dialect: str) -> str:
    if dialect == "postgresql":
        return f"(floor(extract(epoch FROM {row}.started_at) / 900) * 900)::bigint"
    return f"CAST(strftime('%s', {row}.started_at) AS INTEGER) / 900 * 900"


_COLUMNS = "dimension, bucket, key, " + ", ".join(SUMS)
_ADD = "ON CONFLICT (dimension, bucket, key) DO UPDATE SET " + ", ".join(
    f"{c} = call_stats_groups.{c} + excluded.{c}" for c in SUMS
)


def _upserts(row: str, dialect: str, sign: str) -> str:
    statements = []
    for name, key in dimensions(row, dialect).items():
        values = ", ".join([f"'{name}'", _bucket(row, dialect), key, *_values(row, dialect, sign)])
        statements.append(f"INSERT INTO call_stats_groups ({_COLUMNS}) VALUES ({values}) {_ADD};")
    return "\n".join(statements)


def rebuild_sql(dialect: str) -> list[str]:
    """The buckets recomputed from ``call_logs`` into an empty table: one INSERT per dimension."""
    sums = ", ".join(f"sum({value})" for value in _values("c", dialect, "1"))
    return [
        f"INSERT INTO call_stats_groups ({_COLUMNS}) SELECT '{name}', {_bucket('c', dialect)}, {key}, {sums} "
        "FROM call_logs AS c GROUP BY 2, 3"
        for name, key in dimensions("c", dialect).items()
    ]


def _sqlite_triggers() -> list[str]:
    changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in WATCHED)
    on = "ON call_logs"
    return [
        f"CREATE TRIGGER call_stats_groups_insert AFTER INSERT {on} BEGIN {_upserts('NEW', 'sqlite', '1')} END",
        f"CREATE TRIGGER call_stats_groups_delete AFTER DELETE {on} BEGIN {_upserts('OLD', 'sqlite', '-1')} END",
        f"CREATE TRIGGER call_stats_groups_update AFTER UPDATE OF {', '.join(WATCHED)} ON call_logs WHEN {changed} "
        f"BEGIN {_upserts('OLD', 'sqlite', '-1')} {_upserts('NEW', 'sqlite', '1')} END",
    ]


def _pg_statements() -> list[str]:
    changed = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in WATCHED)
    function = f"""
CREATE FUNCTION call_stats_groups_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        {_upserts("OLD", "postgresql", "-1")}
    END IF;
    IF TG_OP <> 'DELETE' THEN
        {_upserts("NEW", "postgresql", "1")}
    END IF;
    RETURN NULL;
END
$$
"""
    return [
        function,
        "CREATE TRIGGER call_stats_groups_insert_delete AFTER INSERT OR DELETE ON call_logs "
        "FOR EACH ROW EXECUTE FUNCTION call_stats_groups_apply()",
        f"CREATE TRIGGER call_stats_groups_update AFTER UPDATE OF {', '.join(WATCHED)} ON call_logs "
        f"FOR EACH ROW WHEN ({changed}) EXECUTE FUNCTION call_stats_groups_apply()",
    ]


def upgrade() -> None:
    op.create_table(
        "call_stats_groups",
        sa.Column("dimension", sa.String(24), nullable=False),
        sa.Column("bucket", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        *(sa.Column(c, sa.Float() if c in _FLOAT_SUMS else sa.Integer(), nullable=False) for c in SUMS),
        sa.PrimaryKeyConstraint("dimension", "bucket", "key", name=op.f("pk_call_stats_groups")),
    )
    dialect = op.get_bind().dialect.name
    # Backfill, then the triggers, in one transaction; on PostgreSQL writers wait meanwhile so no
    # write lands between the two and is missed (SQLite's single writer is waiting already).
    if dialect == "postgresql":
        op.execute("LOCK TABLE call_logs IN SHARE ROW EXCLUSIVE MODE")
    for statement in rebuild_sql(dialect):
        op.execute(statement)
    for statement in _pg_statements() if dialect == "postgresql" else _sqlite_triggers():
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS call_stats_groups_update ON call_logs")
        op.execute("DROP TRIGGER IF EXISTS call_stats_groups_insert_delete ON call_logs")
        op.execute("DROP FUNCTION IF EXISTS call_stats_groups_apply()")
    else:
        for name in ("call_stats_groups_insert", "call_stats_groups_delete", "call_stats_groups_update"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.drop_table("call_stats_groups")

"""statistics by the hour: call_stats_hours, a second rollup level beside the 15-minute one

Revision ID: 0023
Revises: 0021
Create Date: 2026-12-03 17:30:00

``call_stats_hours`` is ``call_stats_groups`` (0013) per UTC hour instead of per quarter hour: the same
dimensions, keys and sums, kept by triggers on ``call_logs`` in the writer's transaction (so it is as
fresh as the 15-minute level), and like it kept through a retention purge (0018). UTC hours are whole
hours of every zone whose offset is a whole number of hours, so a report in such a zone reads its whole
hours here (4x fewer rows, a year by hour is ~8,800 rows of the ``all`` dimension) and only the quarter
hours at its ragged ends from the 15-minute level.

What a call contributes is 0013's own definition (``dimensions``, ``_values``, ``WATCHED``), read from
that revision's file: a revision never changes, so this one keeps doing what it did. The backfill sums
the 15-minute rows (which keep purged calls' counts, as ``call_logs`` cannot).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "call_stats_hours"


def _groups() -> ModuleType:
    path = Path(__file__).resolve().parent / "0013_call_stats_groups.py"
    spec = importlib.util.spec_from_file_location("calld_migration_0013_for_0023", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _hour(row: str, dialect: str) -> str:
    if dialect == "postgresql":
        return f"(floor(extract(epoch FROM {row}.started_at) / 3600) * 3600)::bigint"
    return f"CAST(strftime('%s', {row}.started_at) AS INTEGER) / 3600 * 3600"


def _upserts(g: ModuleType, row: str, dialect: str, sign: str) -> str:
    columns = "dimension, bucket, key, " + ", ".join(g.SUMS)
    add = "ON CONFLICT (dimension, bucket, key) DO UPDATE SET " + ", ".join(
        f"{c} = {TABLE}.{c} + excluded.{c}" for c in g.SUMS
    )
    statements = []
    for name, key in g.dimensions(row, dialect).items():
        values = ", ".join([f"'{name}'", _hour(row, dialect), key, *g._values(row, dialect, sign)])
        statements.append(f"INSERT INTO {TABLE} ({columns}) VALUES ({values}) {add};")
    return "\n".join(statements)


def rebuild_sql(sums: Sequence[str], where: str = "true") -> str:
    """The hours summed from ``call_stats_groups`` (into an empty table; the quarter hours ``where``
    selects, whole hours of them); the same on both databases."""
    listed = ", ".join(sums)
    summed = ", ".join(f"sum({c})" for c in sums)
    return (
        f"INSERT INTO {TABLE} (dimension, bucket, key, {listed}) "
        f"SELECT dimension, bucket / 3600 * 3600, key, {summed} FROM call_stats_groups WHERE {where} "
        "GROUP BY 1, 2, 3"
    )


# The backfill a week at a time: calld bounds every PostgreSQL statement (10 s by default), a year of a
# busy PBX's quarter hours in one INSERT may take longer.
_BACKFILL_STEP = 7 * 86400


def _sqlite_triggers(g: ModuleType) -> list[str]:
    changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in g.WATCHED)
    return [
        f"CREATE TRIGGER {TABLE}_insert AFTER INSERT ON call_logs BEGIN {_upserts(g, 'NEW', 'sqlite', '1')} END",
        f"CREATE TRIGGER {TABLE}_delete AFTER DELETE ON call_logs WHEN NOT OLD.purging "
        f"BEGIN {_upserts(g, 'OLD', 'sqlite', '-1')} END",
        f"CREATE TRIGGER {TABLE}_update AFTER UPDATE OF {', '.join(g.WATCHED)} ON call_logs WHEN {changed} "
        f"BEGIN {_upserts(g, 'OLD', 'sqlite', '-1')} {_upserts(g, 'NEW', 'sqlite', '1')} END",
    ]


def _pg_statements(g: ModuleType) -> list[str]:
    changed = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in g.WATCHED)
    function = f"""
CREATE FUNCTION {TABLE}_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        {_upserts(g, "OLD", "postgresql", "-1")}
    END IF;
    IF TG_OP <> 'DELETE' THEN
        {_upserts(g, "NEW", "postgresql", "1")}
    END IF;
    RETURN NULL;
END
$$
"""
    each = f"FOR EACH ROW EXECUTE FUNCTION {TABLE}_apply()"
    return [
        function,
        f"CREATE TRIGGER {TABLE}_insert AFTER INSERT ON call_logs {each}",
        f"CREATE TRIGGER {TABLE}_delete AFTER DELETE ON call_logs FOR EACH ROW WHEN (NOT OLD.purging) "
        f"EXECUTE FUNCTION {TABLE}_apply()",
        f"CREATE TRIGGER {TABLE}_update AFTER UPDATE OF {', '.join(g.WATCHED)} ON call_logs "
        f"FOR EACH ROW WHEN ({changed}) EXECUTE FUNCTION {TABLE}_apply()",
    ]


def upgrade() -> None:
    g = _groups()
    float_sums = ("talk_sum", "ring_sum", "hold_sum")
    op.create_table(
        TABLE,
        sa.Column("dimension", sa.String(24), nullable=False),
        sa.Column("bucket", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        *(sa.Column(c, sa.Float() if c in float_sums else sa.Integer(), nullable=False) for c in g.SUMS),
        sa.PrimaryKeyConstraint("dimension", "bucket", "key", name=op.f(f"pk_{TABLE}")),
    )
    dialect = op.get_bind().dialect.name
    # Backfill, then the triggers, in one transaction; on PostgreSQL writers wait meanwhile so no write
    # lands between the two and is missed (SQLite's single writer is waiting already).
    if dialect == "postgresql":
        op.execute("LOCK TABLE call_logs IN SHARE ROW EXCLUSIVE MODE")
    low, high = op.get_bind().execute(sa.text("SELECT min(bucket), max(bucket) FROM call_stats_groups")).one()
    if low is not None:
        for start in range(low // _BACKFILL_STEP * _BACKFILL_STEP, high + 1, _BACKFILL_STEP):
            op.execute(rebuild_sql(g.SUMS, f"bucket >= {start} AND bucket < {start + _BACKFILL_STEP}"))
    for statement in _pg_statements(g) if dialect == "postgresql" else _sqlite_triggers(g):
        op.execute(statement)
    if dialect == "postgresql":
        op.execute(f"ANALYZE {TABLE}")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS {TABLE}_{name} ON call_logs")
        op.execute(f"DROP FUNCTION IF EXISTS {TABLE}_apply()")
    else:
        for name in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS {TABLE}_{name}")
    op.drop_table(TABLE)

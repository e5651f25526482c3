"""call total: the number of calls in one row, kept by triggers on call_logs

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 11:30:00

The unfiltered call list summed every 15-minute bucket of the rollup for its total (~35,000 rows a
year, growing with history); it now reads one row, ``call_totals`` (id 1), which triggers keep
equal to ``count(*)`` of ``call_logs`` in the transaction of every insert and delete.

SQLite: a row trigger adds 1 or -1 per inserted or deleted call (one writer at a time; an update of
a cached page per row, no row versions).

PostgreSQL: the total is applied once per transaction, at commit.

- Counting costs no write. A row's insert or delete adds +1/-1 to a transaction-local setting
  (``calld.call_total_pending``) in the WHEN of a deferred constraint trigger, whose WHEN is true
  for the first row of the transaction only, so exactly one deferred firing is queued; at commit
  it adds the pending sum to the row (an upsert: one row version per transaction, not per call)
  and resets the setting. A savepoint rolled back reverts its rows' counts and its queued firing
  together (both are subtransaction state); ``SET CONSTRAINTS ... IMMEDIATE`` applies what is
  pending at that point and the next row queues a firing again.
- Why not a statement-level trigger with a transition table (``REFERENCING NEW TABLE ... FOR EACH
  STATEMENT``)? The switch ingest's "multi-row" INSERT is an ``executemany``, which asyncpg runs
  as one execution per row, so a statement trigger fires once per call (measured: transition
  tables of 1, 1, 1, ...) and would make one row version per call, like a row trigger. On a
  scratch table with a rollup-like row trigger, 20,000 inserts as one statement / as 20,000
  statements in one transaction: rollup alone 1.65-1.94 / 4.8-5.8 s; + a row trigger updating
  the total 3.9 / 11.2-14.5 s; + a statement trigger updating it 1.7-2.2 / 7.3-8.6 s; + this
  deferred apply 1.7-2.2 / 4.9-5.2 s.
- Several calld instances on one database: the row is hot, but it is locked only at commit,
  after every other lock the transaction takes (its rollup bucket rows, its calls), and held
  for the commit alone; a transaction holding it waits on nothing else (calld has no other
  deferred triggers or constraints), so it cannot be part of a deadlock cycle and lock order
  stays what 0004 made it. Committers that insert or delete calls serialise on the row for the
  commit's duration (the WAL flush); they already wait on the current quarter hour's bucket row,
  which 0004's row triggers lock from the statement to the commit. Per-instance rows (summed on
  read) were not needed for that reason, and would tie the row to a connection.
- ``TRUNCATE call_logs`` fires no trigger (as for the rollup): rebuild with ``REBUILD_TOTAL``
  (``calld.storage.rollup.REBUILD_TOTAL_SQL``). The bulk loader disables or drops the triggers
  and rebuilds the total afterwards.

The SQL is written out here (not imported) so this revision keeps doing what it did when calld
changes.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SQLITE_ADD = (
    "INSERT INTO call_totals (id, calls) VALUES (1, {sign}) ON CONFLICT (id) DO UPDATE SET calls = calls + {sign};"
)
SQLITE_TRIGGERS = (
    f"CREATE TRIGGER call_total_insert AFTER INSERT ON call_logs BEGIN {_SQLITE_ADD.format(sign=1)} END",
    f"CREATE TRIGGER call_total_delete AFTER DELETE ON call_logs BEGIN {_SQLITE_ADD.format(sign=-1)} END",
)

_PENDING = "coalesce(nullif(current_setting('calld.call_total_pending', true), ''), '0')::bigint"
PG_FUNCTIONS = (
    # The WHEN of the deferred trigger, once per inserted or deleted row: count, and say whether a
    # firing must be queued (the first row of the transaction, or since the last firing).
    f"""
CREATE FUNCTION call_total_note(delta integer) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('calld.call_total_pending', ({_PENDING} + delta)::text, true);
    IF current_setting('calld.call_total_queued', true) = 'on' THEN
        RETURN false;
    END IF;
    PERFORM set_config('calld.call_total_queued', 'on', true);
    RETURN true;
END
$$
""",
    # The deferred firing: add what the transaction counted, once, at commit.
    f"""
CREATE FUNCTION call_total_apply() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    pending bigint := {_PENDING};
BEGIN
    PERFORM set_config('calld.call_total_queued', '', true);
    PERFORM set_config('calld.call_total_pending', '0', true);
    IF pending <> 0 THEN
        INSERT INTO call_totals (id, calls) VALUES (1, pending)
        ON CONFLICT (id) DO UPDATE SET calls = call_totals.calls + excluded.calls;
    END IF;
    RETURN NULL;
END
$$
""",
)
PG_TRIGGERS = (
    "CREATE CONSTRAINT TRIGGER call_total_insert AFTER INSERT ON call_logs DEFERRABLE INITIALLY DEFERRED "
    "FOR EACH ROW WHEN (call_total_note(1)) EXECUTE FUNCTION call_total_apply()",
    "CREATE CONSTRAINT TRIGGER call_total_delete AFTER DELETE ON call_logs DEFERRABLE INITIALLY DEFERRED "
    "FOR EACH ROW WHEN (call_total_note(-1)) EXECUTE FUNCTION call_total_apply()",
)

REBUILD_TOTAL = "INSERT INTO call_totals (id, calls) SELECT 1, count(*) FROM call_logs"


def upgrade() -> None:
    op.create_table(
        "call_totals",
        sa.Column("id", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("calls", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_totals")),
    )
    dialect = op.get_bind().dialect.name
    # Backfill, then the triggers, in one transaction; on PostgreSQL writers wait meanwhile, so no
    # insert or delete lands between the two and is missed (SQLite's single writer waits already).
    if dialect == "postgresql":
        op.execute("LOCK TABLE call_logs IN SHARE ROW EXCLUSIVE MODE")
    op.execute(REBUILD_TOTAL)
    if dialect == "postgresql":
        for statement in (*PG_FUNCTIONS, *PG_TRIGGERS):
            op.execute(statement)
    else:
        for trigger in SQLITE_TRIGGERS:
            op.execute(trigger)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS call_total_insert ON call_logs")
        op.execute("DROP TRIGGER IF EXISTS call_total_delete ON call_logs")
        op.execute("DROP FUNCTION IF EXISTS call_total_apply()")
        op.execute("DROP FUNCTION IF EXISTS call_total_note(integer)")
    else:
        for name in ("call_total_insert", "call_total_delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.drop_table("call_totals")

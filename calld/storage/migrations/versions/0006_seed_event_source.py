"""seed event source: events ``calld seed`` makes are marked ``seed``, not ``switch``

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 18:20:00

``call_events.source`` is a string column with a CHECK constraint (no native enum): PostgreSQL
replaces the constraint (added NOT VALID, then validated without blocking writers); SQLite cannot
alter a CHECK, so the table is rebuilt from its own stored definition with the value added (no
other table or trigger refers to call_events). The downgrade marks seeded events ``switch``, as
they were before.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CONSTRAINT = "ck_call_events_event_source"
BEFORE = ("api", "switch", "webhook")
AFTER = (*BEFORE, "seed")


def _check(values: Sequence[str]) -> str:
    return f"CHECK (source IN ({', '.join(repr(v) for v in values)}))"


def upgrade() -> None:
    _allow(BEFORE, AFTER)


def downgrade() -> None:
    op.execute("UPDATE call_events SET source = 'switch' WHERE source = 'seed'")
    _allow(AFTER, BEFORE)


def _allow(old: Sequence[str], new: Sequence[str]) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE call_events DROP CONSTRAINT {CONSTRAINT}")
        op.execute(f"ALTER TABLE call_events ADD CONSTRAINT {CONSTRAINT} {_check(new)} NOT VALID")
        op.execute(f"ALTER TABLE call_events VALIDATE CONSTRAINT {CONSTRAINT}")
        return
    _rebuild_sqlite(_check(old), _check(new))


def _rebuild_sqlite(old_check: str, new_check: str) -> None:
    """SQLite's way to change a CHECK: a new table with the changed definition, the rows copied over."""
    bind = op.get_bind()
    table_sql = bind.execute(sa.text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'call_events'"))
    definition = table_sql.scalar_one()
    if definition.count(old_check) != 1:
        raise RuntimeError(f"call_events: expected the constraint {old_check} in {definition}")
    indexes = (
        bind.execute(
            sa.text(
                "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'call_events' AND sql IS NOT NULL"
            )
        )
        .scalars()
        .all()
    )
    # After a rename SQLite stores the name quoted: CREATE TABLE "call_events".
    created = re.sub(
        r'^CREATE TABLE "?call_events"?', "CREATE TABLE call_events_new", definition.replace(old_check, new_check)
    )
    op.execute(created)
    op.execute("INSERT INTO call_events_new SELECT * FROM call_events")
    op.execute("DROP TABLE call_events")
    op.execute("ALTER TABLE call_events_new RENAME TO call_events")
    for index in indexes:
        op.execute(index)

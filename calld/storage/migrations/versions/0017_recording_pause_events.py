"""recording_paused / recording_resumed event types: a recording's paused spans (issue 17)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03 13:40:00

``call_events.event_type`` is a string column with a CHECK constraint, changed as 0007 changed it:
PostgreSQL replaces the constraint (NOT VALID, then validated); SQLite rebuilds the table from its
own stored definition with the values added. The downgrade keeps every row: pause and resume
events become ``error`` events, their metadata unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CONSTRAINT = "ck_call_events_event_type"
BEFORE_0007 = (
    "initiated",
    "ringing",
    "answered",
    "hold",
    "unhold",
    "transfer_initiated",
    "transfer_completed",
    "recording_started",
    "recording_stopped",
    "muted",
    "unmuted",
    "dtmf",
    "quality_change",
    "ended",
    "failed",
    "error",
)
BEFORE = (*BEFORE_0007, "provider_event")
AFTER = (*BEFORE, "recording_paused", "recording_resumed")


def _check(values: Sequence[str]) -> str:
    return f"CHECK (event_type IN ({', '.join(repr(v) for v in values)}))"


def upgrade() -> None:
    _allow(BEFORE, AFTER)


def downgrade() -> None:
    op.execute(
        "UPDATE call_events SET event_type = 'error' WHERE event_type IN ('recording_paused', 'recording_resumed')"
    )
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

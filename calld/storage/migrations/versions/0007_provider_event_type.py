"""provider_event event type: what a SIP provider's own webhook reported that changes no status

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 08:00:00

``call_events.event_type`` is a string column with a CHECK constraint (no native enum), changed as
0006 changed ``source``: PostgreSQL replaces the constraint (NOT VALID, then validated); SQLite
rebuilds the table from its own stored definition with the value added. The downgrade keeps every
row: provider events become ``error`` events, their metadata (the provider's own event) unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CONSTRAINT = "ck_call_events_event_type"
BEFORE = (
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
AFTER = (*BEFORE, "provider_event")


def _check(values: Sequence[str]) -> str:
    return f"CHECK (event_type IN ({', '.join(repr(v) for v in values)}))"


def upgrade() -> None:
    _allow(BEFORE, AFTER)


def downgrade() -> None:
    op.execute("UPDATE call_events SET event_type = 'error' WHERE event_type = 'provider_event'")
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

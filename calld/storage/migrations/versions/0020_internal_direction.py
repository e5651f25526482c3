"""call direction ``internal``: extension to extension, as the PBX's configured contexts say

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-03 17:00:00

``call_logs.direction`` is a string column with a CHECK constraint (no native enum). PostgreSQL replaces
the constraint (NOT VALID, then validated). SQLite changes the constraint's text in the stored table
definition (``PRAGMA writable_schema``, the way SQLite's documentation gives for a change that leaves the
stored rows valid: https://sqlite.org/lang_altertable.html#otheralter): a table rebuild would drop
call_logs' triggers and cascades, this keeps every trigger and index as it is.

Nothing is backfilled: a stored call says neither the context it came from nor whether its peer was a
local phone, so no call stored before can be told internal reliably. The rollups need no change: they
count ``inbound`` and ``outbound`` and every call in the total, so internal calls are the difference (and
the direction grouping keys its rows by the direction's text, ``internal`` included).
The downgrade makes internal calls outbound (placed by a phone of the PBX) and restores the constraint.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CONSTRAINT = "ck_call_logs_call_direction"
BEFORE = ("inbound", "outbound")
AFTER = (*BEFORE, "internal")


def _check(values: Sequence[str]) -> str:
    return f"CHECK (direction IN ({', '.join(repr(v) for v in values)}))"


def upgrade() -> None:
    _allow(BEFORE, AFTER)


def downgrade() -> None:
    op.execute("UPDATE call_logs SET direction = 'outbound' WHERE direction = 'internal'")
    _allow(AFTER, BEFORE)


def _allow(old: Sequence[str], new: Sequence[str]) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE call_logs DROP CONSTRAINT {CONSTRAINT}")
        op.execute(f"ALTER TABLE call_logs ADD CONSTRAINT {CONSTRAINT} {_check(new)} NOT VALID")
        op.execute(f"ALTER TABLE call_logs VALIDATE CONSTRAINT {CONSTRAINT}")
        return
    _edit_sqlite_check(_check(old), _check(new))


def _edit_sqlite_check(old_check: str, new_check: str) -> None:
    """Replace ``old_check`` by ``new_check`` in call_logs' stored definition, in this transaction.

    The schema version is bumped so that every connection (this one included) reads the schema again;
    ``quick_check`` then proves the file still parses and its rows satisfy the definition."""
    bind = op.get_bind()
    stored = bind.execute(
        sa.text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'call_logs'")
    ).scalar_one()
    if stored.count(old_check) != 1:
        raise RuntimeError(f"call_logs: expected the constraint {old_check} in its definition")
    version = bind.execute(sa.text("PRAGMA schema_version")).scalar_one()
    bind.execute(sa.text("PRAGMA writable_schema = ON"))
    try:
        bind.execute(
            sa.text("UPDATE sqlite_master SET sql = :sql WHERE type = 'table' AND name = 'call_logs'"),
            {"sql": stored.replace(old_check, new_check)},
        )
        bind.execute(sa.text(f"PRAGMA schema_version = {int(version) + 1}"))
    finally:
        bind.execute(sa.text("PRAGMA writable_schema = OFF"))
    problems = bind.execute(sa.text("PRAGMA quick_check")).scalars().all()
    if problems != ["ok"]:
        raise RuntimeError(f"call_logs: the schema check after the edit found {problems[:5]}")

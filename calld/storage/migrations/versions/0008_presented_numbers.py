"""presented numbers: each call keeps its numbers as presented, and whether the caller withheld it

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 08:00:00

``call_logs.caller_number`` / ``recipient_number`` hold the number calld stores and matches by (E.164
where it can be derived, see ``calld.domain.numbers``); the new ``caller_number_raw`` /
``recipient_number_raw`` keep what the door was given, and ``caller_withheld`` marks a withheld
caller ID. Backfill: the raw columns take the stored number (what earlier versions kept), and
calls whose caller is one of the usual withheld presentations are marked withheld. Adding
columns is an ``ALTER TABLE ... ADD COLUMN`` on both databases: no table rebuild, so the rollup
triggers on ``call_logs`` stay as they are.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out (not imported) so this revision keeps doing what it did when calld changes.
_WITHHELD = ("anonymous", "restricted", "private", "withheld", "unavailable", "unknown", "blocked", "0", "*67")


def upgrade() -> None:
    op.add_column("call_logs", sa.Column("caller_number_raw", sa.String(length=255), nullable=True))
    op.add_column("call_logs", sa.Column("recipient_number_raw", sa.String(length=255), nullable=True))
    op.add_column("call_logs", sa.Column("caller_withheld", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.execute("UPDATE call_logs SET caller_number_raw = caller_number, recipient_number_raw = recipient_number")
    withheld = ", ".join(f"'{word}'" for word in _WITHHELD)
    op.execute(f"UPDATE call_logs SET caller_withheld = true WHERE lower(caller_number) IN ({withheld})")


def downgrade() -> None:
    # SQLite 3.35+ drops a column in place when no index or constraint names it (none does).
    op.drop_column("call_logs", "caller_withheld")
    op.drop_column("call_logs", "recipient_number_raw")
    op.drop_column("call_logs", "caller_number_raw")

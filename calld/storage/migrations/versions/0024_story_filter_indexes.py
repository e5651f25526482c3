"""story filter indexes: the list's hangup_cause, hangup_by, missed_reason and min_mos/max_mos filters

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-03 17:00:00

Each column filter of the list is served by an index (tests/storage/test_search_plans.py). The three
story columns get one each, with ``started_at`` after the column so that a page of one cause comes in
the list's default order; ``mos`` only where the switch measured it (a ``mos >= x`` filter implies it,
so both databases use the partial index).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BY_STARTED = ("hangup_cause", "hangup_by", "missed_reason")


def upgrade() -> None:
    for column in _BY_STARTED:
        op.create_index(f"ix_call_logs_{column}", "call_logs", [column, "started_at"])
    op.create_index(
        "ix_call_logs_mos",
        "call_logs",
        ["mos"],
        sqlite_where=sa.text("mos IS NOT NULL"),
        postgresql_where=sa.text("mos IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_call_logs_mos", table_name="call_logs")
    for column in reversed(_BY_STARTED):
        op.drop_index(f"ix_call_logs_{column}", table_name="call_logs")

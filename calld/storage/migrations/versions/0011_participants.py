"""participants: every party of a call with its role, and which of them really answered

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 14:20:00

A new table ``call_participants`` (one row per party: the leg that carried it, its role, number,
name, endpoint, when it joined, answered and left, and how its leg ended) and a nullable
``call_logs.answered_by`` with an index for the list filter (``calld.domain.participants``).
Older calls have no participant rows and no ``answered_by``: what the switch said of their legs
was not kept, so nothing is backfilled rather than guessed. Adding a column and a table: no
rebuild of ``call_logs``, its rollup triggers stay as they are.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("call_logs", sa.Column("answered_by", sa.String(length=255), nullable=True))
    op.create_index("ix_call_logs_answered_by", "call_logs", ["answered_by", "started_at"])
    op.create_table(
        "call_participants",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("call_id", sa.Uuid(), nullable=False),
        sa.Column("leg", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("number", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("endpoint", sa.String(length=255), nullable=False),
        sa.Column("joined_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("left_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_cause", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["call_id"], ["call_logs.id"], name=op.f("fk_call_participants_call_id_call_logs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_participants")),
        sa.UniqueConstraint("call_id", "leg", name=op.f("uq_call_participants_call_leg")),
    )


def downgrade() -> None:
    op.drop_table("call_participants")
    op.drop_index("ix_call_logs_answered_by", table_name="call_logs")
    op.drop_column("call_logs", "answered_by")

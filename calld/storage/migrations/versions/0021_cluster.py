"""cluster: one leader per PBX (``pbx_leaders``) and control commands carried to it (``calld_commands``)

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-03 16:40:00

Several calld instances for one PBX elect a leader with a PostgreSQL advisory lock; the leader
bumps ``pbx_leaders.epoch`` when it takes office and every ingest transaction checks it (fencing:
a deposed leader's transaction sees a newer epoch and writes nothing). ``calld_commands`` is the
queue through which an instance not connected to a call's PBX asks that PBX's leader to act on
it. Both tables exist on SQLite too (unused there: one instance, no election).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "pbx_leaders",
        sa.Column("pbx", sa.String(length=64), nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.Column("elected_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("pbx", name=op.f("pk_pbx_leaders")),
    )
    op.create_table(
        "calld_commands",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("pbx", sa.String(length=64), nullable=False),
        sa.Column("call_id", sa.Uuid(), nullable=True),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("args", JSON, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("result", JSON, nullable=True),
        sa.Column("requested_by", sa.String(length=200), nullable=False),
        sa.Column("claimed_by", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calld_commands")),
    )
    op.create_index("ix_calld_commands_due", "calld_commands", ["pbx", "status", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_calld_commands_due", table_name="calld_commands")
    op.drop_table("calld_commands")
    op.drop_table("pbx_leaders")

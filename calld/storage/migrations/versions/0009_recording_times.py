"""recording times: when each recording started and stopped, by the call's event times

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 08:10:00

``call_recordings.started_at`` / ``stopped_at`` hold the times of the recording_started and
recording_stopped events (the switch's clock), so a recording whose switch reports no length
(Asterisk, a call ending while recording) still gets one. Earlier rows have neither (no backfill:
their events do not name the row they belong to).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("call_recordings", sa.Column("started_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("call_recordings", sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("call_recordings", "stopped_at")
    op.drop_column("call_recordings", "started_at")

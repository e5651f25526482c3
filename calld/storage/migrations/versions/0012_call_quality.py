"""call quality: how each call sounded, from the switch's measurements

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 13:50:00

New nullable ``call_logs`` columns (``calld.domain.quality``): the worst leg's ``mos``, ``jitter_ms``,
``packet_loss_pct`` and ``rtt_ms``, ``quality_source`` (the switch that measured them) and
``quality_score_by`` (``person`` or ``mos``: who set ``call_quality_score``). Backfill: a score
already stored was set by a person or reported by a provider, never derived from a measurement, so
it is marked ``person`` and a measurement will not replace it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = (
    sa.Column("mos", sa.Float(), nullable=True),
    sa.Column("jitter_ms", sa.Float(), nullable=True),
    sa.Column("packet_loss_pct", sa.Float(), nullable=True),
    sa.Column("rtt_ms", sa.Float(), nullable=True),
    sa.Column("quality_source", sa.String(length=16), nullable=True),
    sa.Column("quality_score_by", sa.String(length=8), nullable=True),
)


def upgrade() -> None:
    for column in _COLUMNS:
        op.add_column("call_logs", column)
    op.execute("UPDATE call_logs SET quality_score_by = 'person' WHERE call_quality_score IS NOT NULL")


def downgrade() -> None:
    for column in reversed(_COLUMNS):
        op.drop_column("call_logs", column.name)

"""hangup story: why each call ended, who ended it, and why an unanswered call was missed

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 08:40:00

New nullable ``call_logs`` columns (``calld.domain.hangup``): ``hangup_cause`` (one vocabulary for both
switches), ``hangup_cause_q850``, ``sip_status``, ``hangup_by`` and ``missed_reason``. Backfill: what
the stored status alone says of unanswered calls (busy -> busy, no_answer -> no_answer, failed ->
unreachable, missed / cancelled -> abandoned); the rest stays unknown (null).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = (
    sa.Column("hangup_cause", sa.String(length=32), nullable=True),
    sa.Column("hangup_cause_q850", sa.Integer(), nullable=True),
    sa.Column("sip_status", sa.Integer(), nullable=True),
    sa.Column("hangup_by", sa.String(length=16), nullable=True),
    sa.Column("missed_reason", sa.String(length=16), nullable=True),
)
# Written out (not imported) so this revision keeps doing what it did when calld changes.
_MISSED_BY_STATUS = {
    "busy": ("busy", "busy"),
    "no_answer": ("no_answer", "no_answer"),
    "failed": ("unreachable", None),
    "missed": ("abandoned", "originator_cancel"),
    "cancelled": ("abandoned", "originator_cancel"),
}


def upgrade() -> None:
    for column in _COLUMNS:
        op.add_column("call_logs", column)
    for status, (reason, cause) in _MISSED_BY_STATUS.items():
        cause_sql = f"'{cause}'" if cause else "NULL"
        op.execute(
            f"UPDATE call_logs SET missed_reason = '{reason}', hangup_cause = {cause_sql} WHERE status = '{status}'"
        )


def downgrade() -> None:
    for column in reversed(_COLUMNS):
        op.drop_column("call_logs", column.name)

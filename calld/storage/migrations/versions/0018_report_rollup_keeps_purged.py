"""the report rollup keeps what retention purges, as the period rollup does since 0016

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03 15:00:00

0016 made ``call_stats_buckets`` keep the counts of calls retention deletes (``call_logs.purging`` is set
on them first); ``call_stats_groups`` (0013, the statistics reports' rollup) still took them off. Its
delete trigger now fires only for calls not being purged: PostgreSQL's combined insert-or-delete trigger
is split so the delete one can say ``WHEN (NOT OLD.purging)``; SQLite's delete trigger is recreated from
its own stored definition with that condition.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SQLITE_HEAD = "CREATE TRIGGER call_stats_groups_delete AFTER DELETE ON call_logs "
_SQLITE_SKIP = "WHEN NOT OLD.purging "


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER call_stats_groups_insert_delete ON call_logs")
        op.execute(
            "CREATE TRIGGER call_stats_groups_insert AFTER INSERT ON call_logs "
            "FOR EACH ROW EXECUTE FUNCTION call_stats_groups_apply()"
        )
        op.execute(
            "CREATE TRIGGER call_stats_groups_delete AFTER DELETE ON call_logs "
            "FOR EACH ROW WHEN (NOT OLD.purging) EXECUTE FUNCTION call_stats_groups_apply()"
        )
        return
    _recreate_sqlite(lambda sql: sql.replace(_SQLITE_HEAD, _SQLITE_HEAD + _SQLITE_SKIP, 1))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER call_stats_groups_delete ON call_logs")
        op.execute("DROP TRIGGER call_stats_groups_insert ON call_logs")
        op.execute(
            "CREATE TRIGGER call_stats_groups_insert_delete AFTER INSERT OR DELETE ON call_logs "
            "FOR EACH ROW EXECUTE FUNCTION call_stats_groups_apply()"
        )
        return
    _recreate_sqlite(lambda sql: sql.replace(_SQLITE_HEAD + _SQLITE_SKIP, _SQLITE_HEAD, 1))


def _recreate_sqlite(change: Callable[[str], str]) -> None:
    bind = op.get_bind()
    stored = bind.execute(
        sa.text("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = 'call_stats_groups_delete'")
    ).scalar_one()
    new = change(stored)
    if new == stored:
        raise RuntimeError(f"call_stats_groups_delete: unexpected definition {stored[:120]}")
    op.execute("DROP TRIGGER call_stats_groups_delete")
    op.execute(new)

"""softphone tokens: the ``softphone`` scope, bound to one SIP configuration; no static TURN credentials

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-03 14:00:00

``api_tokens.scope`` gains ``softphone`` (a CHECK constraint, changed as 0006/0007 change theirs) and
``api_tokens.sip_configuration_id`` names the line a softphone token registers as (SET NULL when the
line is deleted). TURN credentials are now minted per request from ``[turn] secret``: the static
``username``/``credential`` stored in ``sip_configurations.turn_servers`` are removed, only ``urls``
stay. The downgrade revokes softphone tokens (their scope no longer exists); removed TURN
credentials are not restored.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CONSTRAINT = "ck_api_tokens_token_scope"
FK = "fk_api_tokens_sip_configuration_id_sip_configurations"
INDEX = "ix_api_tokens_sip_configuration_id"
BEFORE = ("read", "write", "admin")
AFTER = (*BEFORE, "softphone")
# What SQLite's rebuilt table gains (SQLAlchemy renders sa.Uuid as CHAR(32) there): the column goes
# after the last column (before the table constraints, the first being the primary key), its foreign key last.
PK = "CONSTRAINT pk_api_tokens PRIMARY KEY"
SQLITE_COLUMN = "sip_configuration_id CHAR(32), \n\t"
SQLITE_FK = (
    f", \n\tCONSTRAINT {FK} FOREIGN KEY(sip_configuration_id) REFERENCES sip_configurations (id) ON DELETE SET NULL"
)


def _check(values: Sequence[str]) -> str:
    return f"CHECK (scope IN ({', '.join(repr(v) for v in values)}))"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE api_tokens DROP CONSTRAINT {CONSTRAINT}")
        op.execute(f"ALTER TABLE api_tokens ADD CONSTRAINT {CONSTRAINT} {_check(AFTER)} NOT VALID")
        op.execute(f"ALTER TABLE api_tokens VALIDATE CONSTRAINT {CONSTRAINT}")
        op.add_column("api_tokens", sa.Column("sip_configuration_id", sa.Uuid(), nullable=True))
        op.create_foreign_key(
            FK, "api_tokens", "sip_configurations", ["sip_configuration_id"], ["id"], ondelete="SET NULL"
        )
    else:
        _rebuild_sqlite(lambda sql: _with_column(sql.replace(_check(BEFORE), _check(AFTER))))
    op.create_index(INDEX, "api_tokens", ["sip_configuration_id"], unique=False)
    _strip_static_turn_credentials()


def downgrade() -> None:
    op.execute("UPDATE api_tokens SET scope = 'read', revoked_at = CURRENT_TIMESTAMP WHERE scope = 'softphone'")
    op.drop_index(INDEX, table_name="api_tokens")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(FK, "api_tokens", type_="foreignkey")
        op.drop_column("api_tokens", "sip_configuration_id")
        op.execute(f"ALTER TABLE api_tokens DROP CONSTRAINT {CONSTRAINT}")
        op.execute(f"ALTER TABLE api_tokens ADD CONSTRAINT {CONSTRAINT} {_check(BEFORE)}")
    else:
        _rebuild_sqlite(
            lambda sql: sql.replace(SQLITE_COLUMN, "").replace(SQLITE_FK, "").replace(_check(AFTER), _check(BEFORE))
        )


def _with_column(definition: str) -> str:
    if definition.count(PK) != 1:
        raise RuntimeError(f"api_tokens: expected {PK} in {definition}")
    closing = definition.rindex(")")
    with_fk = definition[:closing] + SQLITE_FK + definition[closing:]
    return with_fk.replace(PK, SQLITE_COLUMN + PK)


def _strip_static_turn_credentials() -> None:
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, turn_servers FROM sip_configurations")).all()
    for row_id, stored in rows:
        servers = json.loads(stored) if isinstance(stored, str) else stored
        kept = [{"urls": server["urls"]} for server in servers or []]
        if kept != servers:
            bind.execute(
                sa.text("UPDATE sip_configurations SET turn_servers = :servers WHERE id = :id").bindparams(
                    sa.bindparam("servers", type_=sa.JSON())
                ),
                {"servers": kept, "id": row_id},
            )


def _rebuild_sqlite(change: Callable[[str], str]) -> None:
    """SQLite cannot alter a CHECK or add a named foreign key: a new table from the changed definition."""
    bind = op.get_bind()
    definition = bind.execute(
        sa.text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'api_tokens'")
    ).scalar_one()
    changed = change(definition)
    if changed == definition:
        raise RuntimeError(f"api_tokens: the definition did not change: {definition}")
    indexes = (
        bind.execute(
            sa.text(
                "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'api_tokens' "
                f"AND sql IS NOT NULL AND name != '{INDEX}'"
            )
        )
        .scalars()
        .all()
    )
    old_columns = [row[1] for row in bind.execute(sa.text("PRAGMA table_info(api_tokens)"))]
    op.execute(re.sub(r'^CREATE TABLE "?api_tokens"?', "CREATE TABLE api_tokens_new", changed))
    new_columns = [row[1] for row in bind.execute(sa.text("PRAGMA table_info(api_tokens_new)"))]
    shared = ", ".join(c for c in old_columns if c in new_columns)
    op.execute(f"INSERT INTO api_tokens_new ({shared}) SELECT {shared} FROM api_tokens")
    op.execute("DROP TABLE api_tokens")
    op.execute("ALTER TABLE api_tokens_new RENAME TO api_tokens")
    for index in indexes:
        op.execute(index)

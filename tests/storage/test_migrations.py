"""The Alembic migrations produce exactly the schema the models describe, on both databases."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from calld.storage.database import Database, alembic_config, head_revision
from calld.storage.models import Base


def _diff(connection: sa.Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def test_migrated_schema_matches_the_models(db: Database) -> None:
    async with db.engine.connect() as conn:
        diff = await conn.run_sync(_diff)
    assert diff == []


async def test_migrating_twice_is_a_no_op(db: Database) -> None:
    await db.migrate()
    async with db.engine.connect() as conn:
        version = (await conn.execute(sa.text("SELECT version_num FROM alembic_version"))).scalar_one()
    assert version == ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert int(version) >= 2


def test_the_head_revision_read_from_the_file_names_is_alembics() -> None:
    # migrate() skips Alembic (a third of start-up time) when the schema is already at this revision.
    assert head_revision() == ScriptDirectory.from_config(alembic_config()).get_current_head()


async def test_a_schema_behind_the_head_is_still_upgraded(db: Database) -> None:
    async with db.engine.begin() as conn:
        await conn.run_sync(_downgrade_to_0004)
    await db.migrate()
    async with db.engine.connect() as conn:
        version = (await conn.execute(sa.text("SELECT version_num FROM alembic_version"))).scalar_one()
        total = (await conn.execute(sa.text("SELECT count(*) FROM call_totals"))).scalar_one()
    assert version == head_revision() and total == 1


def _downgrade_to_0004(connection: sa.Connection) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.downgrade(cfg, "0004")

"""The Alembic migrations produce exactly the schema the models describe, on both databases."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from calld.domain.errors import BreaksARule
from calld.domain.vocabulary import EventSource, EventType
from calld.storage.calls import CallStore
from calld.storage.database import Database, alembic_config, head_revision
from calld.storage.models import Base, CallLog
from calld.storage.search import is_modelled
from calld.storage.types import UTCDateTime
from tests.support import insert_call_sql


def _diff(connection: sa.Connection) -> list[object]:
    # The full-text index objects no model describes (calld.storage.search) are left out, as Alembic's
    # own environment leaves them out.
    include = {"compare_type": True, "include_name": lambda name, type_, _parent: is_modelled(name, type_)}
    context = MigrationContext.configure(connection, opts=include)
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
        await conn.run_sync(_to, "0004", False)
    await db.migrate()
    async with db.engine.connect() as conn:
        version = (await conn.execute(sa.text("SELECT version_num FROM alembic_version"))).scalar_one()
        total = (await conn.execute(sa.text("SELECT count(*) FROM call_totals"))).scalar_one()
    assert version == head_revision() and total == 1


def _to(connection: sa.Connection, revision: str, upgrade: bool) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    (command.upgrade if upgrade else command.downgrade)(cfg, revision)


async def _old_event(db: Database, call_id: uuid.UUID, event_type: str, source: str) -> None:
    async with db.write() as s:
        await s.execute(
            sa.text(
                "INSERT INTO call_events (call_id, event_type, timestamp, metadata, source, created_at) "
                "VALUES (:call, :type, :now, '{}', :source, :now)"
            ).bindparams(
                sa.bindparam("call", call_id, sa.Uuid()), sa.bindparam("now", datetime.now(UTC), UTCDateTime())
            ),
            {"type": event_type, "source": source},
        )


async def _sources(db: Database) -> list[str]:
    async with db.engine.connect() as conn:
        rows = await conn.execute(sa.text("SELECT source FROM call_events ORDER BY id"))
        return list(rows.scalars())


async def test_0006_lets_seeded_events_say_so_and_keeps_every_event(db: Database) -> None:
    async with db.engine.begin() as conn:
        await conn.run_sync(_to, "0005", False)
    # Stored in SQL of 0005's schema (today's models have columns it lacks), which knows no 'seed'.
    call_id = await insert_call_sql(db)
    await _old_event(db, call_id, "initiated", "api")
    await _old_event(db, call_id, "ringing", "switch")
    with pytest.raises(BreaksARule):  # the database's CHECK refuses it; storage says so in domain terms
        await _old_event(db, call_id, "answered", "seed")
    await db.migrate()
    store = CallStore()
    async with db.write() as s:
        call = await s.get_one(CallLog, call_id)
        await store.apply(s, call, EventType.ANSWERED, EventSource.SEED)
    assert await _sources(db) == ["api", "switch", "seed"]
    async with db.engine.connect() as conn:
        assert await conn.run_sync(_diff) == []  # indexes and constraints as before
    with pytest.raises(sa.exc.IntegrityError):
        async with db.engine.begin() as conn:
            await conn.execute(sa.text("UPDATE call_events SET source = 'nobody'"))

    async with db.engine.begin() as conn:  # down: seeded events go back to 'switch'
        await conn.run_sync(_to, "0005", False)
    assert await _sources(db) == ["api", "switch", "switch"]
    with pytest.raises(sa.exc.IntegrityError):
        async with db.engine.begin() as conn:
            await conn.execute(sa.text("UPDATE call_events SET source = 'seed'"))
    await db.migrate()
    assert await _sources(db) == ["api", "switch", "switch"]


async def _event_types(db: Database) -> list[str]:
    async with db.engine.connect() as conn:
        rows = await conn.execute(sa.text("SELECT event_type FROM call_events ORDER BY id"))
        return list(rows.scalars())


async def test_0007_lets_providers_events_be_stored_and_its_downgrade_keeps_them(db: Database) -> None:
    async with db.engine.begin() as conn:
        await conn.run_sync(_to, "0006", False)
    call_id = await insert_call_sql(db)  # 0006's schema knows no provider_event
    await _old_event(db, call_id, "initiated", "webhook")
    with pytest.raises(BreaksARule):
        await _old_event(db, call_id, "provider_event", "webhook")
    store = CallStore()
    await db.migrate()
    async with db.write() as s:
        call = await s.get_one(CallLog, call_id)
        await store.apply(s, call, EventType.PROVIDER_EVENT, EventSource.WEBHOOK, metadata={"provider": "telnyx"})
    assert await _event_types(db) == ["initiated", "provider_event"]
    async with db.engine.connect() as conn:
        assert await conn.run_sync(_diff) == []
    async with db.engine.begin() as conn:  # down: kept, as an error event with the provider's metadata
        await conn.run_sync(_to, "0006", False)
    assert await _event_types(db) == ["initiated", "error"]
    await db.migrate()
    assert await _event_types(db) == ["initiated", "error"]

"""The Alembic migrations produce exactly the schema the models describe, on both databases."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncConnection

from calld.domain.scopes import Scope
from calld.domain.vocabulary import EventSource, EventType, RecordingStatus
from calld.storage.calls import CallStore
from calld.storage.database import Database, alembic_config, head_revision
from calld.storage.models import ApiToken, Base, CallLog, CallParticipant, CallRecording
from calld.storage.search import is_modelled
from calld.storage.tokens import TokenStore
from calld.storage.types import UTCDateTime
from tests.storage.old_schema import insert_old_event
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
    call_id = await insert_call_sql(db)  # stored by 0005's schema, which knows no 'seed'
    await insert_old_event(db, call_id, "api", 1)
    await insert_old_event(db, call_id, "switch", 2)
    with pytest.raises(sa.exc.IntegrityError):
        await insert_old_event(db, call_id, "seed", 3)
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
    await insert_old_event(db, call_id, "webhook", 0, "initiated")
    with pytest.raises(sa.exc.IntegrityError):
        await insert_old_event(db, call_id, "webhook", 1, "provider_event")
    await db.migrate()
    store = CallStore()
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


async def test_0008_keeps_each_calls_numbers_as_presented_and_marks_withheld_callers(db: Database) -> None:
    async with db.engine.begin() as conn:
        await conn.run_sync(_to, "0007", False)
    plain = await insert_call_sql(db, caller="+14155550100")
    withheld = await insert_call_sql(db, caller="Anonymous")
    await db.migrate()
    async with db.read() as s:
        calls = {c.id: c for c in (await s.execute(sa.select(CallLog))).scalars()}
    assert (calls[plain].caller_number_raw, calls[plain].recipient_number_raw) == ("+14155550100", "1001")
    assert calls[plain].caller_withheld is False
    assert (calls[withheld].caller_number_raw, calls[withheld].caller_withheld) == ("Anonymous", True)
    async with db.engine.connect() as conn:
        assert await conn.run_sync(_diff) == []
    async with db.engine.begin() as conn:  # down and up again: the numbers stay
        await conn.run_sync(_to, "0007", False)
    await db.migrate()
    async with db.read() as s:
        numbers = set((await s.execute(sa.select(CallLog.caller_number, CallLog.caller_number_raw))).all())
    assert numbers == {("+14155550100", "+14155550100"), ("Anonymous", "Anonymous")}


async def test_0009_adds_recording_times_and_keeps_recordings(db: Database) -> None:
    call_id = await insert_call_sql(db)
    async with db.write() as s:
        s.add(CallRecording(call_id=call_id, status=RecordingStatus.COMPLETED, file_size=10))
    async with db.engine.begin() as conn:
        await conn.run_sync(_to, "0008", False)
    await db.migrate()
    async with db.read() as s:
        recording = (await s.execute(sa.select(CallRecording))).scalar_one()
    assert (recording.file_size, recording.started_at, recording.stopped_at) == (10, None, None)
    async with db.engine.connect() as conn:
        assert await conn.run_sync(_diff) == []


async def test_0010_backfills_what_the_status_says_of_unanswered_calls(db: Database) -> None:
    async with db.engine.begin() as conn:
        await conn.run_sync(_to, "0009", False)
    busy = await insert_call_sql(db)
    async with db.engine.begin() as conn:  # insert_old_call stores a ringing call: make it busy
        await conn.execute(sa.text("UPDATE call_logs SET status = 'busy'"))
    await db.migrate()
    async with db.read() as s:
        call = await s.get_one(CallLog, busy)
    assert (call.missed_reason, call.hangup_cause, call.hangup_by) == ("busy", "busy", None)
    async with db.engine.connect() as conn:
        assert await conn.run_sync(_diff) == []


async def test_0011_adds_participants_and_answered_by_and_keeps_calls(db: Database) -> None:
    async with db.engine.begin() as conn:
        await conn.run_sync(_to, "0010", False)
        assert not await conn.run_sync(lambda c: sa.inspect(c).has_table("call_participants"))
    call_id = await insert_call_sql(db)
    await db.migrate()
    async with db.write() as s:
        call = await s.get_one(CallLog, call_id)
        assert call.answered_by is None  # not guessed for calls stored before
        s.add(CallParticipant(call_id=call_id, leg="PJSIP/1001-1", role="caller", number="1001"))
    async with db.engine.connect() as conn:
        assert await conn.run_sync(_diff) == []
    async with db.engine.begin() as conn:  # down and up again: the calls stay, the parties go with their table
        await conn.run_sync(_to, "0010", False)
    await db.migrate()
    async with db.read() as s:
        assert (await s.get_one(CallLog, call_id)).caller_number == "+14155550100"
        assert (await s.execute(sa.select(sa.func.count()).select_from(CallParticipant))).scalar_one() == 0


def _before(revision: str) -> str:
    """The revision ``revision`` follows (the chain is re-ordered when branches merge)."""
    down = ScriptDirectory.from_config(alembic_config()).get_revision(revision).down_revision
    assert isinstance(down, str)
    return down


async def test_0017_lets_recording_pauses_be_stored_and_its_downgrade_keeps_them(db: Database) -> None:
    async with db.engine.begin() as conn:
        await conn.run_sync(_to, _before("0017"), False)
    call_id = await insert_call_sql(db)  # the schema before 0017 knows no recording_paused
    await insert_old_event(db, call_id, "api", 0, "initiated")
    with pytest.raises(sa.exc.IntegrityError):
        await insert_old_event(db, call_id, "api", 1, "recording_paused")
    await db.migrate()
    store = CallStore()
    async with db.write() as s:
        call = await s.get_one(CallLog, call_id)
        for kind in (EventType.ANSWERED, EventType.RECORDING_STARTED):
            await store.apply(s, call, kind, EventSource.API)
        await store.apply(s, call, EventType.RECORDING_PAUSED, EventSource.API, metadata={"path": "a.wav"})
        await store.apply(s, call, EventType.RECORDING_RESUMED, EventSource.API)
    assert (await _event_types(db))[-2:] == ["recording_paused", "recording_resumed"]
    async with db.engine.connect() as conn:
        assert await conn.run_sync(_diff) == []
    async with db.engine.begin() as conn:  # down: kept, as error events with their metadata
        await conn.run_sync(_to, _before("0017"), False)
    assert (await _event_types(db))[-2:] == ["error", "error"]
    await db.migrate()
    assert (await _event_types(db))[-2:] == ["error", "error"]


async def test_0019_softphone_tokens_and_no_static_turn_credentials(db: Database) -> None:
    async with db.engine.begin() as conn:
        await conn.run_sync(_to, _before("0019"), False)
        turn = '[{"urls": "turn:t.example.com", "username": "static", "credential": "forever"}]'
        await conn.execute(
            sa.text(
                "INSERT INTO sip_configurations (id, name, server, port, transport, username, secret, stun_servers, "
                "turn_servers, is_default, active, created_at, updated_at) VALUES (:id, 'line', 'pbx.example.com', "
                "5060, 'udp', '1001', 's', '[]', :turn, true, true, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            ),
            {"id": LINE.hex if db.url.startswith("sqlite") else str(LINE), "turn": turn},
        )
        await conn.execute(_token("kept", "write"))
    await db.migrate()
    async with db.engine.connect() as conn:
        assert await conn.run_sync(_diff) == []
        stored_turn = (await conn.execute(sa.text("SELECT turn_servers FROM sip_configurations"))).scalar_one()
    kept = json.loads(stored_turn) if isinstance(stored_turn, str) else stored_turn
    assert kept == [{"urls": "turn:t.example.com"}]
    async with db.write() as s:
        await TokenStore().create(s, "phone", Scope.SOFTPHONE, sip_configuration_id=LINE)
    async with db.engine.begin() as conn:
        assert await _scopes(conn) == [("kept", "write", None), ("phone", "softphone", LINE)]
        await conn.execute(sa.text("DELETE FROM sip_configurations"))  # the line goes: the token is bound to none
        assert await _scopes(conn) == [("kept", "write", None), ("phone", "softphone", None)]
    async with db.engine.begin() as conn:  # down: softphone tokens are revoked, no scope is widened
        await conn.run_sync(_to, _before("0019"), False)
        rows = (await conn.execute(sa.text("SELECT name, scope, revoked_at FROM api_tokens ORDER BY name"))).all()
    assert [(name, scope, revoked is not None) for name, scope, revoked in rows] == [
        ("kept", "write", False),
        ("phone", "read", True),
    ]
    with pytest.raises(sa.exc.IntegrityError):
        async with db.engine.begin() as conn:
            await conn.execute(sa.text("UPDATE api_tokens SET scope = 'softphone'"))
    await db.migrate()
    async with db.engine.connect() as conn:
        assert await conn.run_sync(_diff) == []


LINE = uuid.UUID("5f0c6b8e-0c1d-4c39-9a53-0e5b7b0d9a01")


def _token(name: str, scope: str) -> sa.TextClause:
    return sa.text(
        "INSERT INTO api_tokens (id, key, name, scope, token_hash, created_at) "
        f"VALUES ('{uuid.uuid4().hex}', '{uuid.uuid4().hex[:12]}', '{name}', '{scope}', '{'0' * 64}', "
        "CURRENT_TIMESTAMP)"
    )


async def _scopes(conn: AsyncConnection) -> list[tuple[str, str, uuid.UUID | None]]:
    rows = await conn.execute(sa.select(ApiToken.name, ApiToken.scope, ApiToken.sip_configuration_id).order_by("name"))
    return [(name, str(scope), line) for name, scope, line in rows]


async def test_0013_backfills_the_report_rollup_as_its_triggers_keep_it(db: Database) -> None:
    import random
    from datetime import UTC, datetime

    from tests.http.test_statistics_report import random_calls

    # No internal calls: going down to 0012 passes 0020's downgrade, which makes them outbound.
    rows = random_calls(random.Random(13), 400, datetime(2026, 10, 20, tzinfo=UTC), 10, [], ("inbound", "outbound"))
    async with db.write() as s:
        await s.execute(CallLog.__table__.insert(), rows)
        await s.execute(sa.update(CallLog).where(CallLog.status == "busy").values(status="missed"))
        await s.execute(sa.delete(CallLog).where(CallLog.status == "failed"))

    async def groups() -> set[tuple[object, ...]]:
        async with db.engine.connect() as conn:
            found = await conn.execute(sa.text("SELECT * FROM call_stats_groups WHERE total_calls <> 0"))
            return {tuple(round(v, 6) if isinstance(v, float) else v for v in row) for row in found}

    kept = await groups()  # by the triggers, through inserts, changes and deletes
    assert len({row[0] for row in kept}) == 5  # every dimension
    async with db.engine.begin() as conn:
        await conn.run_sync(_to, _before("0013"), False)
    await db.migrate()  # 0013 again: its backfill from call_logs
    assert await groups() == kept
    async with db.engine.connect() as conn:
        assert await conn.run_sync(_diff) == []


async def test_0012_adds_quality_columns_and_keeps_a_stored_score_as_a_persons(db: Database) -> None:
    async with db.engine.begin() as conn:
        await conn.run_sync(_to, _before("0012"), False)
    scored, unscored = await insert_call_sql(db), await insert_call_sql(db, caller="+14155550101")
    async with db.engine.begin() as conn:  # a score stored before 0012 (PATCH or a provider's report)
        await conn.execute(
            sa.text("UPDATE call_logs SET call_quality_score = 4.2 WHERE caller_number = '+14155550100'")
        )
    await db.migrate()
    async with db.read() as s:
        first, second = await s.get_one(CallLog, scored), await s.get_one(CallLog, unscored)
    assert (first.call_quality_score, first.quality_score_by, first.mos) == (4.2, "person", None)
    assert (second.call_quality_score, second.quality_score_by, second.mos) == (None, None, None)
    async with db.engine.begin() as conn:
        await conn.run_sync(_to, _before("0012"), False)
    async with db.engine.connect() as conn:
        columns = await conn.run_sync(lambda c: {col["name"] for col in sa.inspect(c).get_columns("call_logs")})
    assert "mos" not in columns and "call_quality_score" in columns


async def _schema(db: Database) -> dict[tuple[str, str], str | None]:
    """Every schema object but call_logs' own definition: what 0020 must keep as it is (SQLite), or the
    triggers and constraints of call_logs (PostgreSQL)."""
    async with db.engine.connect() as conn:
        if db.url.startswith("sqlite"):
            rows = await conn.execute(sa.text("SELECT type, name, sql FROM sqlite_master"))
            return {(kind, name): sql for kind, name, sql in rows if (kind, name) != ("table", "call_logs")}
        rows = await conn.execute(
            sa.text(
                "SELECT 'trigger', tgname, pg_get_triggerdef(oid) FROM pg_trigger "
                "WHERE tgrelid = 'call_logs'::regclass AND NOT tgisinternal "
                "UNION ALL SELECT 'constraint', conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = 'call_logs'::regclass AND conname <> 'ck_call_logs_call_direction'"
            )
        )
        return {(kind, name): sql for kind, name, sql in rows}


async def _internal_call(db: Database, call_id: uuid.UUID) -> None:
    async with db.engine.begin() as s:
        await s.execute(
            sa.text("UPDATE call_logs SET direction = 'internal' WHERE id = :id").bindparams(
                sa.bindparam("id", call_id, sa.Uuid())
            )
        )


async def test_0020_allows_internal_calls_and_keeps_every_trigger_index_and_cascade(db: Database) -> None:
    async with db.engine.begin() as conn:
        await conn.run_sync(_to, _before("0020"), False)
    before = await _schema(db)
    assert len([key for key in before if key[0] == "trigger"]) >= (11 if db.url.startswith("sqlite") else 7)
    call_id = await insert_call_sql(db)
    await insert_old_event(db, call_id, "api", 0, "initiated")
    with pytest.raises(sa.exc.IntegrityError):  # the schema before 0020 knows no internal call
        await _internal_call(db, call_id)
    async with db.engine.begin() as conn:
        await conn.run_sync(_to, "0020", True)
    assert await _schema(db) == before  # triggers, indexes and foreign keys as they were
    await _internal_call(db, call_id)
    async with db.engine.connect() as conn:  # the rollup's triggers still run: the call moved group
        keys = await conn.execute(
            sa.text("SELECT key FROM call_stats_groups WHERE dimension = 'direction' AND total_calls <> 0")
        )
        assert list(keys.scalars()) == ["internal"]
    with pytest.raises(sa.exc.IntegrityError):
        async with db.engine.begin() as conn:
            await conn.execute(sa.text("UPDATE call_logs SET direction = 'sideways'"))
    async with db.write() as s:  # the events' cascade still holds
        await s.execute(sa.text("DELETE FROM call_logs"))
    assert await _event_types(db) == []
    call_id = await insert_call_sql(db)
    await _internal_call(db, call_id)
    async with db.engine.begin() as conn:  # down: internal calls become outbound, the constraint as it was
        await conn.run_sync(_to, _before("0020"), False)
    assert await _schema(db) == before
    async with db.engine.connect() as conn:
        assert (await conn.execute(sa.text("SELECT direction FROM call_logs"))).scalar_one() == "outbound"
    with pytest.raises(sa.exc.IntegrityError):
        await _internal_call(db, call_id)
    await db.migrate()
    async with db.engine.connect() as conn:
        assert await conn.run_sync(_diff) == []


async def test_0023_backfills_the_hourly_rollup_as_its_triggers_keep_it(db: Database) -> None:
    import random

    from tests.http.test_statistics_report import random_calls

    rows = random_calls(random.Random(23), 400, datetime(2026, 10, 20, tzinfo=UTC), 10, [])
    async with db.write() as s:
        await s.execute(CallLog.__table__.insert(), rows)
        await s.execute(sa.update(CallLog).where(CallLog.status == "busy").values(status="missed"))
        await s.execute(sa.delete(CallLog).where(CallLog.status == "failed"))

    async def hours(sql: str) -> set[tuple[object, ...]]:
        async with db.engine.connect() as conn:
            found = await conn.execute(sa.text(sql))
            return {tuple(round(v, 6) if isinstance(v, float) else v for v in row) for row in found}

    kept = await hours("SELECT * FROM call_stats_hours WHERE total_calls <> 0")  # by the triggers
    sums = ", ".join(
        f"sum({c.name})"
        for c in CallLog.metadata.tables["call_stats_hours"].columns
        if c.name not in ("dimension", "bucket", "key")
    )
    summed = await hours(
        f"SELECT dimension, bucket / 3600 * 3600, key, {sums} FROM call_stats_groups "
        "GROUP BY 1, 2, 3 HAVING sum(total_calls) <> 0"
    )
    assert kept == summed and len({row[0] for row in kept}) == 5  # the quarter hours, summed per hour
    async with db.engine.begin() as conn:
        await conn.run_sync(_to, _before("0023"), False)
    await db.migrate()  # 0023 again: its backfill from the quarter hours
    assert await hours("SELECT * FROM call_stats_hours WHERE total_calls <> 0") == kept
    async with db.engine.connect() as conn:
        assert await conn.run_sync(_diff) == []

"""Every search filter of the call list is served by an index, on both databases.

The count the list answers visits every match, so its plan is the one checked: EXPLAIN on
PostgreSQL (sequential scans discouraged, as on a big table the planner would avoid them; one that
still appears means no index can serve the filter) and EXPLAIN QUERY PLAN on SQLite.
"""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from calld.domain.call_filter import (
    COLUMN_CRITERIA,
    ORDERINGS,
    CallFilter,
    ColumnCriterion,
    Compare,
    number_pattern,
    search_text,
)
from calld.storage import call_queries
from calld.storage.call_queries import call_page, conditions
from calld.storage.database import Database
from calld.storage.models import CallLog


def _sample(criterion: ColumnCriterion) -> object:
    """A value the criterion's parameter takes."""
    if criterion.compare is Compare.ANY_OF:
        return (next(iter(criterion.values)),)  # type: ignore[call-overload]
    return "1001" if criterion.compare is Compare.EQUALS else 3.0


PG_TEXT = ("ix_call_logs_notes_fts", "ix_clients_name_fts", "ix_call_recordings_transcript_fts")
# (filter, the indexes its plan must use on PostgreSQL, on SQLite)
CASES: list[tuple[str, CallFilter, tuple[str, ...], tuple[str, ...]]] = [
    (
        "number prefix",
        CallFilter(number_pattern=number_pattern("+4930*")),
        ("ix_call_logs_caller_number_c", "ix_call_logs_recipient_number_c"),
        ("ix_call_logs_caller_number", "ix_call_logs_recipient_number"),
    ),
    (
        "number wildcard",
        CallFilter(number_pattern=number_pattern("+49*12?4")),
        ("ix_call_logs_caller_number_c", "ix_call_logs_recipient_number_c"),
        ("ix_call_logs_caller_number", "ix_call_logs_recipient_number"),
    ),
    ("has_recording", CallFilter(has_recording=True), ("ix_call_recordings_kept",), ("ix_call_recordings_kept",)),
    ("no recording", CallFilter(has_recording=False), ("ix_call_recordings_kept",), ("ix_call_recordings_kept",)),
    (
        "has_transcript",
        CallFilter(has_transcript=True),
        ("ix_call_recordings_transcribed",),
        ("ix_call_recordings_transcribed",),
    ),
    (
        "no transcript",
        CallFilter(has_transcript=False),
        ("ix_call_recordings_transcribed",),
        ("ix_call_recordings_transcribed",),
    ),
    ("q", CallFilter(text=search_text("maria refund")), PG_TEXT, ("search_fts VIRTUAL TABLE INDEX",)),
    ("tag", CallFilter(tags=("vip", "callback")), ("ix_call_tags_tag",), ("ix_call_tags_tag",)),
    *(
        (
            c.param,
            CallFilter(criteria={c.param: _sample(c)}),
            (f"ix_call_logs_{c.column}",),
            (f"ix_call_logs_{c.column}",),
        )
        for c in COLUMN_CRITERIA
    ),
]


# PostgreSQL plans by its statistics: a table of some thousands of calls (most with notes, some with
# clients and transcripts), analysed, so that the planner picks as it would in service.
PG_DATA = (
    "INSERT INTO clients (id, name, notes, seeded, created_at, updated_at) "
    "SELECT gen_random_uuid(), 'Client ' || g, '', false, now(), now() FROM generate_series(1, 500) g",
    "INSERT INTO call_logs (id, direction, call_type, status, caller_number, recipient_number, started_at, "
    "last_event_at, hold_seconds, recording, notes, seeded, created_at, updated_at, purging, duration_seconds) "
    "SELECT gen_random_uuid(), 'inbound', 'voice', 'ended', '+1415555' || lpad(g::text, 4, '0'), '1' || g % 900, "
    "now() - g * interval '1 minute', now(), 0, false, 'note number ' || g, false, now(), now(), false, g % 600 "
    "FROM generate_series(1, 5000) g",
    "UPDATE call_logs SET client_id = (SELECT id FROM clients ORDER BY name LIMIT 1) WHERE duration_seconds < 10",
    "INSERT INTO call_recordings (id, call_id, status, transcript, seeded, created_at, updated_at) "
    "SELECT gen_random_uuid(), id, CASE WHEN duration_seconds < 300 THEN 'completed' ELSE 'deleted' END, "
    "CASE WHEN duration_seconds < 100 THEN 'said ' || duration_seconds END, false, now(), now() "
    "FROM call_logs WHERE duration_seconds < 400",
    "INSERT INTO call_tags (call_id, tag) SELECT id, 'tag' || (duration_seconds::int % 50) FROM call_logs",
    "ANALYZE",
)


def _populate(conn: sa.Connection) -> None:
    for statement in PG_DATA:
        conn.exec_driver_sql(statement)


def _plan(conn: sa.Connection, flt: CallFilter) -> str:
    stmt = sa.select(sa.func.count()).select_from(CallLog).where(*conditions(flt, conn.dialect.name))
    sql = str(stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        return "\n".join(row[0] for row in conn.exec_driver_sql("EXPLAIN " + sql))
    return "\n".join(row[3] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql))


@pytest.mark.parametrize(("name", "flt", "pg_indexes", "sqlite_indexes"), CASES, ids=[c[0] for c in CASES])
async def test_each_search_filter_uses_its_index(
    db: Database, name: str, flt: CallFilter, pg_indexes: tuple[str, ...], sqlite_indexes: tuple[str, ...]
) -> None:
    if db.dialect == "postgresql":
        async with db.engine.begin() as conn:
            await conn.run_sync(_populate)
    async with db.engine.begin() as conn:
        plan = await conn.run_sync(_plan, flt)
    expected = pg_indexes if db.dialect == "postgresql" else sqlite_indexes
    for index in expected:
        assert index in plan, f"{name}: {index} not used:\n{plan}"
    assert "Seq Scan" not in plan, plan
    assert not any(
        line.strip() in ("SCAN call_logs", "SCAN call_recordings", "SCAN clients") for line in plan.splitlines()
    ), plan


@pytest.mark.parametrize("ordering", ORDERINGS)
async def test_sorted_matches_and_index_order_give_the_same_pages(
    db: Database, ordering: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page of few matches is sorted, of many read along the ordering's index: the same rows either way."""
    async with db.engine.begin() as conn:
        await conn.exec_driver_sql(
            "INSERT INTO call_logs (id, direction, call_type, status, caller_number, recipient_number, started_at, "
            "last_event_at, hold_seconds, recording, notes, seeded, created_at, updated_at, purging, "
            "duration_seconds) VALUES "
            + ", ".join(
                f"('{uuid.UUID(int=n + 1).hex}', 'inbound', 'voice', 'ended', '+1415555{n:04d}', '1001', "
                f"'2026-11-{1 + n % 20:02d} 10:{n % 60:02d}:00', '2026-11-01 10:00:00', 0, false, '', false, "
                f"'2026-11-01 10:00:00', '2026-11-01 10:00:00', false, {'NULL' if n % 7 == 0 else n % 13})"
                for n in range(60)
            )
        )
    flt = CallFilter(number_pattern=number_pattern("+141555500*"))
    pages = []
    for threshold in (0, 10_000):
        monkeypatch.setattr(call_queries, "SORT_MATCHES_UP_TO", threshold)
        pages.append(
            [
                (await db.query(call_page, flt, ordering=ordering, limit=7, offset=offset))
                for offset in (0, 7, 14, 21, 28)
            ]
        )
    assert pages[0] == pages[1]
    assert pages[0][0][0] == 60 and len({row.id for page in pages[0] for row in page[1]}) == 35

"""Seed data on both databases: realistic calls whose events replay to their stored state, and cleanup."""

from __future__ import annotations

import random
import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo

import phonenumbers
import pytest
import sqlalchemy as sa

from calld.cli.main import main
from calld.cli.seed import CLIENTS, SIP_CONFIGS, cleanup_seeded, seed_calls
from calld.domain.call import NewCall, apply_event, new_call
from calld.domain.call_filter import Period, period_start
from calld.domain.vocabulary import (
    TERMINAL_STATUSES,
    CallDirection,
    CallStatus,
    EventSource,
    EventType,
    RecordingStatus,
)
from calld.storage.calls import CallStore, state_of
from calld.storage.database import Database
from calld.storage.models import CallEvent, CallLog, CallRecording, Client, ClientPhoneNumber, SipConfiguration
from tests.support import SettableClock

NOW = datetime(2026, 11, 24, 15, 30, tzinfo=UTC)
T = TypeVar("T")


async def all_rows(db: Database, model: type[T]) -> list[T]:
    async with db.read() as s:
        return list((await s.execute(sa.select(model))).scalars())


def is_number(value: str) -> bool:
    if value.isdigit() and 2 <= len(value) <= 6:
        return True
    return value.startswith("+") and phonenumbers.is_valid_number(phonenumbers.parse(value))


async def test_seed_creates_n_calls_that_replay_through_the_state_machine(db: Database) -> None:
    summary = await seed_calls(db, CallStore(), 120, random.Random(7), NOW)
    calls = await all_rows(db, CallLog)
    events = await all_rows(db, CallEvent)
    recordings = await all_rows(db, CallRecording)
    assert len(calls) == summary.calls == 120
    assert len(events) == summary.events
    assert len(recordings) == summary.recordings > 0
    assert (summary.clients, summary.sip_configurations) == (len(CLIENTS), len(SIP_CONFIGS))
    assert all(c.seeded for c in calls) and all(r.seeded for r in recordings)
    assert Counter(c.status.value for c in calls) == Counter(summary.statuses)

    by_call: dict[uuid.UUID, list[CallEvent]] = defaultdict(list)
    for event in sorted(events, key=lambda e: (e.timestamp, e.id)):
        by_call[event.call_id].append(event)
    for call in calls:
        history = by_call[call.id]
        assert history[0].event_type is EventType.INITIATED
        assert {e.source for e in history} == {EventSource.SEED}
        state = new_call(CallDirection(call.direction), history[0].timestamp)
        for event in history[1:]:
            state = apply_event(state, event.event_type, event.timestamp, event.meta)
        assert state == state_of(call), call.id
        assert call.status in TERMINAL_STATUSES
        assert NOW - timedelta(days=31) <= call.started_at and call.ended_at is not None and call.ended_at <= NOW
        assert is_number(call.caller_number) and is_number(call.recipient_number)

    statuses = {c.status for c in calls}
    assert {CallStatus.ENDED, CallStatus.MISSED, CallStatus.BUSY, CallStatus.NO_ANSWER} <= statuses
    assert {CallStatus.FAILED, CallStatus.CANCELLED} <= statuses
    assert {c.direction for c in calls} == {CallDirection.INBOUND, CallDirection.OUTBOUND}
    kinds = {e.event_type for e in events}
    assert {
        EventType.HOLD,
        EventType.UNHOLD,
        EventType.RECORDING_STARTED,
        EventType.TRANSFER_INITIATED,
        EventType.DTMF,
        EventType.QUALITY_CHANGE,
    } <= kinds
    assert any(c.client_id is not None for c in calls) and any(c.client_id is None for c in calls)
    assert all(c.duration_seconds and c.duration_seconds > 0 for c in calls if c.status is CallStatus.ENDED)

    recorded = {e.call_id for e in events if e.event_type is EventType.RECORDING_STARTED}
    assert {r.call_id for r in recordings} == recorded
    for rec in recordings:
        assert rec.status is RecordingStatus.COMPLETED
        assert rec.local_path.endswith(f"{rec.call_id}.{rec.format}")
        assert rec.duration_seconds > 0 and rec.file_size > 0
    transcribed = [r for r in recordings if r.transcript]
    assert transcribed and all(0 <= r.transcript_confidence <= 1 for r in transcribed)


async def test_seed_is_repeatable_and_reuses_clients_and_trunks(db: Database) -> None:
    first = await seed_calls(db, CallStore(), 5, random.Random(1), NOW)
    second = await seed_calls(db, CallStore(), 7, random.Random(2), NOW)
    assert (first.clients, second.clients, second.sip_configurations) == (len(CLIENTS), 0, 0)
    assert len(await all_rows(db, CallLog)) == 12
    assert len(await all_rows(db, Client)) == len(CLIENTS)
    assert len(await all_rows(db, SipConfiguration)) == len(SIP_CONFIGS)


async def test_cleanup_removes_only_seeded_rows(db: Database) -> None:
    clock = SettableClock(NOW)
    store = CallStore(clock=clock)
    seeded_client_number = CLIENTS[0][3][0]
    async with db.write() as s:
        real_client = Client(name="Real Customer", phone_numbers=[ClientPhoneNumber(number="+14155550199")])
        s.add(real_client)
        s.add(SipConfiguration(name="office-pbx", server="pbx.office.example", username="office"))
        await s.flush()
        real_call = await store.create(
            s, NewCall(CallDirection.INBOUND, "+14155550199", "1001", sip_call_id="real@pbx"), EventSource.API
        )
        await store.apply(s, real_call, EventType.ENDED, EventSource.API)
        s.add(CallRecording(call_id=real_call.id, status=RecordingStatus.PENDING))
        real_client_id, real_call_id = real_client.id, real_call.id

    summary = await seed_calls(db, store, 25, random.Random(3), NOW)
    # A real call from a seeded client's number is matched to that client; it must survive the cleanup.
    async with db.write() as s:
        matched = await store.create(s, NewCall(CallDirection.INBOUND, seeded_client_number, "1002"), EventSource.API)
        matched_id = matched.id
        assert matched.client_id is not None

    removed = await cleanup_seeded(db)
    assert (removed.calls, removed.events, removed.recordings) == (25, summary.events, summary.recordings)
    assert (removed.clients, removed.sip_configurations) == (len(CLIENTS), len(SIP_CONFIGS))

    calls = {c.id: c for c in await all_rows(db, CallLog)}
    assert set(calls) == {real_call_id, matched_id}
    assert calls[real_call_id].client_id == real_client_id
    assert calls[matched_id].client_id is None
    assert [c.id for c in await all_rows(db, Client)] == [real_client_id]
    assert [n.number for n in await all_rows(db, ClientPhoneNumber)] == ["+14155550199"]
    assert [t.name for t in await all_rows(db, SipConfiguration)] == ["office-pbx"]
    assert [(r.call_id, r.seeded) for r in await all_rows(db, CallRecording)] == [(real_call_id, False)]
    events = await all_rows(db, CallEvent)
    assert sorted((e.call_id == real_call_id, e.event_type.value) for e in events) == [
        (False, "initiated"),
        (True, "ended"),
        (True, "initiated"),
    ]
    # Nothing left to remove.
    again = await cleanup_seeded(db)
    assert (again.calls, again.events, again.recordings, again.clients, again.sip_configurations) == (0, 0, 0, 0, 0)


async def test_calls_take_turns_at_today_this_week_and_this_month(db: Database) -> None:
    zone = ZoneInfo("America/New_York")
    await seed_calls(db, CallStore(), 10, random.Random(5), NOW, zone)
    starts = [c.started_at for c in await all_rows(db, CallLog)]
    for period in Period:
        since = period_start(period, NOW, zone)
        assert sum(since <= start <= NOW for start in starts) >= 3, period
    assert min(starts) >= NOW - timedelta(days=31)


@pytest.mark.usefixtures("restore_logging")
def test_calld_seed_prints_one_summary_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env = {"CALLD_DATABASE_URL": f"sqlite:///{tmp_path / 'seed.db'}", "CALLD_LOG_FORMAT": "json"}
    assert main(["seed", "--count", "12"], env) == 0
    out, err = capsys.readouterr()
    assert out.startswith("calld: seeded 12 calls") and len(out.splitlines()) == 1
    assert [line for line in err.splitlines() if line] == [
        f"calld: configuration built-in defaults; database sqlite:///{tmp_path / 'seed.db'}"
    ]


# A new user seeds on any day: the 2nd of a month just after midnight (the case that showed no
# calls for week and month), a Monday morning, a Monday minutes after midnight, the 1st.
@pytest.mark.parametrize(
    "local_now",
    [
        datetime(2026, 12, 2, 0, 20),
        datetime(2026, 12, 2, 14, 0),
        datetime(2026, 11, 30, 9, 15),
        datetime(2026, 11, 30, 0, 5),
        datetime(2027, 2, 1, 0, 45),
    ],
    ids=["2nd-0020", "2nd-1400", "monday-0915", "monday-0005", "1st-0045"],
)
async def test_every_period_shows_seeded_calls_whatever_the_day(db: Database, local_now: datetime) -> None:
    from calld.storage.call_queries import call_statistics

    zone = ZoneInfo("Europe/Paris")
    now = local_now.replace(tzinfo=zone).astimezone(UTC)
    await seed_calls(db, CallStore(), 10, random.Random(11), now, zone)
    calls = await all_rows(db, CallLog)
    assert all(c.ended_at is not None and c.ended_at <= now for c in calls)
    for period in Period:
        async with db.read() as session:
            stats = await session.run_sync(
                lambda s, p=period: call_statistics(s.connection(), period_start(p, now, zone), now)
            )
        assert stats.total_calls >= 2, (period, stats)

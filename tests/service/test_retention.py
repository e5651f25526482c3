"""Retention on both databases, over calls of known ages: what goes, what is pseudonymised, what
stays; a dry run says the same and changes nothing; statistics over purged days answer as before;
the daemon runs it with a log line and metrics; ``calld purge --dry-run`` says what would go."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from calld.cli.main import main
from calld.config import RecordingsConfig, RetentionConfig
from calld.domain.call import NewCall
from calld.domain.delivery import DeliveryStatus
from calld.domain.privacy import is_pseudonym, pseudonym
from calld.domain.vocabulary import CallDirection, EventSource, EventType, RecordingStatus
from calld.service.recording_files import RecordingFiles
from calld.service.retention import Retention, RetentionReport
from calld.storage.call_queries import call_statistics
from calld.storage.calls import CallStore
from calld.storage.database import Database
from calld.storage.models import (
    CallEvent,
    CallLog,
    CallParticipant,
    CallRecording,
    WebhookDelivery,
    WebhookSubscription,
)
from tests.support import (
    LogCapture,
    SettableClock,
    api_session,
    metric_sample,
    plain_url,
    rollup_rows,
    running_daemon,
)

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
KEY = b"a key of sixteen+ characters"
SETTINGS = RetentionConfig(
    calls_days=90,
    recordings_days=30,
    webhook_deliveries_days=7,
    pseudonymise_days=60,
    pseudonym_key=KEY.decode(),
    batch_size=2,  # several batches per kind
)


async def _call(db: Database, clock: SettableClock, days_ago: float, caller: str, *, ended: bool = True) -> uuid.UUID:
    """An answered call (ended after 30 s) started ``days_ago``, transferred to +4930123456 in its metadata."""
    store = CallStore(clock=clock)
    clock.now = NOW - timedelta(days=days_ago)
    async with db.write() as s:
        call = await store.create(s, NewCall(CallDirection.INBOUND, caller, "1001"), EventSource.API)
        await store.apply(s, call, EventType.ANSWERED, EventSource.API, metadata={"from": caller, "n": [caller, 1]})
    if ended:
        clock.advance(30)
        async with db.write() as s:
            locked = await store.get_for_update(s, call.id)
            assert locked is not None
            await store.apply(s, locked, EventType.ENDED, EventSource.API)
    return call.id


async def _recording(db: Database, call_id: uuid.UUID, path: str) -> None:
    async with db.write() as s:
        s.add(CallRecording(call_id=call_id, status=RecordingStatus.COMPLETED, local_path=path, format="wav"))


async def _deliveries(db: Database, call_id: uuid.UUID) -> None:
    async with db.write() as s:
        sub = WebhookSubscription(url="https://hooks.example.com/", secret="s" * 32)
        s.add(sub)
        await s.flush()
        for days, status in (
            (10, DeliveryStatus.DELIVERED),
            (9, DeliveryStatus.DEAD),
            (8, DeliveryStatus.PENDING),
            (1, DeliveryStatus.DELIVERED),
        ):
            at = NOW - timedelta(days=days)
            s.add(
                WebhookDelivery(
                    subscription_id=sub.id,
                    call_id=call_id,
                    event_id=1,
                    event_type="ended",
                    payload={},
                    status=status,
                    next_attempt_at=at,
                    created_at=at,
                )
            )


@pytest.fixture
def rec_dir(tmp_path: Path) -> Path:
    path = tmp_path / "recordings"
    path.mkdir()
    return path


async def _calls(db: Database) -> dict[uuid.UUID, CallLog]:
    async with db.read() as s:
        return {c.id: c for c in (await s.execute(sa.select(CallLog))).scalars()}


async def _state(db: Database) -> tuple[object, ...]:
    async with db.read() as s:
        calls = sorted(
            (str(c.id), c.caller_number, c.pseudonymised_at) for c in (await s.execute(sa.select(CallLog))).scalars()
        )
        recs = sorted((str(r.id), r.status.value) for r in (await s.execute(sa.select(CallRecording))).scalars())
        dels = (await s.execute(sa.select(sa.func.count()).select_from(WebhookDelivery))).scalar_one()
    return calls, recs, dels


async def test_retention_over_calls_of_known_ages(db: Database, clock: SettableClock, rec_dir: Path) -> None:
    ages = {"gone1": 100, "gone2": 95, "gone3": 91, "anon1": 70, "anon2": 65, "rec": 40, "fresh": 10}
    callers = {
        "gone1": "+14155550101",
        "gone2": "+14155550101",
        "gone3": "+14155550102",
        "anon1": "+14155550103",
        "anon2": "+14155550103",
        "rec": "+14155550104",
        "fresh": "+14155550105",
    }
    ids = {name: await _call(db, clock, days, callers[name]) for name, days in ages.items()}
    open_old = await _call(db, clock, 120, "+14155550106", ended=False)  # never ended: kept
    files = {name: rec_dir / f"{name}.wav" for name in ("gone1", "anon1", "rec", "fresh")}
    for name, path in files.items():
        path.write_bytes(b"RIFF....WAVE")
        await _recording(db, ids[name], str(path))
    await _deliveries(db, ids["fresh"])
    clock.now = NOW
    stats_range = (NOW - timedelta(days=200), NOW)
    async with db.engine.connect() as conn:
        stats_before = await conn.run_sync(lambda c: call_statistics(c, *stats_range))
    rollup_before = await rollup_rows(db)
    groups_before = await _report_rollup(db)

    retention = Retention(db, RecordingFiles(db, (str(rec_dir),)), SETTINGS, clock, KEY)
    before = await _state(db)
    dry = await retention.run(dry_run=True)
    assert dry == RetentionReport(
        dry_run=True,
        recordings=3,
        calls=3,
        webhook_deliveries=2,
        pseudonymised=5,  # 60+ days: anon* and gone*
    )
    assert await _state(db) == before and all(p.exists() for p in files.values())

    done = await retention.run()
    assert done == RetentionReport(
        dry_run=False, recordings=3, files_removed=3, calls=3, webhook_deliveries=2, pseudonymised=2
    )
    calls = await _calls(db)
    assert set(calls) == {ids["anon1"], ids["anon2"], ids["rec"], ids["fresh"], open_old}
    assert [p.exists() for p in files.values()] == [False, False, False, True]
    # Pseudonyms: the same number is the same token, the token is the keyed hash.
    token = pseudonym(KEY, "+14155550103")
    assert is_pseudonym(token)
    assert calls[ids["anon1"]].caller_number == calls[ids["anon2"]].caller_number == token
    assert calls[ids["anon1"]].recipient_number == "1001"  # the PBX's extension, not a person's number
    assert calls[ids["anon1"]].pseudonymised_at == NOW
    assert calls[ids["rec"]].caller_number == "+14155550104" and calls[ids["rec"]].pseudonymised_at is None
    assert calls[open_old].caller_number == "+14155550106"
    async with db.read() as s:
        metas = [
            e.meta
            for e in (await s.execute(sa.select(CallEvent).where(CallEvent.call_id == ids["anon1"]))).scalars()
            if e.event_type is EventType.ANSWERED
        ]
        recordings = {r.call_id: r for r in (await s.execute(sa.select(CallRecording))).scalars()}
        deliveries = sorted(d.status.value for d in (await s.execute(sa.select(WebhookDelivery))).scalars())
    assert metas == [{"from": token, "n": [token, 1]}]
    assert recordings[ids["anon1"]].status is RecordingStatus.DELETED
    assert recordings[ids["fresh"]].status is RecordingStatus.COMPLETED
    assert deliveries == ["delivered", "pending"]  # a pending one is still being tried

    # Statistics survive: the rollup kept the purged calls' counts.
    async with db.engine.connect() as conn:
        assert await conn.run_sync(lambda c: call_statistics(c, *stats_range)) == stats_before
    assert await rollup_rows(db) == rollup_before
    # The statistics reports' rollup keeps the purged calls too (0018), and extensions are kept, so even
    # the per-extension grouping of the pseudonymised calls stays where it was.
    assert await _report_rollup(db) == groups_before
    assert stats_before.total_calls == 8 and stats_before.answered_calls == 8

    # Nothing more is due: a second run changes nothing.
    assert await retention.run() == RetentionReport(dry_run=False)


async def test_the_daemon_runs_retention_and_counts_it(
    db: Database, clock: SettableClock, tmp_path: Path, log_capture: LogCapture
) -> None:
    old = await _call(db, clock, 400, "+14155550101")
    settings = RetentionConfig(calls_days=365, interval_seconds=3600)
    async with running_daemon(db, retention=settings, recordings=RecordingsConfig(directories=(str(tmp_path),))) as d:
        for _ in range(200):
            if d.metrics.retention_runs.labels("ok")._value.get():
                break
            await asyncio.sleep(0.02)
        text = d.metrics.render().decode()
    assert metric_sample(text, "calld_retention_runs_total", outcome="ok") == 1
    assert metric_sample(text, "calld_retention_rows_total", kind="calls") == 1
    assert old not in await _calls(db)
    [line] = [line for line in log_capture.lines() if line.get("event") == "retention run"]
    assert line["calls"] == 1 and line["recordings"] == 0 and line["pseudonymised"] == 0 and "seconds" in line


def test_purge_dry_run_says_what_would_go(db: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "calld.toml"
    config.write_text(
        f'[database]\nurl = "{plain_url(db)}"\n\n[retention]\ncalls_days = 90\nwebhook_deliveries_days = 7\n'
        f'pseudonymise_days = 30\npseudonym_key_file = "{tmp_path / "key"}"\n'
    )
    (tmp_path / "key").write_text("a key of sixteen+ characters\n")
    assert main(["purge", "--dry-run", "--config", str(config)], {}) == 0
    out = capsys.readouterr().out
    assert out.startswith("calld: would purge: 0 recordings of calls older than 90 days; 0 ended calls older than 90")
    assert "numbers of 0 calls older than 30 days" in out
    (tmp_path / "key").write_text("short\n")
    assert main(["purge", "--config", str(config)], {}) == 2
    assert "pseudonym_key_file" in capsys.readouterr().err


async def _report_rollup(db: Database) -> list[tuple[object, ...]]:
    async with db.engine.connect() as conn:
        rows = await conn.execute(sa.text("SELECT * FROM call_stats_groups WHERE total_calls <> 0 ORDER BY 1, 2, 3"))
        return [tuple(row) for row in rows]


async def test_live_clients_hear_of_each_purged_call(db: Database, clock: SettableClock, tmp_path: Path) -> None:
    settings = RetentionConfig(calls_days=365, interval_seconds=3600, batch_size=1)
    async with running_daemon(db, retention=settings, recordings=RecordingsConfig(directories=(str(tmp_path),))) as d:
        for _ in range(200):  # the run at start is over (it found nothing)
            if d.metrics.retention_runs.labels("ok")._value.get():
                break
            await asyncio.sleep(0.02)
        old = [await _call(db, clock, 400, caller) for caller in ("+14155550101", "+14155550102")]
        kept = await _call(db, clock, 10, "+14155550103")
        async with api_session(d) as http:
            ws = await http.ws_connect("/api/ws")
            assert (await ws.receive_json(timeout=2))["type"] == "ready"
            assert (await d.retention.run()).calls == 2  # the next scheduled run, now
            heard = [await ws.receive_json(timeout=2) for _ in old]
            await ws.close()
    assert sorted((m["type"], m["call"]["id"]) for m in heard) == sorted(("call.deleted", str(i)) for i in old)
    assert set(await _calls(db)) == {kept}


async def test_every_personal_value_of_a_call_is_pseudonymised_but_extensions(
    db: Database, clock: SettableClock
) -> None:
    """The numbers as presented, the parties' numbers and caller ID names, who answered, and those values
    in the events' metadata (the participants snapshot) become tokens; the PBX's extensions stay."""
    call_id = await _call(db, clock, 100, "+14155550111")
    async with db.write() as s:
        call = await s.get(CallLog, call_id)
        assert call is not None
        call.caller_number_raw, call.answered_by = "(415) 555-0111", "+14155550199"
        s.add_all(
            [
                CallParticipant(call_id=call_id, leg="a", role="caller", number="+14155550111", name="Alice Smith"),
                CallParticipant(call_id=call_id, leg="b", role="callee", number="1001", name="1001"),
                CallParticipant(call_id=call_id, leg="c", role="callee", number="+14155550199", name="Bob Mobile"),
            ]
        )
        s.add(
            CallEvent(
                call_id=call_id,
                event_type=EventType.QUALITY_CHANGE,
                timestamp=NOW - timedelta(days=100),
                source=EventSource.SWITCH,
                meta={"participants": [{"number": "+14155550111", "name": "Alice Smith"}, {"number": "1001"}]},
            )
        )
    settings = RetentionConfig(pseudonymise_days=60, pseudonym_key=KEY.decode())
    clock.now = NOW
    assert (await Retention(db, RecordingFiles(db, ()), settings, clock, KEY).run()).pseudonymised == 1

    def token(value: str) -> str:
        return pseudonym(KEY, value)

    async with db.read() as s:
        call = await s.get(CallLog, call_id)
        assert call is not None
        parties = {
            p.leg: (p.number, p.name)
            for p in (await s.execute(sa.select(CallParticipant).where(CallParticipant.call_id == call_id))).scalars()
        }
        metas = [
            e.meta
            for e in (await s.execute(sa.select(CallEvent).where(CallEvent.call_id == call_id))).scalars()
            if e.event_type is EventType.QUALITY_CHANGE
        ]
    assert (call.caller_number, call.caller_number_raw, call.answered_by, call.recipient_number) == (
        token("+14155550111"),
        token("(415) 555-0111"),
        token("+14155550199"),
        "1001",
    )
    assert parties == {
        "a": (token("+14155550111"), token("Alice Smith")),
        "b": ("1001", "1001"),
        "c": (token("+14155550199"), token("Bob Mobile")),
    }
    alice = {"number": token("+14155550111"), "name": token("Alice Smith")}
    assert metas == [{"participants": [alice, {"number": "1001"}]}]

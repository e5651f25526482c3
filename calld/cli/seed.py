"""Realistic test data: clients, SIP trunks and calls of the last 30 days, and their removal.

Every call is built by applying events through ``CallStore`` with a moving timestamp, so statuses,
ring/hold/talk durations and the event history are derived exactly as for real calls. Everything
created is marked ``seeded`` (SIP configurations, which have no such column, are named ``seed-…``),
so ``cleanup_seeded`` removes only seeded data; the events' source is ``seed``, never ``switch``.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from calld.domain.call import NewCall
from calld.domain.call_filter import Period, period_start
from calld.domain.recording import implied_events
from calld.domain.vocabulary import (
    CallDirection,
    CallStatus,
    CallType,
    EventSource,
    EventType,
    RecordingStatus,
    SipTransport,
)
from calld.storage.call_queries import recordings_of
from calld.storage.calls import CallStore
from calld.storage.database import Database
from calld.storage.models import CallEvent, CallLog, CallRecording, Client, ClientPhoneNumber, SipConfiguration

_UTC = ZoneInfo("UTC")
SIP_CONFIG_PREFIX = "seed-"
SEED_DAYS = 30
# Calls per transaction: few enough to keep a transaction short, enough to avoid a commit per call.
BATCH_SIZE = 50
RECORDING_ROOT = "/var/spool/calld/recordings"

# US 555-01xx numbers are reserved for fiction yet valid; so are Ofcom's 020 7946 0xxx.
CLIENTS: Sequence[tuple[str, str, str, tuple[str, ...]]] = (
    ("Maria Gonzalez", "maria.gonzalez@northwind.example", "Northwind Traders", ("+14155550101", "+14155550102")),
    ("James Chen", "j.chen@contoso.example", "Contoso Ltd", ("+12125550143",)),
    ("Aisha Okafor", "aisha@fabrikam.example", "Fabrikam Inc", ("+13125550178", "+13125550179")),
    ("Tom Whitfield", "tom.whitfield@adventure-works.example", "Adventure Works", ("+442079460123",)),
    ("Priya Raman", "priya.raman@tailspin.example", "Tailspin Toys", ("+16175550123",)),
)
STRANGER_AREAS = ("202", "206", "305", "415", "512", "646", "718", "773")
EXTENSIONS = tuple(str(n) for n in range(1001, 1013))
MAIN_NUMBER = "+14155550100"
SIP_CONFIGS: Sequence[dict[str, Any]] = (
    {
        "name": "seed-primary-trunk",
        "server": "sip.primary-carrier.example",
        "port": 5061,
        "transport": SipTransport.TLS,
        "username": "acct-48213",
        "stun_servers": ["stun:stun.primary-carrier.example:3478"],
    },
    {
        "name": "seed-backup-trunk",
        "server": "sip.backup-carrier.example",
        "port": 5060,
        "transport": SipTransport.UDP,
        "username": "acct-90017",
        "active": False,
    },
)

# (scenario, weight) per direction; "answered" calls get the mid-call events.
SCENARIOS: dict[CallDirection, Sequence[tuple[str, int]]] = {
    CallDirection.INBOUND: (
        ("answered", 60),
        ("missed", 14),
        ("busy", 5),
        ("no_answer", 8),
        ("cancelled", 8),
        ("failed", 5),
    ),
    CallDirection.OUTBOUND: (("answered", 60), ("busy", 10), ("no_answer", 14), ("cancelled", 9), ("failed", 7)),
}
# Unanswered outcomes that take under QUICK_ROOM (busy: < 2.5 s, failed: < 9.5 s, cancelled: < 17 s),
# for calls that must end before a window only minutes old closes at "now".
QUICK_SCENARIOS: Sequence[tuple[str, int]] = (("busy", 1), ("failed", 1), ("cancelled", 2))
QUICK_ROOM = timedelta(seconds=30)
FAILURES = (
    {"sip_code": 503, "reason": "Service Unavailable"},
    {"sip_code": 408, "reason": "Request Timeout"},
    {"sip_code": 480, "reason": "Temporarily Unavailable"},
    {"sip_code": 404, "reason": "Not Found"},
)
# Recording formats and their bytes per second of audio.
FORMATS = (("wav", 16_000), ("mp3", 4_000), ("ogg", 3_000), ("opus", 2_000))
TRANSCRIPTS = (
    "Hi, I'm calling about the invoice we received last week. The amount doesn't match the quote.",
    "Good morning, I'd like to reschedule the installation to Thursday afternoon if possible.",
    "Thanks for getting back to me. Yes, please go ahead with the renewal for another year.",
    "Hello, our phones dropped calls twice this morning; can you check the trunk on your side?",
    "I wanted to confirm the delivery address before you ship the order.",
)
NOTES = ("", "", "", "Follow up by email.", "Asked for a callback next week.", "Escalated to billing.")


@dataclass(slots=True)
class SeedSummary:
    """What ``seed_calls`` created."""

    calls: int = 0
    events: int = 0
    recordings: int = 0
    clients: int = 0
    sip_configurations: int = 0
    statuses: dict[str, int] = field(default_factory=dict)

    def __str__(self) -> str:
        by_status = ", ".join(f"{n} {status}" for status, n in sorted(self.statuses.items()))
        return (
            f"{self.calls} calls ({by_status}) with {self.events} events and {self.recordings} recordings; "
            f"{self.clients} new clients, {self.sip_configurations} new SIP configurations"
        )


@dataclass(frozen=True, slots=True)
class CleanupSummary:
    """What ``cleanup_seeded`` removed."""

    calls: int
    events: int
    recordings: int
    clients: int
    sip_configurations: int

    def __str__(self) -> str:
        return (
            f"{self.calls} seeded calls with {self.events} events and {self.recordings} recordings, "
            f"{self.clients} clients, {self.sip_configurations} SIP configurations"
        )


@dataclass(frozen=True, slots=True)
class Fixtures:
    """The parties and trunks seeded calls are made between."""

    client_numbers: tuple[str, ...]
    trunk_ids: tuple[uuid.UUID, ...]


async def seed_calls(
    db: Database, store: CallStore, count: int, rng: random.Random, now: datetime, zone: ZoneInfo = _UTC
) -> SeedSummary:
    """Create ``count`` realistic calls of the 30 days before ``now`` (plus clients and trunks they use).

    Calls take turns at starting today, this week, this month and in the last 30 days (periods as
    the statistics count them in ``zone``), so each statistics period has some from the first ten.
    """
    if count < 0:
        raise ValueError("count must be ≥ 0")
    summary = SeedSummary()
    async with db.write() as session:
        fixtures = await _ensure_fixtures(session, summary)
    windows = _windows(now, zone)
    made = 0
    while made < count:
        async with db.write() as session:
            for _ in range(min(BATCH_SIZE, count - made)):
                start, quick = _start_time(rng, windows[made % len(windows)], now)
                await _seed_call(session, store, rng, start, fixtures, summary, quick=quick)
                made += 1
    return summary


def _windows(now: datetime, zone: ZoneInfo) -> tuple[datetime, ...]:
    """Where today, this week and this month start in ``zone`` (as the statistics count), and 30 days ago."""
    return (*(period_start(period, now, zone) for period in Period), now - timedelta(days=SEED_DAYS))


async def _ensure_fixtures(session: AsyncSession, summary: SeedSummary) -> Fixtures:
    """Seeded clients and trunks, reusing those a previous run (or a real row) already holds."""
    numbers = [n for *_, nums in CLIENTS for n in nums]
    taken = set(
        (await session.execute(sa.select(ClientPhoneNumber.number).where(ClientPhoneNumber.number.in_(numbers))))
        .scalars()
        .all()
    )
    for name, email, company, nums in CLIENTS:
        if taken.intersection(nums):
            continue  # calls from these numbers will be matched to whoever owns them
        phones = [ClientPhoneNumber(number=n, position=i) for i, n in enumerate(nums)]
        session.add(Client(name=name, email=email, company=company, phone_numbers=phones, seeded=True))
        summary.clients += 1
    names = [c["name"] for c in SIP_CONFIGS]
    existing = {
        name: id_
        for name, id_ in (
            await session.execute(
                sa.select(SipConfiguration.name, SipConfiguration.id).where(SipConfiguration.name.in_(names))
            )
        ).all()
    }
    trunk_ids = []
    for values in SIP_CONFIGS:
        trunk_id = existing.get(values["name"])
        if trunk_id is None:
            trunk = SipConfiguration(id=uuid.uuid4(), secret="seed-secret", **values)
            session.add(trunk)
            trunk_id = trunk.id
            summary.sip_configurations += 1
        trunk_ids.append(trunk_id)
    await session.flush()
    return Fixtures(client_numbers=tuple(numbers), trunk_ids=tuple(trunk_ids))


def _start_time(rng: random.Random, earliest: datetime, now: datetime) -> tuple[datetime, bool]:
    """A start after ``earliest`` such that the call has ended by ``now``, and whether the call must
    be a quick one (under ``QUICK_ROOM``) to manage that.

    At least an hour before ``now`` when the window allows it. A window begun less than an hour ago
    (today, seeded at 00:20; this week on Monday just after midnight) still gets calls, quick ones
    that end by ``now``; only a window opened less than ``QUICK_ROOM`` ago gets none (nothing that
    started in it could have ended yet).
    """
    latest = now - timedelta(hours=1)
    if earliest < latest:
        return _between(rng, earliest, latest), False
    latest = now - QUICK_ROOM
    if earliest >= latest:
        return (now - timedelta(hours=1)).replace(microsecond=0), False
    return _between(rng, earliest, latest), True


def _between(rng: random.Random, earliest: datetime, latest: datetime) -> datetime:
    """A whole second in [earliest, latest] (rounded up: a period's first call stays inside it)."""
    start = earliest + timedelta(seconds=rng.uniform(0, (latest - earliest).total_seconds()))
    whole = start.replace(microsecond=0)
    return whole if whole >= earliest else whole + timedelta(seconds=1)


def _far_number(rng: random.Random, fixtures: Fixtures) -> str:
    if rng.random() < 0.65:
        return rng.choice(fixtures.client_numbers)
    if rng.random() < 0.15:
        return f"+442079460{rng.randrange(1000):03d}"
    return f"+1{rng.choice(STRANGER_AREAS)}5550{rng.randrange(100, 200)}"


def _pick(rng: random.Random, weighted: Sequence[tuple[str, int]]) -> str:
    return rng.choices([name for name, _ in weighted], weights=[weight for _, weight in weighted])[0]


class _CallBuilder:
    """Applies one call's events through the store, moving a timestamp forward between them."""

    def __init__(self, session: AsyncSession, store: CallStore, call: CallLog, start: datetime) -> None:
        self.session = session
        self.store = store
        self.call = call
        self.ts = start
        self.events = 1  # the initiated event

    async def after(self, seconds: float, event: EventType, metadata: dict[str, Any] | None = None) -> datetime:
        self.ts += timedelta(seconds=round(seconds, 3))
        # Ending a recording call stores its recording_stopped too (calld.domain.recording.implied_events).
        self.events += 1 + len(implied_events(CallStatus(self.call.status), event))
        await self.store.apply(self.session, self.call, event, EventSource.SEED, metadata=metadata, timestamp=self.ts)
        return self.ts


async def _seed_call(
    session: AsyncSession,
    store: CallStore,
    rng: random.Random,
    start: datetime,
    fixtures: Fixtures,
    summary: SeedSummary,
    *,
    quick: bool = False,
) -> None:
    direction = rng.choice((CallDirection.INBOUND, CallDirection.INBOUND, CallDirection.OUTBOUND))
    far = _far_number(rng, fixtures)
    near = rng.choice((*EXTENSIONS, MAIN_NUMBER)) if direction is CallDirection.INBOUND else rng.choice(EXTENSIONS)
    caller, recipient = (far, near) if direction is CallDirection.INBOUND else (near, far)
    new = NewCall(
        direction=direction,
        caller_number=caller,
        recipient_number=recipient,
        call_type=rng.choices((CallType.VOICE, CallType.VIDEO, CallType.CONFERENCE), weights=(92, 5, 3))[0],
        sip_call_id=f"{rng.getrandbits(128):032x}@pbx.seed.example",
        sip_configuration_id=rng.choice(fixtures.trunk_ids),
        notes=rng.choice(NOTES),
        seeded=True,
    )
    call = await store.create(session, new, EventSource.SEED, started_at=start)
    builder = _CallBuilder(session, store, call, start)
    scenario = _pick(rng, QUICK_SCENARIOS if quick else SCENARIOS[direction])
    if scenario == "answered":
        await _answered(builder, rng, summary)
    else:
        await _unanswered(builder, rng, scenario)
    summary.calls += 1
    summary.events += builder.events
    status = CallStatus(call.status).value
    summary.statuses[status] = summary.statuses.get(status, 0) + 1


async def _unanswered(b: _CallBuilder, rng: random.Random, scenario: str) -> None:
    if scenario == "failed":
        if rng.random() < 0.5:
            await b.after(rng.uniform(0.2, 1.5), EventType.RINGING)
        await b.after(rng.uniform(0.5, 8), EventType.FAILED, dict(rng.choice(FAILURES)))
        return
    if scenario == "busy":
        await b.after(rng.uniform(0.3, 2.5), EventType.ENDED, {"outcome": "busy"})
        return
    await b.after(rng.uniform(0.2, 2.0), EventType.RINGING)
    ring = {"missed": (12, 40), "no_answer": (30, 60), "cancelled": (3, 15)}[scenario]
    await b.after(rng.uniform(*ring), EventType.ENDED, {"outcome": scenario})


async def _answered(b: _CallBuilder, rng: random.Random, summary: SeedSummary) -> None:
    await b.after(rng.uniform(0.2, 2.0), EventType.RINGING)
    await b.after(rng.uniform(2, 25), EventType.ANSWERED)
    if rng.random() < 0.25:  # an IVR menu choice
        await b.after(rng.uniform(2, 10), EventType.DTMF, {"digits": rng.choice(("1", "2", "3", "0", "#"))})
    recorded_from = None
    if rng.random() < 0.35:
        recorded_from = await b.after(rng.uniform(1, 20), EventType.RECORDING_STARTED)
    if rng.random() < 0.2:
        await b.after(rng.uniform(20, 240), EventType.HOLD)
        await b.after(rng.uniform(10, 180), EventType.UNHOLD)
    if rng.random() < 0.4:
        score = round(rng.uniform(2.6, 4.6), 1)
        await b.after(
            rng.uniform(5, 120), EventType.QUALITY_CHANGE, {"score": score, "jitter_ms": rng.randrange(2, 40)}
        )
    if rng.random() < 0.1:
        await b.after(rng.uniform(30, 300), EventType.TRANSFER_INITIATED, {"transfer_to": rng.choice(EXTENSIONS)})
        if rng.random() < 0.7:
            await b.after(rng.uniform(5, 25), EventType.TRANSFER_COMPLETED)
    recorded_until = None
    if recorded_from is not None and rng.random() < 0.3 and b.call.status is CallStatus.RECORDING:
        recorded_until = await b.after(rng.uniform(20, 300), EventType.RECORDING_STOPPED)
    ended = await b.after(rng.uniform(20, 900), EventType.ENDED)
    if recorded_from is not None:
        await _add_recording(b, rng, (recorded_until or ended) - recorded_from)
        summary.recordings += 1


async def _add_recording(b: _CallBuilder, rng: random.Random, length: timedelta) -> None:
    fmt, bytes_per_second = rng.choice(FORMATS)
    seconds = round(length.total_seconds(), 3)
    day = b.call.started_at
    transcribed = rng.random() < 0.5
    # The call store opened the recording when recording_started was applied; finish it as a
    # recording system would.
    recording = (await recordings_of(b.session, b.call.id))[-1]
    recording.status = RecordingStatus.COMPLETED
    recording.local_path = f"{RECORDING_ROOT}/{day:%Y/%m/%d}/{b.call.id}.{fmt}"
    recording.file_size = int(seconds * bytes_per_second) + 44
    recording.duration_seconds = seconds
    recording.format = fmt
    recording.transcript = rng.choice(TRANSCRIPTS) if transcribed else None
    recording.transcript_confidence = round(rng.uniform(0.72, 0.97), 2) if transcribed else None


async def cleanup_seeded(db: Database) -> CleanupSummary:
    """Delete every seeded call (with its events and recordings), client and ``seed-`` trunk."""
    async with db.write() as session:
        seeded_calls = sa.select(CallLog.id).where(CallLog.seeded.is_(True))
        events = (
            await session.execute(
                sa.select(sa.func.count()).select_from(CallEvent).where(CallEvent.call_id.in_(seeded_calls))
            )
        ).scalar_one()
        recordings = await _delete(session, sa.delete(CallRecording).where(CallRecording.seeded.is_(True)))
        # Events (and any other recordings) of seeded calls go with them by ON DELETE CASCADE.
        calls = await _delete(session, sa.delete(CallLog).where(CallLog.seeded.is_(True)))
        clients = await _delete(session, sa.delete(Client).where(Client.seeded.is_(True)))
        trunks = await _delete(
            session,
            sa.delete(SipConfiguration).where(SipConfiguration.name.startswith(SIP_CONFIG_PREFIX, autoescape=True)),
        )
    return CleanupSummary(
        calls=calls, events=int(events), recordings=recordings, clients=clients, sip_configurations=trunks
    )


async def _delete(session: AsyncSession, stmt: sa.Delete) -> int:
    result = await session.execute(stmt.execution_options(synchronize_session=False))
    return int(getattr(result, "rowcount", 0))

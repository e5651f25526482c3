"""Helpers shared by tests: a settable clock, database set-up for SQLite and PostgreSQL, API tokens."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO
from urllib.request import Request, urlopen

import aiohttp
import asyncpg
import sqlalchemy as sa
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy.engine import make_url

from calld import signing
from calld.config import Config, DatabaseConfig, EgressConfig, ServerConfig, WebhooksConfig, WebhookSource
from calld.daemon import Daemon
from calld.domain.call import NewCall
from calld.domain.events import SwitchEvent
from calld.domain.scopes import Scope
from calld.domain.vocabulary import CallDirection, EventSource, EventType
from calld.providers.settings import PlivoSettings, ProvidersConfig, TelnyxSettings, TwilioSettings, VonageSettings
from calld.storage.calls import CallStore
from calld.storage.database import Database
from calld.storage.models import Base, CallEvent, CallLog, CallStatsBucket
from calld.storage.rollup import REBUILD_SQL
from calld.storage.sip_configurations import create_configuration
from calld.storage.tokens import IssuedToken, TokenStore, generate
from calld.storage.types import UTCDateTime

PG_URL = os.environ.get("CALLD_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/calld_test")


# Test receivers and responders listen on loopback, which the default egress policy refuses.
LOOPBACK_EGRESS = EgressConfig(allow_networks=("127.0.0.0/8", "::1/128"))

# The inbound webhook sources the test configuration knows, with their secrets.
WEBHOOK_SECRETS = {"sip": "sip-provider-test-secret-0123", "recording": "recording-system-test-secret-4567"}


# The SIP providers' test credentials; tests/providers/signing.py signs with them through the SDKs.
TWILIO_AUTH_TOKEN = "twilio-test-auth-token-5f3c2a"
VONAGE_SIGNATURE_SECRET = "vonage-test-signature-secret-8d1e-0c4f9a27"
PLIVO_AUTH_TOKEN = "plivo-test-auth-token-MjA5NTk2"
TELNYX_SEED = bytes(range(32))  # the Ed25519 private key's seed; the public key is configured
PUBLIC_BASE = "https://calld.example.com"  # what the providers were told calld's URL is (behind a proxy)


def telnyx_public_key(seed: bytes = TELNYX_SEED) -> str:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    raw = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def providers_config() -> ProvidersConfig:
    """All four providers configured with the test credentials."""
    return ProvidersConfig(
        twilio=TwilioSettings(TWILIO_AUTH_TOKEN, public_url=f"{PUBLIC_BASE}/api/webhooks/providers/twilio/"),
        telnyx=TelnyxSettings(telnyx_public_key()),
        vonage=VonageSettings(VONAGE_SIGNATURE_SECRET),
        plivo=PlivoSettings(PLIVO_AUTH_TOKEN, public_url=f"{PUBLIC_BASE}/api/webhooks/providers/plivo/"),
    )


def webhooks_config(**sources: Any) -> WebhooksConfig:
    """Both webhook sources configured with ``WEBHOOK_SECRETS`` and the four SIP providers with the
    test credentials (``sources`` replaces some)."""
    configured = {name: WebhookSource(secret=secret) for name, secret in WEBHOOK_SECRETS.items()}
    return WebhooksConfig(**{**configured, "providers": providers_config(), **sources})


def webhook_signer(clock: Callable[[], datetime]) -> aiohttp.ClientMiddlewareType:
    """A client middleware that signs requests to the webhook endpoints as their sources do, at ``clock()``."""

    async def sign(request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType) -> aiohttp.ClientResponse:
        for name, secret in WEBHOOK_SECRETS.items():
            if request.url.path == f"/api/webhooks/{name}/":
                body = await request.body.as_bytes()
                request.headers[signing.SIGNATURE_HEADER] = signing.sign(secret, body, clock())
        return await handler(request)

    return sign


class LogCapture:
    """calld's log lines (JSON) written to memory, for tests that check what is logged."""

    def __init__(self) -> None:
        self.stream = io.StringIO()

    def text(self) -> str:
        return self.stream.getvalue()

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text().splitlines() if line.startswith("{")]


class SettableClock:
    """A clock the test moves by hand, injected where calld takes a clock."""

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or datetime(2026, 11, 24, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


async def ensure_pg_database(url: str = PG_URL) -> None:
    """Create the PostgreSQL test database if it does not exist (CI starts from an empty server)."""
    parsed = make_url(url)
    admin = parsed.set(database="postgres").render_as_string(hide_password=False)
    try:
        conn = await asyncpg.connect(admin.replace("postgresql+asyncpg://", "postgresql://"))
    except (OSError, asyncpg.PostgresError) as exc:
        raise RuntimeError(
            f"PostgreSQL is required for the test suite and is not reachable at {admin}: {exc}. "
            "Start it (see .ci/run) or point CALLD_TEST_PG_URL at one."
        ) from exc
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", parsed.database)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{parsed.database}"')
    finally:
        await conn.close()


async def fresh_database(kind: str, tmp_path: Path, sqlite_template: Path | None = None) -> Database:
    """A migrated, empty database of ``kind`` ("sqlite" file or "postgres"). ``sqlite_template``: a
    migrated empty SQLite file (``migrated_sqlite``) to copy rather than migrate a new one."""
    if kind == "sqlite":
        path = tmp_path / "calld-test.db"
        if sqlite_template is not None:
            shutil.copyfile(sqlite_template, path)
        db = Database(f"sqlite:///{path}")
        if sqlite_template is None:
            await db.migrate()
        return db
    db = Database(PG_URL, pool_size=5)
    await db.migrate()
    await empty_pg(PG_URL)
    return db


# Kept by call_logs' triggers, some deferred to commit: emptied after call_logs' delete has committed.
_TRIGGER_KEPT = ("call_totals", "call_stats_buckets", "call_stats_groups", "call_stats_hours")


async def empty_pg(url: str) -> None:
    """Delete every row and restart every sequence, as TRUNCATE ... RESTART IDENTITY would: on the
    small tables tests leave, DELETE takes ~10 ms where TRUNCATE's new files take ~230 ms. On a
    connection of its own, closed after: the statistics its trigger writes (pg_stat_xact_*, which
    a test reads) stay out of the test's pooled connections."""
    tables = [t.name for t in reversed(Base.metadata.sorted_tables) if t.name not in _TRIGGER_KEPT]
    conn = await asyncpg.connect(make_url(url).set(drivername="postgresql").render_as_string(hide_password=False))
    try:
        # The lock waits, as TRUNCATE's does, for what a previous test's connections still have in
        # flight; each DELETE after it then sees their rows.
        every = ", ".join(t.name for t in Base.metadata.sorted_tables)
        await conn.execute(
            f"LOCK TABLE {every} IN ACCESS EXCLUSIVE MODE; " + "; ".join(f"DELETE FROM {table}" for table in tables)
        )
        await conn.execute(
            "; ".join(f"DELETE FROM {table}" for table in _TRIGGER_KEPT)
            + "; SELECT setval(format('%I.%I', schemaname, sequencename)::regclass, 1, false) "
            "FROM pg_sequences WHERE schemaname = current_schema()"
        )
    finally:
        await conn.close()


async def migrated_sqlite(path: Path) -> Path:
    """Migrate an empty SQLite file at ``path`` and close it (its WAL checkpointed), ready to copy."""
    db = Database(f"sqlite:///{path}")
    try:
        await db.migrate()
    finally:
        await db.close()
    return path


async def mint_token(
    db: Database,
    scope: Scope = Scope.ADMIN,
    name: str | None = None,
    issued: IssuedToken | None = None,
    sip_configuration_id: uuid.UUID | None = None,
) -> str:
    """Store a new API token in ``db`` (as ``calld token create`` does) and return it in plain text.
    A softphone token without ``sip_configuration_id`` is bound to a new SIP configuration of its own."""
    async with db.write() as session:
        if scope is Scope.SOFTPHONE and sip_configuration_id is None:
            line = {"name": f"line-{uuid.uuid4().hex[:8]}", "server": "pbx.example.com", "username": "1001"}
            sip_configuration_id = (await create_configuration(session, line)).id
        _, issued = await TokenStore().create(
            session,
            name or f"test-{scope}-{uuid.uuid4().hex[:8]}",
            scope,
            issued,
            sip_configuration_id=None if scope is not Scope.SOFTPHONE else sip_configuration_id,
        )
    return issued.plaintext


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def api_session(daemon: Daemon, scope: Scope = Scope.ADMIN) -> aiohttp.ClientSession:
    """An HTTP client for a running in-process ``Daemon``'s REST API (close it after use).

    Every test that talks to a live daemon over HTTP gets its client here, so what the API
    requires of every caller is set up in one place: the client sends a ``scope`` token, stored in
    the daemon's database just before its first request (this function is not async, so it
    cannot store it now).
    """
    issued = generate()
    stored = asyncio.Event()
    lock = asyncio.Lock()

    async def authorise(request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType) -> aiohttp.ClientResponse:
        async with lock:
            if not stored.is_set():
                await mint_token(daemon.db, scope, issued=issued)
                stored.set()
        request.headers["Authorization"] = f"Bearer {issued.plaintext}"
        return await handler(request)

    return aiohttp.ClientSession(base_url=f"http://127.0.0.1:{daemon.port}", middlewares=(authorise,))


def plain_url(db: Database) -> str:
    """``db``'s URL as a configuration names it (without the asyncio driver)."""
    return db.url.replace("+aiosqlite", "").replace("+asyncpg", "")


def daemon_config(db: Database, **sections: Any) -> Config:
    """A daemon configuration on ``db``, serving on a free loopback port, webhooks configured."""
    return Config(
        **{
            "server": ServerConfig(host="127.0.0.1", port=0),
            "database": DatabaseConfig(url=plain_url(db)),
            "webhooks": webhooks_config(),
            **sections,
        }
    )


@asynccontextmanager
async def running_daemon(db: Database, first_token_out: TextIO | None = None, **sections: Any) -> AsyncIterator[Daemon]:
    """A started in-process ``Daemon`` on ``db`` (``sections`` replace parts of its configuration)."""
    daemon = Daemon(daemon_config(db, **sections), first_token_out=first_token_out)
    await daemon.start()
    try:
        yield daemon
    finally:
        await daemon.stop()


def free_tcp_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def daemon_env(tmp_path: Path, port: int) -> dict[str, str]:
    env = {
        **os.environ,
        "CALLD_DATABASE_URL": f"sqlite:///{tmp_path / 'daemon.db'}",
        "CALLD_PORT": str(port),
        "CALLD_LOG_FORMAT": "auto",
    }
    env.pop("CALLD_CONFIG", None)
    return env


def create_token_via_cli(tmp_path: Path, port: int, scope: str = "admin") -> str:
    """A token made the way an operator makes one: ``calld migrate``, then ``calld token create``."""
    subprocess.run(
        [sys.executable, "-m", "calld.cli", "migrate"],
        env=daemon_env(tmp_path, port),
        capture_output=True,
        timeout=30,
        check=True,
        cwd=tmp_path,
    )
    result = subprocess.run(
        [sys.executable, "-m", "calld.cli", "token", "create", "--name", f"test-{scope}", "--scope", scope],
        env=daemon_env(tmp_path, port),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
        cwd=tmp_path,
    )
    return result.stdout.strip()


def post_json(port: int, path: str, body: dict[str, object], token: str) -> dict[str, object]:
    request = Request(
        f"http://127.0.0.1:{port}{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        method="POST",
    )
    with urlopen(request, timeout=5) as response:
        result: dict[str, object] = json.load(response)
        return result


def metric_sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text format (the labels given must all match)."""
    for line in text.splitlines():
        match = re.fullmatch(r"([a-z_]+)(?:\{(.*)\})? (\S+)", line)
        if match is None or match.group(1) != name:
            continue
        found = dict(re.findall(r'([a-z_]+)="([^"]*)"', match.group(2) or ""))
        if all(found.get(key) == value for key, value in labels.items()):
            return float(match.group(3))
    raise AssertionError(f"no sample {name} {labels}")


def keys_by_call(events: list[SwitchEvent]) -> dict[str, list[str]]:
    by_call: dict[str, list[str]] = {}
    for event in events:
        by_call.setdefault(event.call_ref, []).append(f"freeswitch:{event.key}")
    return by_call


async def stored_keys_by_call(db: Database) -> dict[str, list[str]]:
    async with db.read() as session:
        rows = await session.execute(
            sa.select(CallLog.switch_call_ref, CallEvent.dedup_key)
            .join(CallEvent, CallEvent.call_id == CallLog.id)
            .order_by(CallEvent.id)
        )
        by_call: dict[str, list[str]] = {}
        for ref, key in rows:
            by_call.setdefault(ref, []).append(key)
    return by_call


OUTCOMES = (
    (EventType.RINGING, EventType.ANSWERED, EventType.ENDED),
    (EventType.RINGING, EventType.ENDED),  # missed (inbound) / no answer (outbound)
    (EventType.RINGING, EventType.ANSWERED),  # still live
    (EventType.FAILED,),
    (),
)


async def insert_call_sql(db: Database, started_at: datetime | None = None, caller: str = "+14155550100") -> uuid.UUID:
    """An initiated inbound call stored in SQL with the columns every schema revision has (the models'
    inserts name today's columns, which a database migrated down to an old revision lacks)."""
    call_id = uuid.uuid4()
    now = datetime.now(UTC)
    async with db.write() as s:
        await s.execute(
            sa.text(
                "INSERT INTO call_logs (id, direction, call_type, status, caller_number, recipient_number, "
                "started_at, last_event_at, hold_seconds, recording, notes, seeded, created_at, updated_at) "
                "VALUES (:id, 'inbound', 'voice', 'initiated', :caller, '1001', :started, :started, 0, :no, "
                "'', :no, :now, :now)"
            ).bindparams(
                sa.bindparam("id", call_id, sa.Uuid()),
                sa.bindparam("started", started_at or now, UTCDateTime()),
                sa.bindparam("now", now, UTCDateTime()),
            ),
            {"no": False, "caller": caller},
        )
    return call_id


async def rollup_calls(db: Database, clock: SettableClock, count: int) -> list[CallLog]:
    """``count`` calls over two days, each taken through a random outcome, one transaction per step."""
    rnd = random.Random(5)
    store = CallStore(clock=clock)
    start = clock.now
    made = []
    for n in range(count):
        clock.now = start + timedelta(seconds=rnd.uniform(0, 2 * 86400))
        direction = CallDirection.INBOUND if n % 3 else CallDirection.OUTBOUND
        async with db.write() as s:
            call = await store.create(s, NewCall(direction, "+14155550100", "1001"), EventSource.API)
        for event in rnd.choice(OUTCOMES):
            clock.advance(rnd.uniform(0.5, 400))
            async with db.write() as s:
                locked = await store.get_for_update(s, call.id)
                assert locked is not None
                await store.apply(s, locked, event, EventSource.API)
        made.append(call)
    return made


async def rebuilt_rollup(db: Database) -> dict[int, tuple[object, ...]]:
    """What the rollup would hold if recomputed from the calls now (computed, then rolled back)."""
    async with db.engine.connect() as conn:
        trans = await conn.begin()
        await conn.execute(sa.delete(CallStatsBucket))
        await conn.execute(sa.text(REBUILD_SQL[db.dialect]))
        rows = (await conn.execute(sa.select(CallStatsBucket.__table__))).all()
        await trans.rollback()
    return {r[0]: (r[1], r[2], r[3], r[4], r[5], round(r[6], 6), r[7]) for r in rows}


async def rollup_rows(db: Database) -> dict[int, tuple[object, ...]]:
    async with db.read() as s:
        rows = (await s.execute(sa.select(CallStatsBucket))).scalars()
        return {
            r.bucket: (r.total_calls, r.answered_calls, r.missed_calls, r.inbound_calls, r.outbound_calls,
                       round(r.duration_sum, 6), r.duration_count)
            for r in rows
            if r.total_calls
        }  # fmt: skip


RECEIVER_SECRET = "receiver-shared-secret-0123456789"


async def call_json(http: aiohttp.ClientSession, method: str, path: str, status: int, **kwargs: Any) -> Any:
    async with http.request(method, path, **kwargs) as resp:
        body = await resp.json() if resp.content_type == "application/json" else None
        assert resp.status == status, body
        return body


async def subscribe(http: aiohttp.ClientSession, url: str, **extra: Any) -> dict[str, Any]:
    body = {"url": url, "secret": RECEIVER_SECRET, **extra}
    created: dict[str, Any] = await call_json(http, "POST", "/api/webhook-subscriptions/", 201, json=body)
    return created


SIP = "/api/webhooks/sip/"


async def deliver(api: AppClient, path: str, body: bytes, header: str | None) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if header is not None:
        headers[signing.SIGNATURE_HEADER] = header
    resp = await api.post(path, data=body, headers=headers)
    return resp.status, await resp.json()


def sip_body(clock: SettableClock, delivery_id: str = "d-1", event_type: str = "call_initiated") -> bytes:
    return json.dumps(
        {
            "event_type": event_type,
            "sip_call_id": "sig-test@provider",
            "caller_number": "+14155550100",
            "recipient_number": "1001",
            "timestamp": clock.now.isoformat(),
            "delivery_id": delivery_id,
        }
    ).encode()


async def stored(db: Database) -> tuple[int, int]:
    async with db.read() as s:
        calls = (await s.execute(sa.select(sa.func.count()).select_from(CallLog))).scalar_one()
        events = (await s.execute(sa.select(sa.func.count()).select_from(CallEvent))).scalar_one()
    return calls, events


AppClient = TestClient[web.Request, web.Application]

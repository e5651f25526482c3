"""Helpers shared by tests: a settable clock, database set-up for SQLite and PostgreSQL, API tokens."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import aiohttp
import asyncpg
from sqlalchemy.engine import make_url

from calld import signing
from calld.config import Config, DatabaseConfig, EgressConfig, ServerConfig, WebhooksConfig, WebhookSource
from calld.daemon import Daemon
from calld.domain.scopes import Scope
from calld.providers.settings import PlivoSettings, ProvidersConfig, TelnyxSettings, TwilioSettings, VonageSettings
from calld.storage.database import Database
from calld.storage.models import Base
from calld.storage.tokens import IssuedToken, TokenStore, generate

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
_TRIGGER_KEPT = ("call_totals", "call_stats_buckets")


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
    db: Database, scope: Scope = Scope.ADMIN, name: str | None = None, issued: IssuedToken | None = None
) -> str:
    """Store a new API token in ``db`` (as ``calld token create`` does) and return it in plain text."""
    async with db.write() as session:
        _, issued = await TokenStore().create(session, name or f"test-{scope}-{uuid.uuid4().hex[:8]}", scope, issued)
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

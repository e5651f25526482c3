"""Fixtures: every database test runs on a real SQLite file and on the real PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
import structlog

from calld.config import CallsConfig, Config
from calld.http.app import create_app
from calld.logging import configure_logging
from calld.service.wiring import Services
from calld.storage.calls import CallStore
from calld.storage.database import Database
from tests.support import (
    AppClient,
    LogCapture,
    SettableClock,
    bearer,
    ensure_pg_database,
    fresh_database,
    migrated_sqlite,
    mint_token,
    webhooks_config,
)


@pytest.fixture(scope="session")
def pg_database() -> None:
    """Create the PostgreSQL test database once per run."""
    asyncio.run(ensure_pg_database())


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated empty SQLite file each test's database is copied from: migrating anew costs ~0.1 s a test."""
    return asyncio.run(migrated_sqlite(tmp_path_factory.mktemp("template") / "calld-template.db"))


@pytest.fixture(params=["sqlite", "postgres"])
async def db(
    request: pytest.FixtureRequest, tmp_path: Path, pg_database: None, sqlite_template: Path
) -> AsyncIterator[Database]:
    database = await fresh_database(request.param, tmp_path, sqlite_template)
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock()


@pytest.fixture
def config() -> Config:
    return Config(calls=CallsConfig(timezone="UTC", default_region="US"), webhooks=webhooks_config())


@pytest.fixture
def services(db: Database, config: Config, clock: SettableClock) -> Services:
    return Services(config=config, db=db, calls=CallStore(clock=clock, numbers=config.calls.numbers))


@pytest.fixture
async def auth_headers(db: Database) -> dict[str, str]:
    """The Authorization header of an admin token stored in ``db``."""
    return bearer(await mint_token(db))


@pytest.fixture
async def api(
    services: Services, auth_headers: dict[str, str], aiohttp_client: Callable[..., Awaitable[AppClient]]
) -> AppClient:
    """A real HTTP client talking to calld's app on a loopback port, sending an admin token."""
    return await aiohttp_client(create_app(services), headers=auth_headers)


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """For tests that reconfigure process-wide logging: put it back for the rest of the suite."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    structlog.reset_defaults()
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def log_capture(restore_logging: None) -> LogCapture:
    """Route calld's logging into memory as JSON lines; the process-wide setup is put back afterwards."""
    capture = LogCapture()
    configure_logging("debug", "json", capture.stream)
    return capture

"""The database when things go wrong or could leak: files created owner-only whatever the umask,
a damaged or empty SQLite file refused at start with one line (and reported by /readyz when found
while running), and PostgreSQL cut or hung answered 503 with Retry-After in bounded time, logged
once per outage."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from calld.config import Config, DatabaseConfig
from calld.daemon import Daemon
from calld.domain.events import SwitchEvent
from calld.domain.vocabulary import EventType
from calld.http.app import create_app
from calld.ingest.spill import SpillFile
from calld.service.wiring import Services
from calld.storage.calls import CallStore
from calld.storage.database import Database
from calld.storage.sqlite_file import DatabaseDamaged
from tests.fakes.tcp_proxy import TcpProxy
from tests.support import (
    PG_URL,
    AppClient,
    LogCapture,
    api_session,
    bearer,
    daemon_config,
    fresh_database,
    mint_token,
    running_daemon,
)

INCOMING = {"caller_number": "+14155550100", "recipient_number": "1001"}


@pytest.fixture
def open_umask() -> Iterator[None]:
    """calld started outside its unit, by a shell with umask 022 (or worse, 000)."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def store_calls(db: Database, count: int) -> None:
    async with running_daemon(db) as daemon, api_session(daemon) as http:
        for n in range(count):
            body = {**INCOMING, "sip_call_id": f"health-{n}@pbx"}
            async with http.post("/api/call-logs/log_incoming_call/", json=body) as resp:
                assert resp.status == 201


# --- file permissions -----------------------------------------------------------------------------


@pytest.mark.usefixtures("open_umask")
async def test_the_database_its_wal_and_shm_are_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "calld.db"
    db = Database(f"sqlite:///{path}")
    try:
        await db.migrate()
        await store_calls(db, 1)
        files = [path, tmp_path / "calld.db-wal", tmp_path / "calld.db-shm"]
        assert {f.name: mode(f) for f in files} == {f.name: 0o600 for f in files}
    finally:
        await db.close()


@pytest.mark.usefixtures("open_umask")
async def test_an_existing_readable_database_is_made_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "calld.db"
    db = Database(f"sqlite:///{path}")
    await db.migrate()
    await db.close()
    path.chmod(0o644)
    db = Database(f"sqlite:///{path}")
    try:
        await db.migrate()
        assert mode(path) == 0o600
    finally:
        await db.close()


@pytest.mark.usefixtures("open_umask")
def test_the_spill_file_and_its_offset_are_owner_only(tmp_path: Path) -> None:
    spill = SpillFile(tmp_path / "spill.jsonl", 1_000_000)
    when = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    for n in range(3):
        spill.append(SwitchEvent(call_ref="c-1", event_type=EventType.DTMF, timestamp=when, key=f"k-{n}"))
    _events, offset, count = spill.peek(1)
    spill.consume(offset, count)  # writes the .offset file
    spill.close()
    written = [p for p in tmp_path.iterdir()]
    assert written and all(mode(p) == 0o600 for p in written), {p.name: oct(mode(p)) for p in written}


# --- a damaged or empty SQLite file ---------------------------------------------------------------


def scribble(path: Path, start: float, end: float) -> None:
    """Overwrite the bytes from ``start`` to ``end`` (fractions of the file) with garbage."""
    size = path.stat().st_size
    with path.open("r+b") as f:
        f.seek(int(size * start))
        f.write(b"\xde\xad\xbe\xef" * ((int(size * end) - int(size * start)) // 4))


async def damaged(tmp_path: Path, how: str) -> Path:
    path = tmp_path / "calld.db"
    if how == "empty":
        path.touch()
        return path
    db = Database(f"sqlite:///{path}")
    await db.migrate()
    await store_calls(db, 300)
    await db.close()
    if how == "header":
        scribble(path, 0, 0.001)  # the first 100 bytes name the format and page size
    else:
        scribble(path, 0.3, 0.9)  # the calls' pages
    return path


@pytest.mark.parametrize("how", ["empty", "header", "pages"])
async def test_a_damaged_or_empty_database_is_refused_at_start(tmp_path: Path, how: str) -> None:
    path = await damaged(tmp_path, how)
    size = path.stat().st_size
    daemon = Daemon(daemon_config(Database(f"sqlite:///{path}")))
    with pytest.raises(DatabaseDamaged, match=str(path)):
        await daemon.start()
    await daemon.stop()
    assert path.stat().st_size == size  # nothing was written into it


@pytest.mark.parametrize("how", ["empty", "pages"])
async def test_calld_run_refuses_a_damaged_database_with_one_line(tmp_path: Path, how: str) -> None:
    path = await damaged(tmp_path, how)
    env = {**os.environ, "CALLD_DATABASE_URL": f"sqlite:///{path}", "CALLD_PORT": "18143", "CALLD_LOG_FORMAT": "json"}
    env.pop("CALLD_CONFIG", None)
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "calld.cli", "run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 1
    refusals = [line for line in result.stderr.splitlines() if "refusing to start" in line]
    assert len(refusals) == 1 and str(path) in refusals[0], result.stderr
    assert "Traceback" not in result.stderr


async def test_damage_found_while_running_is_503_and_reported_by_readyz(
    tmp_path: Path, config: Config, aiohttp_client: Callable[..., Awaitable[AppClient]]
) -> None:
    path = tmp_path / "calld.db"
    db = Database(f"sqlite:///{path}")
    await db.migrate()
    token = await mint_token(db)  # its row sits in the first pages, before the calls'
    await store_calls(db, 300)
    await db.close()
    scribble(path, 0.3, 0.9)
    # A calld that started before the damage: no start-up check stands between it and the file.
    running = Database(f"sqlite:///{path}")
    try:
        client = await aiohttp_client(create_app(Services(config=config, db=running, calls=CallStore())))
        resp = await client.get("/api/call-logs/?limit=200", headers=bearer(token))
        body = await resp.json()
        assert resp.status == 503, body
        assert body["error"] == "database damaged"
        ready = await client.get("/readyz")
        assert ready.status == 503
        assert (await ready.json())["checks"]["database"].startswith("damaged:")
    finally:
        await running.close()


# --- PostgreSQL cut or hung ------------------------------------------------------------------------


@pytest.mark.usefixtures("pg_database")
@pytest.mark.parametrize("outage", ["cut", "hung"])
async def test_postgresql_cut_or_hung_is_503_with_retry_after_logged_once(
    tmp_path: Path, log_capture: LogCapture, outage: str
) -> None:
    await (await fresh_database("postgres", tmp_path)).close()
    target = make_url(PG_URL)
    proxy = TcpProxy(target.host or "127.0.0.1", target.port or 5432)
    port = await proxy.start()
    proxied = Database(target.set(port=port).render_as_string(hide_password=False))
    database = DatabaseConfig(url=target.set(port=port).render_as_string(hide_password=False), timeout_seconds=1.0)
    try:
        async with running_daemon(proxied, database=database) as daemon, api_session(daemon) as http:
            async with http.get("/api/call-logs/") as resp:
                assert resp.status == 200
            proxy.cut() if outage == "cut" else proxy.hang()
            for n in range(3):
                started = time.monotonic()
                async with http.post(
                    "/api/call-logs/log_incoming_call/", json={**INCOMING, "sip_call_id": f"out-{n}@pbx"}
                ) as resp:
                    body = await resp.json()
                    assert resp.status == 503, body
                    assert resp.headers["Retry-After"] == "5"
                    assert body["error"] == "database unavailable"
                # Bounded by database.timeout_seconds (1 s) per wait, not by TCP's minutes.
                assert time.monotonic() - started < 15
            proxy.restore()
            for _ in range(100):
                async with http.get("/api/call-logs/") as resp:
                    if resp.status == 200:
                        break
                await asyncio.sleep(0.1)
            else:
                pytest.fail("calld did not answer again after the database came back")
    finally:
        await proxied.close()
        await proxy.close()
    events = [line["event"] for line in log_capture.lines()]
    assert events.count("database unavailable") == 1
    assert "unhandled error" not in events
    assert events.count("database available again") == 1

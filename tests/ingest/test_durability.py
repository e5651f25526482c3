"""Nothing acknowledged is lost: database outages spill to disk, a killed calld resumes from it."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from calld.adapters.freeswitch.adapter import LIST_CHANNELS, VERSION
from calld.ingest.spill import SpillFile, decode_event, encode_event
from calld.ingest.switch_ingest import BatchedIngest, SwitchIngest
from calld.storage.calls import CallStore
from calld.storage.database import Database
from tests.fakes.esl_capture import connect_answers, load_capture, mapped
from tests.fakes.esl_server import FakeEslServer
from tests.fakes.tcp_proxy import TcpProxy
from tests.support import PG_URL, SettableClock, free_tcp_port, fresh_database, keys_by_call, stored_keys_by_call


def test_spill_file_keeps_order_across_reopen_and_drops_a_torn_line(tmp_path: Path) -> None:
    events = mapped("d_hold")
    path = tmp_path / "spill.jsonl"
    spill = SpillFile(path, max_bytes=10_000_000)
    for event in events:
        spill.append(event)
    first, offset, lines = spill.peek(3)
    assert first == events[:3] and lines == 3 and spill.waiting == len(events)
    spill.consume(offset, lines)
    spill.close()
    with open(path, "ab") as file:
        file.write(encode_event(events[0])[:40])  # a write cut short by a crash
    again = SpillFile(path, max_bytes=10_000_000)  # as after a restart
    assert again.waiting == len(events) - 3
    rest, end, lines = again.peek(1000)
    assert rest == events[3:] and lines == len(rest)
    again.consume(end, lines)
    assert again.waiting == 0 and not path.exists() and not path.with_name("spill.jsonl.offset").exists()
    assert decode_event(encode_event(events[0])) == events[0]


def test_an_unreadable_line_is_skipped_not_fatal(tmp_path: Path) -> None:
    events = mapped("a2_bridged")
    path = tmp_path / "spill.jsonl"
    spill = SpillFile(path, max_bytes=10_000_000)
    spill.append(events[0])
    spill.close()
    with open(path, "ab") as file:
        file.write(b"\x00\x01 not json\n")  # what a disk error could leave
    again = SpillFile(path, max_bytes=10_000_000)
    again.append(events[1])
    read, end, lines = again.peek(10)
    assert read == events[:2] and lines == 3 and again.unreadable == 1
    again.consume(end, lines)
    assert again.waiting == 0


async def test_a_database_outage_spills_to_disk_and_everything_arrives(
    tmp_path: Path, pg_database: None, clock: SettableClock
) -> None:
    await (await fresh_database("postgres", tmp_path)).close()  # empty tables
    target = make_url(PG_URL)
    proxy = TcpProxy(target.host or "127.0.0.1", target.port or 5432)
    port = await proxy.start()
    db = Database(target.set(port=port).render_as_string(hide_password=False), pool_size=2)
    events = mapped("j_load.json")
    spill = SpillFile(tmp_path / "spill.jsonl", max_bytes=100_000_000)
    queue = BatchedIngest(
        SwitchIngest(db, CallStore(clock=clock), "freeswitch"), max_pending=50, spill=spill, retry_max_seconds=0.2
    )
    try:
        proxy.cut()  # PostgreSQL becomes unreachable before the burst
        for event in events:
            await queue(event)  # never waits: 50 in memory, the rest on disk
        assert spill.waiting == len(events) - 50
        assert queue.memory_full == 1
        await asyncio.sleep(0.5)  # the worker keeps retrying meanwhile
        assert queue.pending == len(events)
        proxy.restore()
        await asyncio.wait_for(queue.close(), 120)
        assert queue.pending == 0 and not spill.path.exists()
        assert await stored_keys_by_call(db) == keys_by_call(events)  # all, once, in order
    finally:
        await db.close()
        await proxy.close()


def _committed_keys(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [row[0] for row in conn.execute("SELECT dedup_key FROM call_events")]


@pytest.mark.parametrize("capture_name", ["j_load.json"])
async def test_kill_9_mid_burst_loses_nothing_acknowledged(tmp_path: Path, capture_name: str) -> None:
    capture = load_capture(capture_name)
    expected = {f"freeswitch:{event.key}" for event in mapped(capture_name)}
    database = tmp_path / "calld-test.db"  # fresh_database's file
    spill = tmp_path / "spill.jsonl"
    async with FakeEslServer(
        capture, after_subscribe=[LIST_CHANNELS, VERSION], answers=connect_answers(), stream=True
    ) as switch:
        config = tmp_path / "calld.toml"
        config.write_text(
            f'[database]\nurl = "sqlite:///{database}"\n'
            f'[freeswitch]\nport = {switch.port}\npassword = "ClueCon"\n'
            f'[ingest]\nmax_memory_events = 20\nbatch_size = 20\nspill_path = "{spill}"\n'
            '[logging]\nlevel = "warning"\n'
        )
        env = {**os.environ, "CALLD_CONFIG": str(config), "CALLD_PORT": str(free_tcp_port())}
        env.pop("CALLD_DATABASE_URL", None)

        def start() -> subprocess.Popen[bytes]:
            command = [sys.executable, "-m", "calld.cli", "run"]
            return subprocess.Popen(command, env=env, cwd=tmp_path, stderr=subprocess.DEVNULL)

        await (await fresh_database("sqlite", tmp_path)).close()  # migrated before calld starts
        # calld stores a burst faster than this test can catch it mid-way, so the test holds
        # SQLite's write lock (as a slow disk or another writer would) until events wait on disk,
        # then lets calld go and kills it at its first commit.
        blocker = sqlite3.connect(database, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        first = start()
        try:
            deadline = time.monotonic() + 60
            while not (spill.exists() and spill.read_bytes().count(b"\n") > 100):
                assert first.poll() is None and time.monotonic() < deadline, "calld never spilled"
                await asyncio.sleep(0.01)
            blocker.execute("ROLLBACK")
            while not _committed_keys(database):
                assert first.poll() is None and time.monotonic() < deadline, "calld never committed"
                await asyncio.sleep(0.001)
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait()
            blocker.close()
        acknowledged = set(_committed_keys(database))  # committed before the kill
        spilled = sum(1 for line in spill.read_bytes().splitlines() if line.endswith(b"}"))
        assert acknowledged and spilled > 0  # the kill came mid-burst, with events on disk
        assert len(acknowledged) < len(expected)

        second = start()  # the switch (the fake) sends its events again on the new connection
        try:
            deadline = time.monotonic() + 120
            while len(stored := _committed_keys(database)) < len(expected):
                assert second.poll() is None and time.monotonic() < deadline, f"{len(stored)} of {len(expected)}"
                await asyncio.sleep(0.05)
        finally:
            second.send_signal(signal.SIGTERM)
            assert second.wait(timeout=30) == 0
    stored = _committed_keys(database)
    assert len(stored) == len(set(stored))  # nothing twice
    assert set(stored) == expected and acknowledged <= set(stored)
    assert not spill.exists()  # what was left on disk was stored, then the file removed

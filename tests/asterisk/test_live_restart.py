"""Live: Asterisk goes away mid-call and comes back; calld reconnects, resyncs, and closes the
call exactly once."""

from __future__ import annotations

import asyncio
import signal

import pytest

from calld.storage.database import Database
from tests.asterisk.live import (
    crash_asterisk,
    event_types,
    lab_script,
    live_daemon,
    signal_asterisk,
    until,
)

pytestmark = pytest.mark.asterisk


@pytest.mark.parametrize("how", ["crash", "stop"])
async def test_restart_mid_call_reconnects_resyncs_and_closes_the_call_once(db: Database, how: str) -> None:
    async with live_daemon(db) as live:
        await live.answers("1002", "answer")
        await live.dials("1001", "1002", "wait_bye")
        call = await live.call_from("1001")
        await live.call_reaches(call["id"], "answered")
        adapter = live.adapter
        assert adapter.sessions == 1
        try:
            if how == "crash":
                await crash_asterisk()  # no Hangup ever comes: only the resync can end the call
            else:
                await lab_script("stop", CALLD_LAB_KEEP_MOUNTS="1")  # `core stop now` hangs the call up first
            live.kill_phones()  # their dialogs died with the switch
            await until(lambda: not adapter.connected.is_set(), 5, "the adapter to see Asterisk gone")
            if how == "crash":
                # While the switch is away, control requests fail clearly and change nothing.
                refused = await live.post(f"/api/call-logs/{call['id']}/end_call/", status=502)
                assert refused["error"] == "the switch is unavailable"
                assert (await live.call(call["id"]))["status"] == "answered"
        finally:
            await lab_script("start")  # whatever happened, the next test has its Asterisk
        await asyncio.wait_for(adapter.connected.wait(), 10)
        assert adapter.sessions == 2

        if how == "crash":
            # Answered, then gone with no end anywhere: ended, its end unknown (README "After a fault").
            done = await live.call_reaches(call["id"], "ended")
            assert event_types(done) == ["initiated", "ringing", "answered", "ended"]
            closing = done["events"][-1]["metadata"]
            assert closing["reason"] == "call no longer on the switch after reconnect"
            assert closing["ended_while_disconnected"] is True and closing["cause"] == "UNKNOWN"
        else:
            done = await live.call_reaches(call["id"], "ended")
            assert event_types(done) == ["initiated", "ringing", "answered", "ended"]
        assert done["duration_seconds"] is not None and done["duration_seconds"] >= 0

        # Events flow on the new session; the old call is not touched again.
        await live.answers("1004", "answer")
        await live.dials("1003", "1004", "call", talk_ms=500)
        after = await live.call_from("1003")
        after_done = await live.call_reaches(after["id"], "ended")
        assert event_types(after_done) == ["initiated", "ringing", "answered", "ended"]
        assert await live.call(call["id"]) == done
        assert len(await live.calls()) == 2
        ingest = live.daemon.ingest
        assert ingest is not None and ingest.refused == 0


async def test_a_dropped_ami_link_is_resumed_and_the_live_call_is_not_duplicated(db: Database) -> None:
    async with live_daemon(db) as live:
        await live.answers("1002", "answer")
        await live.dials("1001", "1002", "call", talk_ms=2500)
        call = await live.call_from("1001")
        await live.call_reaches(call["id"], "answered")
        adapter = live.adapter
        manager = adapter._manager
        assert manager is not None
        manager.protocol.transport.abort()  # the TCP link to the AMI drops; Asterisk and the call stay
        await until(lambda: adapter.sessions == 2 and adapter.connected.is_set(), 5, "the adapter back")
        # The resync found the call still up and adopted it silently; its Hangup ends it normally.
        done = await live.call_reaches(call["id"], "ended")
        assert event_types(done) == ["initiated", "ringing", "answered", "ended"]
        assert 2.0 <= done["duration_seconds"] <= 4.0
        assert await live.phones_done() == [0, 0]


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)  # no storage involved
async def test_a_frozen_asterisk_is_noticed_by_the_keepalive(db: Database) -> None:
    async with live_daemon(db, keepalive_seconds=1.0, action_timeout_seconds=1.5) as live:
        adapter = live.adapter
        signal_asterisk(signal.SIGSTOP)  # the TCP link stays up; only an unanswered Ping tells
        try:
            await until(lambda: not adapter.connected.is_set(), 6, "the keepalive to give up")
        finally:
            signal_asterisk(signal.SIGCONT)
        await until(lambda: adapter.connected.is_set() and adapter.sessions == 2, 10, "a new session")

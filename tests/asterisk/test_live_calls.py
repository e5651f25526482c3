"""Live: sipp phones call each other through the lab Asterisk; calld stores what happened."""

from __future__ import annotations

from datetime import datetime

import pytest

from calld.storage.database import Database
from tests.asterisk.live import event_types, live_daemon

pytestmark = pytest.mark.asterisk


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def test_answered_no_answer_busy_and_cancelled_calls_are_logged(db: Database) -> None:
    async with live_daemon(db) as live:
        # Four calls at once on four pairs of phones (Dial gives up on an unanswered phone after 6 s).
        await live.answers("1002", "answer")
        await live.answers("1004", "noanswer")
        await live.answers("1006", "busy")
        await live.answers("1008", "noanswer")
        await live.dials("1001", "1002", "call", talk_ms=2000)
        await live.dials("1003", "1004", "fail")
        await live.dials("1005", "1006", "fail")
        await live.dials("1007", "1008", "cancel")
        answered = await live.call_from("1001")
        no_answer = await live.call_from("1003")
        busy = await live.call_from("1005")
        cancelled = await live.call_from("1007")

        done = await live.call_reaches(answered["id"], "ended")
        assert event_types(done) == ["initiated", "ringing", "answered", "ended"]
        assert (done["direction"], done["caller_number"], done["recipient_number"]) == ("inbound", "1001", "1002")
        assert done["switch"] == "asterisk"
        assert 0.7 <= done["ring_seconds"] <= 2.5  # the phone rings 1 s
        assert 1.5 <= done["duration_seconds"] <= 3.5  # and talks 2 s
        assert done["events"][-1]["metadata"]["cause_code"] == 16
        assert all(e["source"] == "switch" for e in done["events"])
        stamps = [_at(e["timestamp"]) for e in done["events"]]
        assert stamps == sorted(stamps)

        busy_done = await live.call_reaches(busy["id"], "busy")
        assert event_types(busy_done) == ["initiated", "ended"]
        assert busy_done["events"][-1]["metadata"]["dial_status"] == "BUSY"
        assert busy_done["answered_at"] is None and not busy_done["duration_seconds"]

        cancelled_done = await live.call_reaches(cancelled["id"], "cancelled")
        assert event_types(cancelled_done) == ["initiated", "ringing", "ended"]
        assert 1.5 <= cancelled_done["ring_seconds"] <= 3.5  # the caller gave up after 2 s

        no_answer_done = await live.call_reaches(no_answer["id"], "no_answer", within=12)
        assert event_types(no_answer_done) == ["initiated", "ringing", "ended"]
        assert no_answer_done["events"][-1]["metadata"]["dial_status"] == "NOANSWER"
        assert 5 <= no_answer_done["ring_seconds"] <= 7.5  # Dial(...,6)

        assert await live.phones_done() == [0] * 8
        assert len(await live.calls()) == 4
        assert live.daemon.ingest is not None and live.daemon.ingest.refused == 0

"""A call that began and ended just before calld logged in, whose CEL rows Asterisk wrote only after
calld's first read of its records (Asterisk writes them a moment late, later under load): neither the
channel list, nor the event stream, nor that read had it. The records are read again and it is stored.

Seen live (tests/asterisk/test_live_burst_faults.py, calld kill -9 mid-burst on a busy machine): a
busy call that lasted 104 ms, ended 51 ms before calld's login, and was missing from calld.
The real adapter connects to ``FakeAmiServer`` replaying a recorded connect to an idle lab Asterisk.
"""

from __future__ import annotations

import asyncio
import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path

from calld.domain.events import SwitchEvent
from calld.domain.vocabulary import EventType
from tests.asterisk.test_cel_unfinished import adapter_after_downtime, cel_row


def _append(path: Path, rows: list[list[str]]) -> None:
    with path.open("a", newline="") as handle:
        csv.writer(handle, quoting=csv.QUOTE_ALL).writerows(rows)


async def test_a_call_whose_records_are_written_after_the_first_read_is_stored(tmp_path: Path) -> None:
    before = datetime.now(UTC)
    cel = tmp_path / "calld.csv"
    # An earlier call, already in the records at the first read.
    _append(cel, [cel_row("CHAN_START", before - timedelta(seconds=20), "1777.1", "1001", "1002")])
    _append(cel, [cel_row("HANGUP", before - timedelta(seconds=19), "1777.1", "1001", "1002")])
    events: list[SwitchEvent] = []
    stored = asyncio.Event()

    async def sink(event: SwitchEvent) -> None:
        events.append(event)
        if event.call_ref == "1777.2" and event.event_type is EventType.ENDED:
            stored.set()

    async with adapter_after_downtime(cel, before - timedelta(minutes=1), sink) as adapter:
        await asyncio.wait_for(adapter.connected.wait(), 10)  # the first read is done
        assert not [e for e in events if e.call_ref == "1777.2"]
        # Asterisk writes the rows of a call that began and ended before the login only now.
        _append(
            cel,
            [
                cel_row("CHAN_START", before - timedelta(milliseconds=150), "1777.2", "1003", "1004"),
                cel_row("HANGUP", before - timedelta(milliseconds=50), "1777.2", "1003", "1004"),
            ],
        )
        await asyncio.wait_for(stored.wait(), 10)
    late = [(e.event_type, e.recovered_from) for e in events if e.call_ref == "1777.2"]
    assert late == [(EventType.INITIATED, "cel"), (EventType.ENDED, "cel")]
    # The call already read the first time is not told again.
    assert [e.event_type for e in events if e.call_ref == "1777.1"] == [EventType.INITIATED, EventType.ENDED]


async def test_a_call_begun_after_the_login_is_left_to_the_event_stream(tmp_path: Path) -> None:
    before = datetime.now(UTC)
    cel = tmp_path / "calld.csv"
    cel.write_text("")
    events: list[SwitchEvent] = []

    async def sink(event: SwitchEvent) -> None:
        events.append(event)

    async with adapter_after_downtime(cel, before - timedelta(minutes=1), sink) as adapter:
        await asyncio.wait_for(adapter.connected.wait(), 10)
        after_login = datetime.now(UTC) + timedelta(milliseconds=10)
        _append(
            cel,
            [
                cel_row("CHAN_START", after_login, "1777.3", "1003", "1004"),
                cel_row("HANGUP", after_login + timedelta(milliseconds=50), "1777.3", "1003", "1004"),
            ],
        )
        await asyncio.sleep(2.0)  # past the late reads at 0.5 and 1.5 s
    assert not [e for e in events if e.call_ref == "1777.3"]

"""Calls Asterisk's CEL shows begun but never ended, and that the switch no longer lists, are closed by
the vanished-call rule: ``ended`` if answered, else ``failed``; cause ``UNKNOWN``, marked as found.

The real adapter connects to ``FakeAmiServer`` replaying a recorded connect to an idle lab Asterisk
(its channel list is empty) and reads a ``cel_custom`` CSV file written here in the lab's layout.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from calld.adapters.asterisk.adapter import AsteriskAdapter
from calld.adapters.port import EventSink
from calld.domain.events import SwitchEvent
from calld.domain.vocabulary import EventType
from tests.fakes.ami_capture import LOAD, LOAD_SETTINGS, load_ami_capture, spliced
from tests.fakes.ami_server import FakeAmiServer


@contextlib.asynccontextmanager
async def adapter_after_downtime(cel: Path, since: datetime, sink: EventSink) -> AsyncIterator[AsteriskAdapter]:
    """The real adapter, running against an idle lab Asterisk's recorded connect, with ``cel`` as its
    records and ``since`` as where the daemon says recovery starts (calld was down since)."""
    capture = spliced(load_ami_capture(LOAD), load_ami_capture("answered"))
    async with FakeAmiServer(capture) as server:
        settings = dataclasses.replace(LOAD_SETTINGS, port=server.port, cel_csv=str(cel))
        adapter = AsteriskAdapter(settings)
        adapter.recover_since = since
        task = asyncio.create_task(adapter.run(sink))
        try:
            yield adapter
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    server.check()


def cel_row(kind: str, at: datetime, linkedid: str, caller: str, dialled: str) -> list[str]:
    # eventtype, eventtime, cid_name, cid_num, cid_dnid, exten, context, channame, appname, appdata,
    # uniqueid, linkedid, peer, extra (README "After a fault")
    channel = f"PJSIP/{caller}-0000000{linkedid[-1]}"
    return [
        kind,
        f"{at.timestamp():.6f}",
        "",
        caller,
        "",
        dialled,
        "lab-inbound",
        channel,
        "",
        "",
        linkedid,
        linkedid,
        "",
        "",
    ]


async def test_calls_begun_in_cel_and_never_ended_are_closed_by_the_vanished_call_rule(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    cel = tmp_path / "calld.csv"
    with cel.open("w", newline="") as handle:
        writer = csv.writer(handle, quoting=csv.QUOTE_ALL)
        # 1777.1: rang and was answered, then Asterisk lost it; 1777.2: rang only.
        writer.writerow(cel_row("CHAN_START", now - timedelta(seconds=20), "1777.1", "1001", "1002"))
        writer.writerow(cel_row("ANSWER", now - timedelta(seconds=18), "1777.1", "1001", "1002"))
        writer.writerow(cel_row("CHAN_START", now - timedelta(seconds=10), "1777.2", "1003", "1004"))
    events: list[SwitchEvent] = []
    closed: dict[str, SwitchEvent] = {}
    both = asyncio.Event()

    async def sink(event: SwitchEvent) -> None:
        events.append(event)
        if event.call_ref.startswith("1777.") and event.event_type in (EventType.ENDED, EventType.FAILED):
            closed[event.call_ref] = event
            if len(closed) == 2:
                both.set()

    async with adapter_after_downtime(cel, now - timedelta(minutes=1), sink) as adapter:
        # The records are read again for 5 s (Asterisk writes CEL rows late) before closing.
        await asyncio.wait_for(both.wait(), 20)
        await asyncio.wait_for(adapter.resynced.wait(), 5)
    answered, rang = closed["1777.1"], closed["1777.2"]
    assert (answered.event_type, answered.key, answered.recovered_from) == (
        EventType.ENDED,
        "1777.1:cel-unfinished:ended",
        "cel",
    )
    assert dict(answered.metadata) == {
        "ended_while_calld_was_down": True,  # found on calld's first connect
        "cause": "UNKNOWN",
        "reason": "call no longer on the switch and no end in its records",
        "outcome": "ended",
    }
    assert (rang.event_type, rang.key) == (EventType.FAILED, "1777.2:cel-unfinished:failed")
    assert rang.metadata["ended_while_calld_was_down"] is True and rang.metadata["cause"] == "UNKNOWN"
    assert "outcome" not in rang.metadata
    # What the records told came first, under keys of their own (each follow-up read repeats them:
    # the same keys, which storage takes once).
    told = [e for e in events if e.recovered_from == "cel" and e not in closed.values()]
    assert list(dict.fromkeys((e.call_ref, e.event_type, e.key) for e in told)) == [
        ("1777.1", EventType.INITIATED, told[0].key),
        ("1777.1", EventType.ANSWERED, told[1].key),
        ("1777.2", EventType.INITIATED, told[2].key),
    ]
    assert all(e.key.startswith("cel:") for e in told)
    assert events.index(answered) > events.index(told[-1])

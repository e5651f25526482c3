"""calld connecting to a FreeSWITCH that already has calls up, and losing its link mid-call.

Real FreeSWITCH 1.10.12 sessions replayed byte for byte (``m_live_at_connect``: three calls set up
before the connection, so no CHANNEL_CREATE/ANSWER/BRIDGE is ever seen for them; ``m2_reconnect``:
a bridged call whose first connection is cut, held while no connection exists, resumed and hung up
on the second connection). Every call the switch had must be stored once, as one call per call.
"""

from __future__ import annotations

from typing import Any

import pytest

from calld.adapters.freeswitch.adapter import LIST_CHANNELS, VERSION
from calld.storage.database import Database
from tests.fakes.esl_capture import captured_reply, connect_answers, load_capture
from tests.fakes.esl_server import FakeEslServer
from tests.freeswitch.test_adapter_e2e import call, calld, calls, eventually


def live_at_connect(name: str, **options: Any) -> FakeEslServer:
    """The capture, with calld's connect queries answered by what the switch said in it."""
    answers = {LIST_CHANNELS: captured_reply(name, LIST_CHANNELS), VERSION: captured_reply("a_answered.json", VERSION)}
    return FakeEslServer(load_capture(name), after_subscribe=[LIST_CHANNELS, VERSION], answers=answers, **options)


async def all_ended(http: Any, count: int) -> list[dict[str, Any]] | None:
    found = await calls(http)
    terminal = [c for c in found if c["ended_at"] is not None]
    return found if len(found) >= count and len(terminal) == len(found) else None


@pytest.mark.parametrize("name", ["m_live_at_connect", "m_live_at_connect.json"])
async def test_calls_up_at_connect_are_stored_once_each(db: Database, name: str) -> None:
    async with (
        live_at_connect(name, stream=True) as server,
        calld(db, server, event_format="json" if name.endswith(".json") else "plain") as (daemon, _adapter, http),
    ):
        stored = await eventually(lambda: all_ended(http, 3))
        ingest = daemon.ingest
        assert ingest is not None
        await eventually(lambda: _settled(daemon))
        refused = ingest.refused
        details = [await call(http, c["id"]) for c in stored]
    assert server.mismatches == []
    # Three calls: 1000 -> 1001 bridged, a loopback call to 9002 (two legs, ONE call), 1002 -> 1004 ringing.
    assert len(stored) == 3, [(c["caller_number"], c["recipient_number"]) for c in stored]
    by_recipient = {c["recipient_number"]: c for c in stored}
    assert set(by_recipient) == {"1001", "9002", "1004"}
    assert by_recipient["1001"]["caller_number"] == "1000"
    assert by_recipient["1001"]["status"] == "ended" and by_recipient["9002"]["status"] == "ended"
    assert by_recipient["1004"]["answered_at"] is None
    assert by_recipient["1004"]["status"] in ("missed", "no_answer")
    for found in details:
        assert found["events"][0]["metadata"] == {"adopted": True}
    assert refused == 0  # every later event found its call


async def _settled(daemon: Any) -> bool:
    queue = daemon.ingest_queue
    await queue.flush()
    return True


@pytest.mark.parametrize("name", ["m2_reconnect", "m2_reconnect.json"])
async def test_a_link_cut_mid_call_keeps_one_call(db: Database, name: str) -> None:
    second = name.replace("m2_reconnect", "m2_reconnect.2")
    server = FakeEslServer(
        load_capture(name),
        after_subscribe=[LIST_CHANNELS, VERSION],
        answers=connect_answers(),  # the switch was idle at the first connect
        stream=True,
        later=[load_capture(second)],
        later_answers={
            LIST_CHANNELS: captured_reply(second, LIST_CHANNELS),
            VERSION: captured_reply("a_answered.json", VERSION),
        },
    )
    async with (
        server,
        calld(db, server, event_format="json" if name.endswith(".json") else "plain", reconnect_max_seconds=0.2) as (
            _daemon,
            adapter,
            http,
        ),
    ):
        stored = await eventually(lambda: all_ended(http, 1))
        assert adapter.sessions >= 2
        detail = await call(http, stored[0]["id"])
    assert len(stored) == 1
    (only,) = stored
    assert only["status"] == "ended" and only["answered_at"] is not None
    assert (only["caller_number"], only["recipient_number"]) == ("1000", "1001")
    assert "adopted" not in detail["events"][0]["metadata"]

"""FakeAmiServer replays real AMI captures to calld's real ``AsteriskAdapter`` over loopback TCP.

The adapter must hand its sink exactly the SwitchEvents that mapping the capture offline gives
(same mapper settings, every message in the capture's real recv() chunks), and the fake must
refuse, loudly, an action that differs from the recorded one.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gzip
import logging
from collections import Counter

import pytest

from calld.adapters.asterisk.adapter import EVENT_FILTERS, AsteriskAdapter
from calld.adapters.asterisk.ami_codec import AmiParser
from calld.adapters.asterisk.mapping import AmiEventMapper
from calld.adapters.asterisk.settings import AsteriskConfig
from calld.domain.events import SwitchEvent
from tests.fakes.ami_capture import CAPTURE_DIR, LOAD, LOAD_SETTINGS, AmiCapture, action_id, load_ami_capture, spliced
from tests.fakes.ami_server import FakeAmiServer, with_action_id, without_filter

SETTINGS = dataclasses.replace(LOAD_SETTINGS, reconnect_max_seconds=0.2, action_timeout_seconds=5.0)
SMALL = ["answered", "no_answer", "busy", "cancelled", "failed", "hold"]


def offline(capture: AmiCapture) -> list[SwitchEvent]:
    """What mapping the capture's messages gives, with no socket and no adapter."""
    mapper = AmiEventMapper(SETTINGS.inbound_contexts, SETTINGS.outbound_contexts, hold_context=SETTINGS.hold_context)
    return [event for message in capture.messages() for event in mapper.map(message)]


async def through_adapter(
    server: FakeAmiServer, expected: int, settings: AsteriskConfig = SETTINGS
) -> tuple[list[SwitchEvent], AsteriskAdapter]:
    """Run the real adapter against ``server`` until it handed ``expected`` events to its sink."""
    events: list[SwitchEvent] = []
    done = asyncio.Event()

    async def sink(event: SwitchEvent) -> None:
        events.append(event)
        if len(events) >= expected:
            done.set()

    adapter = AsteriskAdapter(dataclasses.replace(settings, port=server.port))
    task = asyncio.create_task(adapter.run(sink))
    try:
        await asyncio.wait_for(server.finished.wait(), 30)
        await asyncio.wait_for(done.wait(), 10)
        await asyncio.sleep(0.05)  # nothing more may follow
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return events, adapter


def test_load_capture_is_what_the_readme_says() -> None:
    capture = load_ami_capture(LOAD)
    assert (CAPTURE_DIR / "load.ami.gz").stat().st_size < 2_000_000
    assert gzip.decompress((CAPTURE_DIR / "load.ami.gz").read_bytes()).startswith(b"Asterisk Call Manager/")
    actions = [a.split(b"\r\n", 1)[0] for a in capture.actions()]
    assert actions == [b"Action: Login", b"Action: Filter", b"Action: Filter", b"Action: CoreShowChannels"]
    events = offline(capture)
    assert len({e.call_ref for e in events}) == 200
    outcomes = Counter(e.metadata.get("outcome") for e in events if e.event_type.value in ("ended", "failed"))
    assert outcomes == {"ended": 160, "no_answer": 20, "busy": 20}


@pytest.mark.parametrize("speed", [None, 20.0])
async def test_load_capture_through_the_adapter(speed: float | None) -> None:
    capture = load_ami_capture(LOAD)
    expected = offline(capture)
    async with FakeAmiServer(capture, speed=speed) as server:
        got, adapter = await through_adapter(server, len(expected))
    server.check()
    assert got == expected
    assert adapter.sessions == 1 and server.connections == 1
    assert [a.split(b"\r\n", 1)[0] for a in server.received] == [a.split(b"\r\n", 1)[0] for a in capture.actions()]


async def test_load_capture_streamed() -> None:
    capture = load_ami_capture(LOAD)
    expected = offline(capture)
    async with FakeAmiServer(capture, stream=True) as server:
        got, _ = await through_adapter(server, len(expected))
    server.check()
    assert got == expected


@pytest.mark.parametrize("name", SMALL)
async def test_small_capture_after_the_adapters_connect(name: str) -> None:
    """A capture recorded by lab/asterisk/capture.py (no Filter, its own Login), behind the load
    capture's real replies to the adapter's connect actions."""
    events_capture = load_ami_capture(name)
    capture = spliced(load_ami_capture(LOAD), events_capture)
    expected = offline(events_capture)
    assert expected and offline(capture) == expected
    async with FakeAmiServer(capture) as server:
        got, _ = await through_adapter(server, len(expected))
    server.check()
    assert got == expected


async def test_the_adapters_action_ids_are_echoed_every_other_byte_as_recorded() -> None:
    capture = load_ami_capture(LOAD)
    async with FakeAmiServer(capture) as server:
        await through_adapter(server, len(offline(capture)))
        received = server.received
    recorded = capture.actions()
    echoed = [with_action_id(got, action_id(exp) or b"") for got, exp in zip(received, recorded, strict=True)]
    # Filter expressions aside (the capture predates calld's RTPAUDIOQOS subscription), byte for byte.
    assert [without_filter(a) for a in echoed] == [without_filter(a) for a in recorded]
    sent_filters = [line[8:] for a in received for line in a.decode().split("\r\n") if line.startswith("Filter: ")]
    assert sent_filters == list(EVENT_FILTERS)
    # What a raw client sending the recorded actions reads is the capture itself.
    async with FakeAmiServer(capture) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"".join(recorded))
        data = await reader.readexactly(len(capture.data))
        writer.close()
    assert data == capture.data
    # With other ActionIDs, only their values change.
    ours = [with_action_id(a, b"x-%d" % i) for i, a in enumerate(recorded)]
    expected = capture.data
    for i, action in enumerate(recorded):
        value = action_id(action)
        assert value is not None
        expected = expected.replace(b"ActionID: " + value + b"\r\n", b"ActionID: x-%d\r\n" % i)
    async with FakeAmiServer(capture) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"".join(ours))
        data = await reader.readexactly(len(expected))
        writer.close()
    assert data == expected
    messages = AmiParser().feed(data)
    assert [m["ActionID"] for m in messages if m.response] == [f"x-{i}" for i in range(len(recorded))]


async def test_a_differing_action_is_refused_loudly(caplog: pytest.LogCaptureFixture) -> None:
    capture = load_ami_capture(LOAD)
    wrong = dataclasses.replace(SETTINGS, secret="not-the-recorded-secret")
    events: list[SwitchEvent] = []

    async def sink(event: SwitchEvent) -> None:
        events.append(event)

    async with FakeAmiServer(capture) as server:
        adapter = AsteriskAdapter(dataclasses.replace(wrong, port=server.port))
        with caplog.at_level(logging.ERROR, logger="tests.fakes.ami_server"):
            task = asyncio.create_task(adapter.run(sink))
            for _ in range(200):
                if server.mismatches:
                    break
                await asyncio.sleep(0.01)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    assert server.mismatches
    recorded, got = server.mismatches[0]
    assert recorded.startswith(b"Action: Login\r\n") and b"Secret: not-the-recorded-secret\r\n" in got
    assert "refused an action" in caplog.text
    assert not adapter.resynced.is_set() and events == []
    with pytest.raises(AssertionError, match="actions refused"):
        server.check()


async def test_an_unrecorded_action_after_the_capture_is_refused() -> None:
    """A keepalive Ping the recorder never sent: the capture cannot say how Asterisk answered."""
    capture = load_ami_capture(LOAD)
    async with FakeAmiServer(capture) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"".join(capture.actions()))
        await reader.readexactly(len(capture.data))
        writer.write(b"Action: Ping\r\nActionID: late-1\r\n\r\n")
        assert await reader.read() == b""  # closed
        writer.close()
    assert server.mismatches == [(b"", b"Action: Ping\r\nActionID: late-1\r\n\r\n")]


def _with_logoff(capture: AmiCapture) -> AmiCapture:
    """``capture`` (a session Asterisk ended: Login, events, Shutdown) with a Logoff noted after its
    last byte, so ``spliced`` takes all of it; the Logoff itself is never replayed."""
    logoff = {"dir": "send", "t": capture.timeline[-1]["t"], "data": "Action: Logoff\r\nActionID: end\r\n\r\n"}
    return AmiCapture(capture.name, capture.data, (*capture.timeline, logoff))


async def test_a_shutdown_ends_the_session_after_the_events_before_it() -> None:
    """``core stop now`` mid-call (restart_mid_call): the Hangups come before the Shutdown. They are
    all mapped, then the adapter ends the session itself (a stopping Asterisk answers nothing more)."""
    events_capture = load_ami_capture("restart_mid_call")
    assert events_capture.messages()[-1].event == "Shutdown"
    capture = spliced(load_ami_capture(LOAD), _with_logoff(events_capture))
    expected = offline(events_capture)
    assert [e.event_type.value for e in expected][-1] == "ended"
    events: list[SwitchEvent] = []

    async def sink(event: SwitchEvent) -> None:
        events.append(event)

    async with FakeAmiServer(capture) as server:
        adapter = AsteriskAdapter(dataclasses.replace(SETTINGS, port=server.port))
        task = asyncio.create_task(adapter.run(sink))
        try:
            await asyncio.wait_for(adapter.connected.wait(), 10)
            await asyncio.wait_for(server.finished.wait(), 10)
            for _ in range(200):  # the reconnect waits at least 0.5 s: the session is over by then
                if not adapter.connected.is_set():
                    break
                await asyncio.sleep(0.01)
            assert not adapter.connected.is_set() and adapter.sessions == 1
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    server.check()
    assert events == expected
    assert adapter.open_calls() == []

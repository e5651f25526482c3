"""``FreeswitchAdapter`` over TCP, no storage: what it hands its sink for a real capture streamed at
full speed must be exactly what mapping the capture's events offline gives (read, split, decode,
filter and map as one pure pipeline), for every capture with calls."""

from __future__ import annotations

import asyncio

import pytest

from calld.adapters.freeswitch.adapter import FreeswitchAdapter, wanted
from calld.adapters.freeswitch.esl_codec import EslParser, iter_events
from calld.adapters.freeswitch.settings import FreeswitchConfig
from calld.domain.events import SwitchEvent
from tests.fakes.esl_capture import Capture, capture_names, connect_answers, load_capture, subscribed_only
from tests.fakes.esl_server import FakeEslServer, normalise
from tests.fakes.freeswitch_daemon import connect_queries

# m_ and m2_ start with calls up before connecting (see test_adapter_resync); l_ is calld itself
# as the client, already subscribed narrowly (see test_mapping_originate).
CALL_CAPTURES = [name for name in capture_names() if not name.startswith(("x_", "k_", "l_", "m_", "m2_"))]


def offline(capture: Capture) -> list[SwitchEvent]:
    """The pure pipeline, with the mapper the adapter makes from its settings (call directions)."""
    parser, mapper = EslParser(), FreeswitchAdapter(FreeswitchConfig()).mapper
    return [
        switch_event
        for chunk in capture.chunks()
        for event in iter_events(parser.feed(chunk))
        if wanted(event)
        for switch_event in mapper.map(event)
    ]


def event_format(capture: Capture) -> str:
    return normalise(capture.sends()[1]).split()[1].decode()


async def stream_through_adapter(
    capture: Capture, count: int, sessions: int = 1
) -> tuple[list[SwitchEvent], FreeswitchAdapter]:
    """The first ``count`` SwitchEvents the adapter emits for ``capture`` streamed at full speed
    (every connection gets the whole capture), once it has logged in ``sessions`` times."""
    got: list[SwitchEvent] = []
    enough = asyncio.Event()

    async def sink(event: SwitchEvent) -> None:
        got.append(event)
        if len(got) >= count:
            enough.set()

    server = FakeEslServer(capture, after_subscribe=connect_queries(capture), answers=connect_answers(), stream=True)
    async with server:
        settings = FreeswitchConfig(
            port=server.port, password="ClueCon", event_format=event_format(capture), reconnect_max_seconds=0.1
        )
        adapter = FreeswitchAdapter(settings)
        task = asyncio.create_task(adapter.run(sink))
        try:
            await asyncio.wait_for(enough.wait(), 30)
            for _ in range(3000):  # 30 s
                if adapter.sessions >= sessions:
                    break
                await asyncio.sleep(0.01)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    assert server.mismatches == []
    return got[:count], adapter


@pytest.mark.parametrize("name", CALL_CAPTURES)
@pytest.mark.parametrize("narrow", [False, True], ids=["as-recorded", "subscribed"])
async def test_adapter_emits_what_offline_mapping_gives(name: str, narrow: bool) -> None:
    capture = load_capture(name)
    if narrow:
        capture = subscribed_only(capture, wanted)
    expected = offline(capture)
    assert expected
    got, _adapter = await stream_through_adapter(capture, len(expected))
    assert got == expected


async def test_a_disconnect_notice_ends_the_session_and_the_adapter_reconnects() -> None:
    """The streamed capture ends as FreeSWITCH ended it: ``+OK bye``, a disconnect notice, close."""
    capture = load_capture("a_answered.json")
    expected = offline(capture)
    got, adapter = await stream_through_adapter(capture, len(expected), sessions=2)
    assert got == expected
    assert adapter.sessions == 2

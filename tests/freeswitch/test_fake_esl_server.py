"""The fake ESL server replays real captures exactly and checks the client's commands."""

from __future__ import annotations

import asyncio

import pytest

from calld.adapters.freeswitch.adapter import wanted
from calld.adapters.freeswitch.esl_codec import (
    CT_API_RESPONSE,
    CT_AUTH_REQUEST,
    CT_DISCONNECT_NOTICE,
    EslParser,
    Frame,
    encode_api,
    encode_auth,
    encode_event_subscription,
)
from tests.fakes.esl_capture import Capture, load_capture, subscribed_only
from tests.fakes.esl_server import FakeEslServer, normalise, split_command

SCENARIOS = ["x_protocol", "x_auth_fail", "a_answered", "a2_bridged.json", "f_attended_transfer", "k_register"]


async def replay_as_recorder(capture: Capture, port: int) -> bytes:
    """A raw client doing what the recorder did: each command once the bytes it waited for arrived."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    received = bytearray()
    progress = asyncio.Event()

    async def read_all() -> None:
        while chunk := await reader.read(65536):
            received.extend(chunk)
            progress.set()
        progress.set()

    read_task = asyncio.create_task(read_all())
    seen = 0  # end offset of the last recv entry before the next send
    for entry in capture.timeline:
        if entry["dir"] == "recv":
            seen = entry["off"] + entry["len"]
        elif entry["dir"] == "send":
            while len(received) < seen and not read_task.done():
                progress.clear()
                await asyncio.wait_for(progress.wait(), 10)
            writer.write(entry["data"].encode())
            await writer.drain()
    await asyncio.wait_for(read_task, 30)
    writer.close()
    await writer.wait_closed()
    return bytes(received)


@pytest.mark.parametrize("name", SCENARIOS)
async def test_client_receives_exactly_the_capture(name: str) -> None:
    capture = load_capture(name)
    async with FakeEslServer(capture) as server:
        received = await replay_as_recorder(capture, server.port)
    assert received == capture.data
    assert server.received == server.expected_commands
    assert server.received == [normalise(s) for s in capture.sends()]
    assert server.mismatches == []


async def test_load_capture_replays_at_full_size() -> None:
    capture = load_capture("j_load")
    async with FakeEslServer(capture) as server:
        received = await replay_as_recorder(capture, server.port)
    assert len(received) == 22146770
    assert received == capture.data
    assert len(server.received) == 203  # auth, event, 200 bgapi, exit


async def test_unexpected_command_is_recorded_and_nothing_is_invented() -> None:
    capture = load_capture("x_protocol")
    async with FakeEslServer(capture) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        first = await reader.readuntil(b"\n\n")
        writer.write(encode_auth("WrongPassword"))
        await writer.drain()
        rest = await asyncio.wait_for(reader.read(), 10)  # closed without an answer
        writer.close()
        await writer.wait_closed()
    assert first == b"Content-Type: auth/request\n\n"
    assert rest == b""
    assert server.mismatches == [(b"auth ClueCon\n\n", b"auth WrongPassword\n\n")]


async def test_codec_client_against_the_fake_server() -> None:
    """Drive the x_protocol session with the real codec: replies parse, events decode."""
    capture = load_capture("x_protocol")
    async with FakeEslServer(capture, speed=50.0) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        parser = EslParser()
        frames: list[Frame] = []

        async def next_frame(content_type: str) -> Frame:
            while True:
                for i, frame in enumerate(frames):
                    if frame.content_type == content_type:
                        return frames.pop(i)
                chunk = await asyncio.wait_for(reader.read(65536), 10)
                assert chunk, "server closed early"
                frames.extend(parser.feed(chunk))

        assert (await next_frame(CT_AUTH_REQUEST)).headers == {"Content-Type": "auth/request"}
        writer.write(encode_auth("ClueCon"))
        assert (await next_frame("command/reply")).reply_text == "+OK accepted"
        writer.write(encode_event_subscription("plain"))
        assert (await next_frame("command/reply")).reply_text == "+OK event listener enabled plain"
        writer.write(encode_api("nosuchcommand foo"))
        assert (await next_frame(CT_API_RESPONSE)).text.startswith("-ERR nosuchcommand")
        # The rest of the session, as recorded.
        for command in capture.sends()[3:]:
            writer.write(command)
        await writer.drain()
        await next_frame(CT_DISCONNECT_NOTICE)
        writer.close()
        await writer.wait_closed()
    assert server.mismatches == []
    assert len(server.received) == len(capture.sends())


def test_split_command() -> None:
    buffer = bytearray(b"\napi status\n\nsendevent CUSTOM\nContent-Length: 3\n\nabc\n\nexit\n")
    assert split_command(buffer) == b"api status\n\n"
    assert split_command(buffer) == b"sendevent CUSTOM\nContent-Length: 3\n\nabc"
    assert split_command(buffer) is None  # "exit\n" is not complete yet
    buffer += b"\n"
    assert split_command(buffer) == b"exit\n\n"
    assert buffer == b""


@pytest.mark.parametrize("name", ["j_load.json", "a2_bridged", "i_conference.json", "x_protocol"])
def test_subscribed_only_cuts_out_exactly_the_unsubscribed_events(name: str) -> None:
    capture = load_capture(name)
    narrow = subscribed_only(capture, wanted)
    parser = EslParser()
    everything = [frame for chunk in capture.chunks() for frame in parser.feed(chunk)]
    parser = EslParser()
    kept = [frame for chunk in narrow.chunks() for frame in parser.feed(chunk)]
    assert parser.buffered == 0
    assert kept == [frame for frame in everything if not frame.is_event or wanted(frame.event())]
    assert len(kept) < len(everything) or name == "x_protocol"
    assert len(narrow.chunks()) <= len(capture.chunks())
    assert [e for e in narrow.timeline if e["dir"] == "send"] == [e for e in capture.timeline if e["dir"] == "send"]


async def test_subscribed_only_replays_through_the_fake_server() -> None:
    narrow = subscribed_only(load_capture("a_answered.json"), wanted)
    async with FakeEslServer(narrow) as server:
        received = await replay_as_recorder(narrow, server.port)
    assert received == narrow.data
    assert server.mismatches == []

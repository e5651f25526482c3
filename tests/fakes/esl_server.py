"""A fake FreeSWITCH Event Socket that replays a real capture, byte for byte.

It listens on 127.0.0.1 (ephemeral port). For each connection it walks the capture's timeline:
a ``recv`` entry is written to the client exactly as FreeSWITCH sent it (same chunk boundaries);
a ``send`` entry waits for the client's next command and compares it with what the recorder sent.
What follows in the capture is the switch's answer, so nothing is ever invented. On a command
that does not match, the server records it in ``mismatches`` and closes the connection (a real
switch would have answered differently, and the capture cannot say how).

Two departures a real client needs, both answered with real bytes only:

* ``after_subscribe``: commands a client sends right after its subscription that the recorder did
  not send (calld asks ``api show channels as json`` and ``api version`` when it connects). The
  server waits for them after replaying the subscription's reply and answers each with the reply
  frame FreeSWITCH gave to that command in a capture (``answers``, see ``captured_reply``).
* ``event <format> <names>`` matches the capture's ``event <format> ALL``: FreeSWITCH's reply to
  a subscription does not depend on the names ("+OK event listener enabled json"). The fake does
  not filter what it replays, so a client sees events it did not subscribe to and must skip them.

For throughput benchmarks, ``stream=True`` answers the login, the subscription and
``after_subscribe`` as recorded, then sends every remaining byte at once without waiting for the
recorder's later commands (their replies arrive unasked; a client ignores replies it has no
command waiting for).

For reconnection tests, ``drop_after`` closes the first connection after that many ``recv``
chunks (mid-frame if that is where the chunk ends), and ``later`` gives the sessions replayed to
the connections after it (the last one repeats), with ``later_answers`` (if given) answering their
connect queries: what the switch listed on that later connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from calld.adapters.freeswitch.esl_codec import EslParser
from tests.fakes.esl_capture import Capture
from tests.fakes.loopback import LoopbackServer


def split_command(buffer: bytearray) -> bytes | None:
    """Take one complete ESL command (header block + Content-Length body) off ``buffer``.

    Blank lines between commands are skipped (the recorder sent one after a sendevent body).
    """
    while buffer[:1] == b"\n":
        del buffer[:1]
    end = buffer.find(b"\n\n")
    if end < 0:
        return None
    length = 0
    for line in bytes(buffer[:end]).split(b"\n"):
        name, _, value = line.partition(b": ")
        if name.lower() == b"content-length":
            length = int(value)
    total = end + 2 + length
    if len(buffer) < total:
        return None
    command = bytes(buffer[:total])
    del buffer[:total]
    return command


def subscription_matches(expected: bytes, got: bytes) -> bool:
    """``event json ALL`` (recorded) and ``event json <names>`` (sent) get the same reply."""
    exp, sent = expected.split(), got.split()
    return exp[:1] == sent[:1] == [b"event"] and exp[1:3] == [sent[1], b"ALL"] and len(sent) > 2


def normalise(command: bytes) -> bytes:
    """A command as framed by ``split_command`` (drops the recorder's trailing blank lines)."""
    buffer = bytearray(command)
    framed = split_command(buffer)
    if framed is None:
        raise ValueError(f"not a complete command: {command!r}")
    return framed


@dataclass
class FakeEslServer(LoopbackServer):
    """Replays ``capture`` to every client. ``speed``: None = no pauses, 1.0 = real time."""

    capture: Capture
    speed: float | None = None
    command_timeout: float = 10.0
    after_subscribe: Sequence[bytes] = ()
    answers: Mapping[bytes, bytes] = field(default_factory=dict)  # framed command -> captured reply
    drop_after: int | None = None
    later: Sequence[Capture] = ()
    later_answers: Mapping[bytes, bytes] | None = None
    stream: bool = False
    received: list[bytes] = field(default_factory=list)  # commands, framed, in order
    mismatches: list[tuple[bytes, bytes]] = field(default_factory=list)  # (expected, got)
    connections: int = 0

    @property
    def expected_commands(self) -> list[bytes]:
        return [normalise(s) for s in self.capture.sends()]

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number = self.connections
        capture = self.capture if number == 1 or not self.later else self.later[min(number - 2, len(self.later) - 1)]
        answers = self.answers if number == 1 or self.later_answers is None else self.later_answers
        await self._replay(capture, reader, writer, self.drop_after if number == 1 else None, answers)

    async def _replay(
        self,
        capture: Capture,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        drop_after: int | None,
        answers: Mapping[bytes, bytes],
    ) -> None:
        data = capture.data
        pending = bytearray()
        framing = EslParser()  # follows what was written, to know where frames end
        sent_chunks = 0
        subscribed = False
        last_t: float | None = None
        for entry in capture.timeline:
            if self.speed is not None and "t" in entry:
                if last_t is not None and entry["t"] > last_t:
                    await asyncio.sleep((entry["t"] - last_t) / self.speed)
                last_t = entry["t"]
            if entry["dir"] == "recv":
                if drop_after is not None and sent_chunks >= drop_after:
                    return  # the link drops here
                chunk = data[entry["off"] : entry["off"] + entry["len"]]
                framing.feed(chunk)
                writer.write(chunk)
                await writer.drain()
                sent_chunks += 1
                if subscribed:
                    subscribed = False
                    if framing.buffered or not await self._answer_connect_queries(reader, writer, pending, answers):
                        return
            elif entry["dir"] == "send":
                if self.stream and sent_chunks > 2:
                    continue  # logged in and subscribed: the rest is streamed
                expected = normalise(entry["data"].encode())
                got = await self._next_command(reader, pending)
                if got is None:
                    return  # client went away
                self.received.append(got)
                subscribed = subscription_matches(expected, got)
                if got != expected and not subscribed:
                    self.mismatches.append((expected, got))
                    return
        # The capture ends where FreeSWITCH closed the socket (after the disconnect notice).

    async def _answer_connect_queries(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        pending: bytearray,
        answers: Mapping[bytes, bytes],
    ) -> bool:
        """Answer ``after_subscribe`` from ``answers``; False (and recorded) on anything else."""
        for expected in self.after_subscribe:
            got = await self._next_command(reader, pending)
            if got is None:
                return False
            self.received.append(got)
            if got != expected:
                self.mismatches.append((expected, got))
                return False
            writer.write(answers[got])
            await writer.drain()
        return True

    async def _next_command(self, reader: asyncio.StreamReader, pending: bytearray) -> bytes | None:
        while True:
            command = split_command(pending)
            if command is not None:
                return command
            chunk = await asyncio.wait_for(reader.read(65536), self.command_timeout)
            if not chunk:
                return None
            pending += chunk

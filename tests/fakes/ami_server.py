"""A fake Asterisk Manager Interface that replays a real capture, byte for byte.

It listens on 127.0.0.1 (ephemeral port). For each connection it walks the capture's timeline:
a ``recv`` entry is written to the client exactly as Asterisk sent it (same chunk boundaries); a
``send`` entry waits for the client's next action and compares it, byte for byte, with the one
the recorder sent. What follows in the capture is Asterisk's answer, so nothing is invented.

The one substitution: Asterisk echoes the client's ``ActionID`` in its reply (and in the items and
``...Complete`` event of a list), and panoramisk draws a fresh one for every action
(``action/<uuid>/<n>/<counter>``). So an action matches the recorded one when it is equal once its
ActionID value is replaced by the recorded value, and from then on the recorded value is written
as the client's wherever a ``ActionID: <value>`` line carries it. Every other byte is as recorded
(a chunk holding such a line is longer or shorter by the difference; chunks stay as recorded).

An action that differs from the recorded one, or comes where the capture has none (a keepalive
``Ping`` the recorder never sent, any action after the capture's end), is refused loudly: logged
as an error, kept in ``mismatches`` (``check()`` raises on them) and the connection is closed
(a real Asterisk would have answered it, and the capture cannot say how).

``speed``: None replays without pauses, 1.0 at the recorded pace. ``stream=True`` (benchmarks)
answers the connect actions (``setup_actions``: up to the adapter's ``CoreShowChannels``) as
recorded, then writes every remaining byte at once, not waiting for later recorded actions (their
replies arrive unasked; panoramisk drops a reply whose ActionID it does not know). After the
capture's last byte the connection stays open, as an idle Asterisk's would, until the client
closes it.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass, field

from tests.fakes.ami_capture import AmiCapture, action_id, split_actions
from tests.fakes.loopback import LoopbackServer

log = logging.getLogger(__name__)
_ACTION_ID_LINE = re.compile(rb"^ActionID: ([^\r\n]*)\r\n", re.MULTILINE)


def setup_actions(capture: AmiCapture) -> int:
    """How many leading actions are the client's connect: up to its first ``CoreShowChannels``
    (the adapter's resync), or the Login alone."""
    for index, action in enumerate(capture.actions()):
        if action.startswith(b"Action: CoreShowChannels\r\n"):
            return index + 1
    return 1


_FILTER_LINE = re.compile(rb"^(Action: Filter\r\n(?:.*\r\n)*?Filter: ).*?\r\n", re.MULTILINE)


def without_filter(action: bytes) -> bytes:
    """A ``Filter`` action with its expression blanked: Asterisk's reply does not depend on it, so a
    capture recorded before calld subscribed to one more variable still answers calld's connect (the
    live lab tests check what the expressions let through)."""
    return _FILTER_LINE.sub(rb"\1\r\n", action, count=1)


def with_action_id(action: bytes, value: bytes) -> bytes:
    """``action`` with its ActionID value replaced by ``value`` (unchanged if it has none)."""
    return _ACTION_ID_LINE.sub(lambda _: b"ActionID: " + value + b"\r\n", action, count=1)


class _Renderer:
    """Writes ``capture.data`` in order, a range at a time, with recorded ActionIDs replaced by the
    client's (``ids``) once known. A value that straddles two chunks goes whole into the first."""

    def __init__(self, capture: AmiCapture) -> None:
        self.data = capture.data
        recorded = {value for action in capture.actions() if (value := action_id(action)) is not None}
        self.spans = [
            (match.start(1), match.end(1), match.group(1))
            for match in _ACTION_ID_LINE.finditer(capture.data)
            if match.group(1) in recorded
        ]
        self.ids: dict[bytes, bytes] = {}
        self.cursor = 0  # the next byte of ``data`` to write
        self._span = 0

    def render(self, start: int, end: int) -> bytes:
        start = max(start, self.cursor)
        out = []
        while self._span < len(self.spans) and self.spans[self._span][0] < end:
            a, b, value = self.spans[self._span]
            self._span += 1
            if a < start:
                continue
            out.append(self.data[start:a])
            out.append(self.ids.get(value, value))
            start = b
        out.append(self.data[start:end])
        self.cursor = max(end, start)
        return b"".join(out)


@dataclass
class FakeAmiServer(LoopbackServer):
    """Replays ``capture`` to every client."""

    capture: AmiCapture
    speed: float | None = None
    stream: bool = False
    action_timeout: float = 10.0
    received: list[bytes] = field(default_factory=list)  # actions as the client sent them
    mismatches: list[tuple[bytes, bytes]] = field(default_factory=list)  # (recorded, got); b"" = none
    connections: int = 0
    finished: asyncio.Event = field(default_factory=asyncio.Event)  # the whole capture was written

    def check(self) -> None:
        """Raise if any client sent an action the capture does not hold."""
        if self.mismatches:
            lines = [f"recorded {exp!r}\n     got {got!r}" for exp, got in self.mismatches]
            raise AssertionError(f"{self.capture.name}: actions refused:\n" + "\n".join(lines))

    def _refuse(self, expected: bytes, got: bytes) -> None:
        self.mismatches.append((expected, got))
        log.error("FakeAmiServer(%s) refused an action: recorded %r, got %r", self.capture.name, expected, got)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        await self._replay(reader, writer)

    async def _replay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        renderer = _Renderer(self.capture)
        pending = bytearray()
        setup = setup_actions(self.capture)
        answered = 0  # actions matched so far
        streamed: list[bytes] = []  # stream mode: everything after the connect, written at once
        last_t: float | None = None
        for entry in self.capture.timeline:
            direction = entry["dir"]
            if direction not in ("recv", "send"):
                continue
            if self.speed is not None and not streamed:
                if last_t is not None and entry["t"] > last_t:
                    await asyncio.sleep((entry["t"] - last_t) / self.speed)
                last_t = entry["t"]
            if direction == "recv":
                chunk = renderer.render(entry["off"], entry["off"] + entry["len"])
                if self.stream and answered >= setup:
                    streamed.append(chunk)
                    continue
                writer.write(chunk)
                await writer.drain()
                continue
            for expected in split_actions(entry["data"].encode()):
                if self.stream and answered >= setup:
                    continue  # streaming: later actions are not waited for
                got = await self._next_action(reader, pending, self.action_timeout)
                if got is None:
                    self._refuse(expected, b"")  # timed out; a closed client is just gone
                    return
                if not got:
                    return
                self.received.append(got)
                recorded = action_id(expected)
                sent = action_id(got)
                if recorded is None or sent is None:
                    same = got == expected
                else:
                    same = without_filter(with_action_id(got, recorded)) == without_filter(expected)
                if not same:
                    self._refuse(expected, got)
                    return
                if recorded is not None and sent is not None:
                    renderer.ids[recorded] = sent
                answered += 1
        if streamed:
            writer.write(b"".join(streamed))
            await writer.drain()
        self.finished.set()
        # Idle from here: any action is one the capture cannot answer.
        got = await self._next_action(reader, pending, None)
        if got:
            self.received.append(got)
            self._refuse(b"", got)

    @staticmethod
    async def _next_action(reader: asyncio.StreamReader, pending: bytearray, within: float | None) -> bytes | None:
        """The client's next whole action; b"" when it closed; None on timeout."""
        while True:
            end = pending.find(b"\r\n\r\n")
            if end >= 0:
                action = bytes(pending[: end + 4])
                del pending[: end + 4]
                return action
            try:
                chunk = await asyncio.wait_for(reader.read(65536), within)
            except TimeoutError:
                return None
            if not chunk:
                return b""
            pending += chunk

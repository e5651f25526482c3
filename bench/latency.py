"""Latency from the switch to the API: an event's bytes sent on the socket -> its call event committed.

A paced ESL server (real TCP on loopback) logs calld in with FreeSWITCH's captured replies, then
sends the j_load capture's events (200 calls, 9,600 ESL events; real FreeSWITCH 1.10.12 bytes) at a
steady ``--rate`` ESL events/s, in 10 ms slices on an absolute schedule (no drift), noting when each
event's bytes were written. calld's real ``FreeswitchAdapter`` reads, decodes and maps them and
``BatchedIngest`` stores them, wired by calld's own ``Daemon`` (every hook of a stored event runs:
webhook outbox, live updates, metrics). Latency of a call event = the moment the
transaction holding it committed (so any API request from then on sees it) minus the moment the ESL
event it came from was written to the socket.

Baseline, same run: the same paced stream read and split into frames by a minimal asyncio client
that does nothing else; its latency (bytes written -> frame split) is the floor of the pacing,
socket and event loop. Figures are p50/p99/max over --runs replays, each into a fresh database.

With --subscribed the capture is first cut to the events calld subscribes to (recorded with
``event json ALL``; a real FreeSWITCH sends calld only its subscription): 2,800 ESL events -> 600
call events, so --rate 9333 is 2,000 call events/s.

Usage: .venv/bin/python bench/latency.py [--rate 2000] [--runs 4] [--subscribed] [--pg URL] 2>/dev/null
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import DEFAULT_PG, ensure_pg, percentile, through_daemon
from calld.adapters.freeswitch.adapter import FreeswitchAdapter, wanted
from calld.adapters.freeswitch.esl_codec import EslParser, iter_events
from calld.adapters.freeswitch.mapping import EventMapper
from calld.adapters.freeswitch.settings import FreeswitchConfig
from calld.domain.events import SwitchEvent
from calld.logging import configure_logging
from tests.fakes.esl_capture import Capture, connect_answers, load_capture, subscribed_only

SLICE = 0.01
_LENGTH = re.compile(rb"Content-Length: *(\d+)", re.IGNORECASE)  # searched in one header block only


def split_frames(data: bytes) -> list[bytes]:
    """Raw ESL frames (headers, blank line, Content-Length body) of a byte stream."""
    frames, at = [], 0
    while at < len(data):
        end = data.index(b"\n\n", at) + 2
        match = _LENGTH.search(data, at, end)
        end += int(match.group(1)) if match else 0
        frames.append(data[at:end])
        at = end
    return frames


@dataclass
class Stream:
    """The capture cut for pacing: handshake replies, then one raw frame per item."""

    hello: bytes  # auth/request
    auth_reply: bytes
    subscribe_reply: bytes
    frames: list[bytes]
    is_event: list[bool]
    keys: list[list[str]]  # per frame, the keys of the call events calld maps it to

    @classmethod
    def of(cls, capture: Capture) -> Stream:
        chunks = capture.chunks()
        frames = split_frames(b"".join(chunks[3:]))
        parser, mapper = EslParser(), EventMapper()
        is_event, keys = [], []
        for frame in frames:
            events = list(iter_events(parser.feed(frame)))
            is_event.append(bool(events))
            keys.append([e.key for event in events for e in mapper.map(event)])
        return cls(chunks[0], chunks[1], chunks[2], frames, is_event, keys)


@dataclass
class PacedServer:
    """Answers the login, subscription and connect queries, then paces ``stream``'s frames."""

    stream: Stream
    rate: float
    sent_at: list[float] = field(default_factory=list)  # per frame
    done: asyncio.Event = field(default_factory=asyncio.Event)
    _server: asyncio.Server | None = None

    async def __aenter__(self) -> PacedServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        answers = connect_answers()
        writer.write(self.stream.hello)
        await reader.readuntil(b"\n\n")  # auth
        writer.write(self.stream.auth_reply)
        await reader.readuntil(b"\n\n")  # event json ...
        writer.write(self.stream.subscribe_reply)
        for _ in answers:  # show channels, version: answered in the order asked
            command = await reader.readuntil(b"\n\n")
            writer.write(answers[command])
        await writer.drain()
        frames, per_slice = self.stream.frames, max(1, round(self.rate * SLICE))
        self.sent_at = [0.0] * len(frames)
        start, at, n = time.perf_counter(), 0, 0
        while at < len(frames):
            wait = start + n * SLICE - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            take, end = 0, at
            while end < len(frames) and take < per_slice:  # per_slice events, with the replies between
                take += self.stream.is_event[end]
                end += 1
            writer.write(b"".join(frames[at:end]))
            now = time.perf_counter()
            for i in range(at, end):
                self.sent_at[i] = now
            at, n = end, n + 1
            await writer.drain()
        self.done.set()
        try:
            await reader.read()  # until the client goes
        finally:
            writer.close()


@dataclass
class Result:
    latencies: list[float]
    seconds: float
    events: int


async def baseline(stream: Stream, rate: float) -> Result:
    async with PacedServer(stream, rate) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        await reader.readuntil(b"\n\n")
        writer.write(b"auth ClueCon\n\n")
        await reader.readuntil(b"\n\n")
        writer.write(b"event json ALL\n\n" + b"".join(connect_answers()))
        for _ in range(1 + len(connect_answers())):  # the subscription's reply and both answers
            await _read_frame(reader)
        parser, latencies, index = EslParser(), [], 0
        started = time.perf_counter()
        while index < len(stream.frames):
            chunk = await reader.read(262144)
            if not chunk:
                break
            now = time.perf_counter()
            for _ in parser.feed(chunk):
                if stream.is_event[index]:
                    latencies.append(now - server.sent_at[index])
                index += 1
        seconds = time.perf_counter() - started
        writer.close()
    return Result(latencies, seconds, sum(stream.is_event))


async def _read_frame(reader: asyncio.StreamReader) -> None:
    head = await reader.readuntil(b"\n\n")
    match = _LENGTH.search(head)
    if match:
        await reader.readexactly(int(match.group(1)))


async def calld(stream: Stream, rate: float, url: str) -> Result:
    committed: dict[str, float] = {}

    def note(events: Sequence[SwitchEvent]) -> None:
        now = time.perf_counter()
        for event in events:
            committed[event.key] = now

    call_events = sum(len(keys) for keys in stream.keys)
    async with PacedServer(stream, rate) as server:
        adapter = FreeswitchAdapter(FreeswitchConfig(port=server.port, password="ClueCon"))
        seconds, _ = await through_daemon(url, adapter, call_events, note)
    latencies = [committed[key] - server.sent_at[i] for i, keys in enumerate(stream.keys) for key in keys]
    return Result(latencies, seconds, len(latencies))


def line(name: str, results: list[Result], base: list[Result] | None) -> str:
    lat = [x for r in results for x in r.latencies]
    p50, p99 = percentile(lat, 50) * 1000, percentile(lat, 99) * 1000
    ratio = ""
    if base is not None:
        b = [x for r in base for x in r.latencies]
        ratio = f"{percentile(b, 99) * 1000 / p99:8.3f}"
    met = "yes" if p99 < 50 else "NO"
    return f"{name:<22} {len(lat):>8,} {p50:8.2f} {p99:8.2f} {max(lat) * 1000:8.2f} {ratio:>8}  {met}"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=2000.0, help="ESL events per second on the wire")
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--capture", default="j_load.json")
    parser.add_argument(
        "--subscribed",
        action="store_true",
        help="replay only the events calld subscribes to (what a real FreeSWITCH sends it)",
    )
    parser.add_argument("--pg", default=os.environ.get("CALLD_BENCH_PG_URL", DEFAULT_PG))
    args = parser.parse_args()
    configure_logging("info", "json")  # as the daemon logs; send stderr where you like
    capture = load_capture(args.capture)
    stream = Stream.of(subscribed_only(capture, wanted) if args.subscribed else capture)
    events, mapped = sum(stream.is_event), sum(len(k) for k in stream.keys)
    seconds = events / args.rate
    print(
        f"{args.capture}: {events:,} ESL events -> {mapped:,} call events; at {args.rate:,.0f} ESL events/s "
        f"that is {mapped / seconds:,.0f} call events/s for {seconds:.1f} s, x{args.runs} runs"
    )
    base = [await baseline(stream, args.rate) for _ in range(args.runs)]
    rows = {"baseline (read+split)": base}
    with tempfile.TemporaryDirectory() as tmp:
        for name, url in {"calld sqlite": f"sqlite:///{tmp}/latency.db", "calld postgresql": args.pg}.items():
            await ensure_pg(url)
            rows[name] = [await calld(stream, args.rate, url) for _ in range(args.runs)]
    print(f"{'':<22} {'events':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'ratio':>8}  p99<50ms")
    for name, results in rows.items():
        print(line(name, results, None if results is base else base))
    print("ratio = baseline p99 / calld p99")


if __name__ == "__main__":
    asyncio.run(main())
